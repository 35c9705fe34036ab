import CustosCore
import Foundation
import Testing

@Suite struct PermissionMatrix {
    /// The README's Permissions table is the matrix the code enforces, not a description of it.
    @Test func theReadmeTableIsTheMatrix() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        #expect(text.contains(Permission.markdownTable), "README.md's Permissions table differs from `custos permissions`")
        // Every permission and every role is in it, once.
        for p in Permission.allCases { #expect(Permission.markdownTable.components(separatedBy: "| `\(p.rawValue)` |").count == 2) }
        #expect(Permission.markdownTable.split(separator: "\n").count == Permission.allCases.count + 2)
    }
}
