import CustosCore
import CustosMedia
@testable import CustosStore
import Foundation
import Testing

/// Issue 26, items 2, 3 and 5: hash lists as events, matching at ingest and on import, moderators
/// shielded, and the organisation's own list.
@Suite struct KnownMaterialInTheStore {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/CustosResources/samples")
    /// The sample photo is a resized, recompressed copy of the image whose PDQ this is.
    static let listedPDQ = "ac520593f306a974ac7b665425ed38dad931cda38f92346862fcc68b9761b275"

    let photo: Data
    let sha: String

    init() throws {
        photo = try Data(contentsOf: KnownMaterialInTheStore.samples.appendingPathComponent("photo.jpg"))
        sha = SHA256Hex.of(photo)
    }

    func withPhoto(_ f: Fixture, id: String, adult: String = "u-1") throws {
        try photo.write(to: f.dir.appendingPathComponent("photo.jpg"))
        let a = ",\"attachments\":[{\"name\":\"photo.jpg\",\"media_type\":\"image/jpeg\",\"sha256\":\"\(sha)\",\"size\":\(photo.count),\"path\":\"photo.jpg\"}]"
        let (summary, rejected) = try f.ingest(flagLine(id: id, adult: adult, attachments: a) + "\n", name: "\(id).jsonl")
        #expect(summary.ingested == 1, "\(rejected)")
    }

    @discardableResult
    func importList(_ f: Fixture, _ text: String, name: String, kind: HashKind = .pdq, threshold: Int? = nil, by: String = "cora") throws -> HashListImported {
        try f.store(by).importHashList(Array(text.utf8), file: "\(name).txt", name: name, kind: kind, source: "test", category: .csam,
                                       threshold: threshold, minQuality: nil)
    }

    func urgentReason(_ f: Fixture, _ id: String) throws -> String {
        try f.sqlite("SELECT s.urgent || ' ' || coalesce(s.urgent_reason, '') FROM flag_state s JOIN flags f ON f.id = s.flag WHERE f.flag_id = '\(id)'").1
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func aResizedRecompressedCopyMatchesAtIngestAndTheFlagIsUrgent() throws {
        let f = try team()
        try importList(f, "\(Self.listedPDQ),listed image\n", name: "industry")
        try withPhoto(f, id: "p")
        try f.ingest(flagLine(id: "plain") + "\n", name: "plain.jsonl")
        #expect(try urgentReason(f, "p") == "1 known material: attachment \(sha.prefix(12))… matches industry (pdq distance 16)")
        #expect(try urgentReason(f, "plain") == "0")
        // Urgent first in the queue; the reviewer's read carries the match.
        #expect(try f.store("alice").queue(limit: 5, lead: false).first?.key == "det:p")
        let v = try f.store("alice").reviewFlag("det:p", purpose: "review")
        #expect(v.matches[sha] == [KnownMatch(list: "industry", kind: .pdq, hash: Self.listedPDQ, distance: 16, label: "listed image")])
        // One flag.match entry, on the flag, with the evidence hash.
        let entries = try f.store().custodyEntries(subjects: ["det:p"]).filter { $0.action == CustodyAction.flagMatch.rawValue }
        #expect(entries.count == 1 && entries.first?.evidenceHash == v.flag.evidenceHash)
    }

    @Test func importingAListMatchesWhatIsStoredOnceAndUnrelatedHashesDoNot() throws {
        let f = try team()
        try withPhoto(f, id: "p")
        try withPhoto(f, id: "q", adult: "u-9")
        // Far from the photo (the listed hash with 60 bits flipped) and random: no match.
        var far = PDQ.Hash(hex: Self.listedPDQ)!
        for b in 0..<60 { far.words[b % 16] ^= 1 << UInt16(b / 16 + 3) }
        let r0 = try importList(f, "\(far.hex)\n\(String(repeating: "5a", count: 32))\n", name: "unrelated")
        #expect(r0.matches.isEmpty && r0.count == 2)
        let r = try importList(f, "\(Self.listedPDQ)\n", name: "industry")
        #expect(Set(r.matches.map(\.flag)) == ["det:p", "det:q"] && r.matches.allSatisfy { $0.match.distance == 16 })
        // A rescan records nothing again.
        #expect(try f.store("cora").matchStoredAttachments().isEmpty)
        #expect(try f.count("matches") == 2)
        // A tight threshold misses the recompressed copy.
        let strict = try importList(f, "\(Self.listedPDQ)\n", name: "strict", threshold: 8)
        #expect(strict.matches.isEmpty)
    }

    /// A match must be reported: a flag dismissed before its attachment was known goes back to
    /// review, urgent, reopened by whoever imported the list; a confirmed one stays confirmed.
    @Test func aDismissedFlagWhoseAttachmentLaterMatchesIsReopened() throws {
        let f = try team()
        try withPhoto(f, id: "d")
        try withPhoto(f, id: "c", adult: "u-5")
        _ = try f.store("alice").claim("det:d")
        _ = try f.store("alice").decide("det:d", outcome: .dismiss, reason: "looks harmless", category: nil, urgent: nil, annotations: [])
        for who in ["alice", "bob"] {
            _ = try f.store(who).claim("det:c")
            _ = try f.store(who).decide("det:c", outcome: .confirm, reason: "grooming", category: .grooming, urgent: nil, annotations: [])
        }
        #expect(try state(f, "d") == "dismissed" && state(f, "c") == "confirmed")
        try importList(f, "\(Self.listedPDQ)\n", name: "industry")
        #expect(try state(f, "d") == "open" && state(f, "c") == "confirmed")
        #expect(try urgentReason(f, "d").hasPrefix("1 known material:"))
        let reopen = try f.sqlite("SELECT d.reviewer || ' ' || d.outcome FROM decisions d JOIN flags f ON f.id = d.flag WHERE f.flag_id = 'd' ORDER BY d.id DESC LIMIT 1").1
        #expect(reopen.trimmingCharacters(in: .whitespacesAndNewlines) == "cora reopen")
        // Back in the queue, first; a reviewer other than alice may take it.
        #expect(try f.store("bob").queue(limit: 5, lead: false).first?.key == "det:d")
        _ = try f.store("bob").claim("det:d")
    }

    @Test func anMD5ListMatchesTheExactFileOnly() throws {
        let f = try team()
        let md5 = Media.hashes(of: photo).md5
        let r = try importList(f, "signal_type,signal_value\nmd5,\(md5)\n", name: "md5s", kind: .md5)
        #expect(r.matches.isEmpty)
        try withPhoto(f, id: "p")
        let v = try f.store("alice").reviewFlag("det:p", purpose: "review")
        #expect(v.matches[sha]?.map(\.words) == ["matches md5s (md5, exact)"])
    }

    @Test func aModeratorNeverGetsMatchedBytesALeadOnlyByALoggedReveal() throws {
        let f = try team()
        try importList(f, "\(Self.listedPDQ)\n", name: "industry")
        try withPhoto(f, id: "p")
        for purpose in [AttachmentViews.blurred, AttachmentViews.revealed] {
            #expect(errorKind { _ = try f.store("alice").readAttachment(flag: "det:p", sha256: sha, purpose: purpose) } == .forbidden)
        }
        // Each refusal is logged.
        #expect(try f.store().custodyEntries().filter { $0.action == CustodyAction.refused.rawValue && $0.actor == "alice" }.count == 2)
        // Not even a blurred thumbnail for a lead: only the reveal.
        #expect(errorKind { _ = try f.store("lee").readAttachment(flag: "det:p", sha256: sha, purpose: AttachmentViews.blurred) } == .invalidInput)
        let before = try f.store().custodySize()
        let (bytes, _) = try f.store("lee").readAttachment(flag: "det:p", sha256: sha, purpose: AttachmentViews.revealed)
        #expect(bytes == photo)
        let added = Array(try f.store().custodyEntries().dropFirst(Int(before)))
        #expect(AttachmentViews.viewed(in: added) == [sha] && added.first?.actor == "lee")
    }

    @Test func aFlagConfirmedCSAMAddsItsAttachmentsToTheOrganisationsOwnList() throws {
        let f = try team()
        try withPhoto(f, id: "p")
        for who in ["alice", "bob"] {
            _ = try f.store(who).claim("det:p")
            _ = try f.store(who).decide("det:p", outcome: .confirm, reason: "listed", category: .csam, urgent: nil, annotations: [])
        }
        let own = try f.store("cora").hashListEntries(KnownMaterial.ownList)
        let h = Media.hashes(of: photo)
        #expect(Set(own.map(\.hash)) == [h.md5, try #require(h.pdq).hex])
        let hma = HashListFile.export(own, format: .hma)
        #expect(hma.hasPrefix("signal_type,signal_value,label\r\n") && hma.contains("md5,\(h.md5),csam") && hma.contains("pdq,\(h.pdq!.hex),csam"))
        #expect(try f.store().hashLists().first { $0.name == KnownMaterial.ownList }?.count == 2)
        // The next flag carrying the same photo matches the organisation's own list, twice (MD5 and PDQ).
        try withPhoto(f, id: "again", adult: "u-7")
        #expect(Set(try f.store("alice").reviewFlag("det:again", purpose: "r").matches[sha]?.map(\.kind) ?? []) == [.md5, .pdq])
        // A grooming confirmation adds nothing.
        try withPhoto(f, id: "g", adult: "u-8")
        for who in ["alice", "bob"] {
            _ = try f.store(who).claim("det:g")
            _ = try f.store(who).decide("det:g", outcome: .confirm, reason: "grooming", category: .grooming, urgent: nil, annotations: [])
        }
        #expect(try f.store().custodyEntries().filter { $0.action == CustodyAction.hashlistAdd.rawValue }.count == 1)
    }

    @Test func badImportsAreRefusedWhollyAndNamesAreNeverReused() throws {
        let f = try team()
        let lines = "\(Self.listedPDQ)\nzz\n"
        #expect(errorKind { try importList(f, lines, name: "bad") } == .invalidInput)
        #expect(errorKind { try importList(f, "\(Self.listedPDQ)\n", name: KnownMaterial.ownList) } == .invalidInput)
        #expect(errorKind { try importList(f, "\(Self.listedPDQ)\n", name: "Bad Name") } == .invalidInput)
        #expect(errorKind { try importList(f, String(repeating: "a", count: 32), name: "m", kind: .md5, threshold: 3) } == .invalidInput)
        #expect(errorKind { try importList(f, "\(Self.listedPDQ)\n", name: "t", threshold: 300) } == .invalidInput)
        #expect(errorKind { try importList(f, "\(Self.listedPDQ)\n", name: "byalice", by: "alice") } == .forbidden)
        #expect(try f.count("hash_lists") == 0 && f.count("hash_entries") == 0)
        try importList(f, "\(Self.listedPDQ)\n", name: "once")
        try f.store("cora").removeHashList("once", reason: "licence ended")
        #expect(errorKind { try importList(f, "\(Self.listedPDQ)\n", name: "once") } == .conflict)
        #expect(errorKind { try f.store("cora").removeHashList("once", reason: "again") } == .conflict)
        // A removed list matches nothing new; its entries stay.
        try withPhoto(f, id: "p")
        #expect(try f.count("matches") == 0 && f.count("hash_entries") == 1)
        #expect(try f.store().hashLists().first?.removedAt != nil)
    }

    @Test func verifyNamesAListEditedBehindTheLogsBack() throws {
        let f = try team()
        try importList(f, "\(Self.listedPDQ)\n\(String(repeating: "5a", count: 32))\n", name: "industry")
        #expect(try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).verify().ok)
        // Removing an entry (a hash someone wants not to match) takes dropping the trigger: both named.
        try f.sqlite("DROP TRIGGER hash_entries_no_delete; DELETE FROM hash_entries WHERE hash LIKE '5a%';")
        let r = try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).verify()
        #expect(!r.ok)
        #expect(r.problems.contains { $0.contains("hash_entries_no_delete") })
        #expect(r.problems.contains { $0.contains("hash list \"industry\"") && $0.contains("changed behind the log's back") })
        // A rebuild refuses a list whose entries do not hash to what the log recorded.
        #expect(errorKind { _ = try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).rebuild(to: f.dir.appendingPathComponent("r.db").path) } != nil)
    }

    @Test func aMatchDeletedBehindTheLogsBackIsNamed() throws {
        let f = try team()
        try importList(f, "\(Self.listedPDQ)\n", name: "industry")
        try withPhoto(f, id: "p")
        try f.sqlite("DROP TRIGGER matches_no_delete; DELETE FROM matches;")
        let r = try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).verify()
        #expect(r.problems.contains { $0.contains("matches \"det:p|\(sha.prefix(20))") && $0.contains("missing") }, "\(r.problems)")
    }
}
