import CustosCore
import CustosStore
import Foundation

/// Flags sent over the API: the same contract and the same per-record checks as `custos ingest`
/// (the one Ingestor), answered line by line.
enum FlagIntake {
    static func ingest(_ body: Data, store: Store) throws -> Components.Schemas.IngestResult {
        // The Ingestor reads a stream; the body goes to a private file beside the store (the
        // same file system and protection as the evidence), removed once read.
        let dir = URL(fileURLWithPath: store.path).deletingLastPathComponent()
        let file = dir.appendingPathComponent(".custos-intake-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: file.path, contents: body, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forReadingAtPath: file.path) else {
            throw CustosError.storage(cause: "cannot spool the request body")
        }
        defer { try? handle.close(); try? FileManager.default.removeItem(at: file) }
        var lines: [Int: Components.Schemas.IngestLine] = [:]
        func number(_ location: String) -> Int { Int(location.split(separator: ":").last ?? "") ?? 0 }
        let ingestor = Ingestor(store: store)
        ingestor.onReject = { r in
            let n = number(r.location)
            lines[n] = .init(line: n, result: .rejected, reason: r.reason)
        }
        ingestor.onStored = { location, key, duplicate in
            let n = number(location)
            lines[n] = .init(line: n, result: duplicate ? .duplicate : .ingested, key: key)
        }
        try ingestor.ingestJSONLines(handle, name: "line", baseDirectory: nil)
        let s = ingestor.summary
        return .init(ingested: s.ingested, duplicate: s.duplicate, rejected: s.rejected, lines: lines.keys.sorted().compactMap { lines[$0] })
    }
}
