import Foundation

/// Files compiled into the binary: `migrations/*.sql`, `templates/*` and `samples/*`.
/// Keys are `folder/name`, e.g. `migrations/0001_initial.sql`.
public enum EmbeddedResources {
    public static func data(_ name: String) -> Data? {
        embeddedFilesBase64[name].flatMap { Data(base64Encoded: $0) }
    }

    public static func text(_ name: String) -> String? {
        data(name).flatMap { String(data: $0, encoding: .utf8) }
    }

    /// Names under `folder/`, sorted.
    public static func names(in folder: String) -> [String] {
        embeddedFilesBase64.keys.filter { $0.hasPrefix(folder + "/") }.sorted()
    }
}
