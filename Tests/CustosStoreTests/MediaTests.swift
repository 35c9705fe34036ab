import Crypto
import CustosCore
import CustosMedia
@testable import CustosStore
import Foundation
import Testing

/// Issue 26, item 1: each stored attachment's MD5 and PDQ in `show --json` and `getFlag`,
/// computed inside the flag's logged read; hashing is not a view.
@Suite struct AttachmentHashesInTheRead {
    @Test func aReviewReadCarriesEachAttachmentsHashesAndLogsOneReadNoView() throws {
        let f = try team()
        let sticker = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/CustosResources/samples/sticker.png"))
        try sticker.write(to: f.dir.appendingPathComponent("s.png"))
        let sha = SHA256Hex.of(sticker)
        try f.ingest(flagLine(id: "p", attachments: ",\"attachments\":[{\"name\":\"s.png\",\"media_type\":\"image/png\",\"sha256\":\"\(sha)\",\"size\":\(sticker.count),\"path\":\"s.png\"}]") + "\n")
        let before = try f.store().custodySize()
        let v = try f.store("alice").reviewFlag("det:p", purpose: "review", hashes: true)
        let h = try #require(v.attachmentHashes[sha])
        #expect(h.md5 == Hex.encode(Array(Insecure.MD5.hash(data: sticker))))
        #expect(h.pdq != nil && h.notHashed == nil)
        let added = try f.store().custodyEntries().dropFirst(Int(before))
        #expect(added.map(\.action) == [CustodyAction.evidenceView.rawValue])
        #expect(AttachmentViews.viewed(in: Array(added)).isEmpty)
        // Without asking, no hashing.
        #expect(try f.store("alice").reviewFlag("det:p", purpose: "review").attachmentHashes.isEmpty)
    }
}
