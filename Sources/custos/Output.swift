import ArgumentParser
import CustosCore
import CustosPackets
import CustosStore
import Foundation

func printJSON(_ value: JSONValue) { print(value.canonicalString) }

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

/// Writes exact bytes (canonical JSON, for files and pipes); on a terminal, escaped as
/// `terminalSafe` does, so stored text cannot drive the terminal.
func writeExact(_ data: Data) {
    if isatty(STDOUT_FILENO) == 1 {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        FileHandle.standardOutput.write(Data(lines.map { terminalSafe(String($0)) }.joined(separator: "\n").utf8))
    } else {
        FileHandle.standardOutput.write(data)
    }
}

/// Reads a small input file named on the command line: a regular file, at most `limit` bytes.
func readInput(_ path: String, limit: Int = 64 << 20) throws -> Data {
    try InputPath.requireRegularFile(path, role: "input")
    var info = stat()
    guard stat(path, &info) == 0, info.st_size <= limit else { throw CustosError.invalidInput(field: path, reason: "larger than \(limit >> 20) MiB") }
    guard let data = FileManager.default.contents(atPath: path) else { throw CustosError.storage(cause: "cannot read \(path)") }
    return data
}

/// Makes untrusted text safe for a terminal: control and bidi-override characters shown as escapes.
func terminalSafe(_ s: String) -> String { Escape.terminal(s) }

/// A line on standard error, made safe for a terminal.
func printError(_ s: String) { FileHandle.standardError.write(Data((terminalSafe(s) + "\n").utf8)) }

enum Transcript {
    /// A readable transcript with full dates: UTC, and the sender's original offset.
    static func render(_ f: StoredFlag, terminal: Bool) -> String {
        let safe: (String) -> String = { terminal ? terminalSafe($0) : $0 }
        let c = f.conversation
        var lines: [String] = []
        lines.append("Flag \(safe(f.key))  score \(f.score.map { String(format: "%.2f", $0) } ?? "unscored")  detected \(f.detectedAt)")
        lines.append("Platform \(safe(f.platform))\(f.surface.map { " / " + safe($0) } ?? "")  conversation \(safe(c.id))")
        lines.append("Evidence hash \(f.evidenceHash)")
        lines.append("Participants:")
        for p in c.participants {
            var d = "  \(safe(p.userID))"
            if let s = p.screenName { d += " @\(safe(s))" }
            if let n = p.displayName { d += " \"\(safe(n))\"" }
            if let r = p.roleHint { d += " [\(r.rawValue)]" }
            if let a = p.statedAge { d += " age \(a)" }
            if let cc = p.country { d += " \(cc)" }
            lines.append(d)
        }
        lines.append("Messages (UTC; original offset in brackets):")
        for m in c.messages {
            let utc = Timestamp.format(millis: m.sentAt.epochMillis, offsetMinutes: 0)
            let orig = m.sentAt.offsetMinutes == 0 ? "" : " [\(m.sentAt.text)]"
            lines.append("  \(utc)\(orig) \(safe(m.sender)): \(safe(m.text))")
            for a in m.attachments {
                lines.append("      attachment \(safe(a.name ?? "(unnamed)")) \(safe(a.mediaType ?? "")) \(a.size) bytes sha256 \(a.sha256)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
