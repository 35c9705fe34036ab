import CustosCore
@testable import CustosStore
import Foundation
import Testing

/// Every member a detector can send, and members Custos does not know, are stored in the
/// conversation's evidence document and come back from it byte for byte.
@Suite struct EvidenceLayoutTests {
    @Test func everyFieldRoundTripsThroughTheDocument() throws {
        let f = try Fixture()
        let blob = Data("bytes".utf8)
        try blob.write(to: f.dir.appendingPathComponent("a.bin"))
        let line = """
        {"flag_id":"rt","source":{"detector":"det"},"detected_at":"2026-11-20T14:03:00Z","service":{"platform":"P"},"conversation":{"id":"c-rt","topic":{"x":[1,2]},"participants":[{"user_id":"u1","screen_name":"s","display_name":"D","role_hint":"suspected_adult","stated_age":30,"country":"US","emails":["a@example.com"],"ip_events":[{"ip":"192.0.2.1","event":"login","at":"2026-11-20T13:00:00Z","port":443}],"note":"extra member"},{"user_id":"u2","role_hint":"suspected_minor"}],"messages":[{"id":"m1","sender":"u1","sent_at":"2026-11-20T13:59:01+05:30","text":"t\\u00e9\\n","attachments":[{"name":"a.bin","media_type":"application/octet-stream","sha256":"\(SHA256Hex.of(blob))","size":5,"path":"a.bin"}],"edited":true},{"id":"m2","sender":"u2","sent_at":"2026-11-20T14:00:00Z","text":""}]}}
        """
        let (summary, rejects) = try f.ingest(line + "\n")
        #expect(summary.ingested == 1, "\(rejects.map(\.reason))")
        let original = try FlagRecord.validate(try JSONValue.parse(Data(line.utf8))).conversation
        let stored = try f.store().readFlag("rt", purpose: "test")
        #expect(stored.canonicalConversation == Evidence.canonicalData(original))
        // Everything but an attachment's `path` (where ingest read the bytes; not evidence).
        var expected = original
        for i in expected.messages.indices { for j in expected.messages[i].attachments.indices { expected.messages[i].attachments[j].path = nil } }
        #expect(stored.conversation == expected)
        #expect(stored.evidenceHash == Evidence.hash(original))
    }

    /// The row holds exactly the bytes the evidence hash is computed over: SQLite's sha256
    /// extension is not on every machine, so the shell hands the text back and it is hashed here.
    @Test func theStoredDocumentIsTheHashedBytes() throws {
        let f = try Fixture()
        try f.ingest(flagLine(id: "a", text: "ä \u{1F600} \"q\"") + "\n")
        let stored = try f.sqlite("SELECT document FROM evidence").1
        let hash = try f.sqlite("SELECT evidence_hash FROM conversations").1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(stored.hasSuffix("\n") && SHA256Hex.of(Data(stored.dropLast().utf8)) == hash)
        #expect(try f.count("evidence") == 1)
    }
}
