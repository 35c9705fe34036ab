import CustosCore
@testable import CustosStore
import Foundation
import GRDB
import Testing

/// Issue 24: every change is a typed event that one projection applies, on write and on replay.
@Suite struct OnePath {
    let day: Int64 = 86_400_000

    /// A store that has seen most of what Custos records: users, secrets, a token and its
    /// revocation, preferences, settings, an agency change, decisions and a reopening, cases
    /// merged and split, exports, a receipt, a hold extension, checkpoints and a refusal.
    func busy() throws -> Fixture {
        let f = try team()
        f.now = Int64(Date().timeIntervalSince1970 * 1000)
        let admin = try f.store()
        try admin.setPassword(user: "alice", password: "a long enough password")
        let token = try admin.createToken(user: "alice")
        try admin.revokeToken(id: token.id)
        try f.store("alice").setPreferences(blur: false, grayscale: true)
        try admin.setSetting("lease-minutes", "30")
        try f.store("cora").setAgency(code: "NCA", name: nil, jurisdictions: ["GB", "IE"], profile: nil, route: nil, retentionDays: 400)
        try f.ingest(["a", "b", "c", "d"].map { flagLine(id: $0, text: "text-\($0)", adult: "u-\($0)", adultCountry: "GB") }.joined(separator: "\n") + "\n")
        for flag in ["a", "b", "c"] {
            for n in ["alice", "bob"] {
                _ = try f.store(n).claim(flag)
                _ = try f.store(n).decide(flag, outcome: .confirm, reason: "grooming", category: .grooming, urgent: n == "alice" ? "meeting" : nil,
                                          annotations: [.sextortion])
            }
        }
        _ = try f.store("alice").claim("d")
        _ = try f.store("alice").decide("d", outcome: .dismiss, reason: "benign", category: nil, urgent: nil, annotations: [])
        try f.store("lee").reopen("d", reason: "second look")
        let cora = try f.store("cora")
        try cora.mergeCases("C-000001", "C-000002")
        _ = try cora.splitCase("C-000001", flags: ["det:b"])
        try cora.recordReferral(try cora.prepareReferral(caseName: "C-000001", agencyCode: "NCMEC", key: try cora.signingKey()),
                                tagManifestSHA256: String(repeating: "1", count: 64))
        try cora.recordReceipt(caseName: "C-000001", agency: "NCMEC", reference: "CT-1")
        try cora.extendHold(caseName: "C-000001", until: f.now + 800 * day, reason: "LE request 9")
        try admin.makeCheckpoint(key: try admin.signingKey())
        try admin.disableUser(name: "bob")
        #expect(errorKind { _ = try f.store("alice").tokens() } == .forbidden)
        return f
    }

    @Test func everyEntryDecodesIntoAnEventThatEncodesToItsDetailsByteForByte() throws {
        let f = try busy()
        let entries = try f.store().custodyEntries()
        var actions = Set<String>()
        for e in entries {
            let event = try CustodyEvent(entry: e)
            #expect(event.action.rawValue == e.action)
            #expect(event.details.canonicalString == e.details, "entry \(e.seq) (\(e.action))")
            actions.insert(e.action)
        }
        // The workflow above reaches most kinds of entry.
        #expect(actions.count >= 25, "\(actions.sorted())")
    }

    @Test func aDetailsMemberMissingIsNamed() throws {
        #expect(throws: CustodyEvent.Incomplete.self) { try CustodyEvent(action: .caseExport, details: ["packet": .string("p")]) }
        let e = #expect(throws: CustodyEvent.Incomplete.self) { try CustodyEvent(action: .tokenCreate, details: ["user": .string("u")]) }
        #expect(e?.member == "token_sha256")
        // A member a newer Custos wrote is kept, and written back.
        let event = try CustodyEvent(action: .holdExtend, details: ["until": .string("2027-01-01T00:00:00.000Z"), "reason": .string("r"), "court": .string("X")])
        #expect(event.details["court"] == .string("X"))
    }

    @Test func aRebuiltStoreVerifiesAndEqualsTheOriginalRowForRow() throws {
        let f = try busy()
        let out = f.dir.appendingPathComponent("new.db").path
        let r = try f.store().rebuild(to: out)
        #expect(r.verify.ok && r.flags == 4)
        #expect(try differingTables(f.db, out) == [])
        // The rebuilt store is a working store: it takes the next write.
        let again = try Store.open(path: out, actor: Actor(name: "admin", osUser: "admin"))
        try again.addUser(name: "newcomer", role: .moderator)
        #expect(try again.verify().ok)
    }

    @Test func rebuildNeverOverwritesAndIsNotEveryonesRead() throws {
        let f = try busy()
        let existing = f.dir.appendingPathComponent("there.db").path
        _ = FileManager.default.createFile(atPath: existing, contents: Data("keep".utf8))
        #expect(errorKind { _ = try f.store().rebuild(to: existing) } == .conflict)
        #expect(try Data(contentsOf: URL(fileURLWithPath: existing)) == Data("keep".utf8))
        let out = f.dir.appendingPathComponent("m.db").path
        let before = try f.store().custodySize()
        #expect(errorKind { _ = try f.store("alice").rebuild(to: out) } == .forbidden)
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try f.store().custodyEntries().dropFirst(Int(before)).map(\.action) == [CustodyAction.refused.rawValue])
    }

    /// A row written behind the log's back is not carried into the rebuild: the rebuilt store
    /// holds what the log says, and the original's verify names the edit.
    @Test func aRebuildHoldsWhatTheLogSaysNotWhatTheTablesWereEditedTo() throws {
        let f = try busy()
        #expect(try f.sqlite("DROP TRIGGER decisions_no_update; UPDATE decisions SET reason = 'forged' WHERE reason = 'benign'").0 == 0)
        #expect(try f.sqlite("UPDATE users SET role = 'admin' WHERE name = 'alice'").0 == 0)
        let out = f.dir.appendingPathComponent("r.db").path
        // The original fails verify (the schema step names the dropped trigger); the rebuild is
        // made from the log, so it does not carry the forged rows.
        #expect(!(try f.store().verify().ok))
        let r = try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).rebuild(to: out)
        #expect(r.verify.ok)
        let q = try DatabaseQueue(path: out)
        #expect(try q.read { try String.fetchAll($0, sql: "SELECT reason FROM decisions WHERE outcome = 'dismiss'") } == ["benign"])
        #expect(try q.read { try String.fetchOne($0, sql: "SELECT role FROM users WHERE name = 'alice'") } == "moderator")
    }

    /// The write path and the replay are one function: a write the projection cannot apply is
    /// refused whole, nothing stored.
    @Test func aWriteTheProjectionCannotApplyStoresNothing() throws {
        let f = try team()
        let before = try f.store().custodySize()
        // Revoking a token that does not exist: an event the projection cannot apply.
        #expect(throws: (any Error).self) {
            try f.store().write { _, log in try log.record(.tokenRevoke(.init()), subjectID: "tok-none") }
        }
        #expect(try f.store().custodySize() == before)
    }
}

extension OnePath {
    /// The log holds only a secret's SHA-256: a rebuild takes the secret from the store only
    /// where it matches, and refuses (writing nothing) when it does not, naming the user; the
    /// original's verify names the edit.
    @Test func aSecretEditedBehindTheLogIsNotCarriedIntoARebuild() throws {
        let f = try busy()
        #expect(try f.sqlite("UPDATE credentials SET password_hash = 'forged' WHERE user = 'alice'").0 == 0)
        #expect(try f.store().verify().problems.contains { $0.contains("credentials \"alice\"") })
        let out = f.dir.appendingPathComponent("s.db").path
        let e = errorOf { _ = try f.store().rebuild(to: out) }
        #expect(e?.kind == .invalidState && e?.description.contains("\"alice\"") == true, "\(String(describing: e))")
        #expect(!FileManager.default.fileExists(atPath: out))
        // Set again, the rebuild carries it.
        try f.store().setPassword(user: "alice", password: "another long password")
        #expect(try f.store().rebuild(to: out).verify.ok)
    }
}
