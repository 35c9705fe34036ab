import Foundation
import PackagePlugin

/// Compiles `migrations/`, `templates/`, the target's `samples/` and the API's OpenAPI document into the target as
/// base64 literals, so the `custos` binary carries them wherever it is copied.
@main
struct EmbedFilesPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let folders: [(prefix: String, url: URL)] = [
            ("migrations", root.appending(path: "migrations")),
            ("templates", root.appending(path: "templates")),
            ("samples", target.directoryURL.appending(path: "samples")),
        ]
        // The API's OpenAPI document, which `serve` also serves.
        var inputs: [URL] = [root.appending(path: "Sources/CustosServer/openapi.yaml")]
        var arguments: [String] = ["api/openapi.yaml=\(inputs[0].path)"]
        let fm = FileManager.default
        for (prefix, url) in folders {
            guard let names = try? fm.contentsOfDirectory(atPath: url.path) else { continue }
            for name in names.sorted() where !name.hasPrefix(".") {
                let file = url.appending(path: name)
                inputs.append(file)
                arguments.append("\(prefix)/\(name)=\(file.path)")
            }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(inputs.count) resource files",
                executable: try context.tool(named: "EmbedFiles").url,
                arguments: [output.path] + arguments,
                inputFiles: inputs,
                outputFiles: [output])
        ]
    }
}
