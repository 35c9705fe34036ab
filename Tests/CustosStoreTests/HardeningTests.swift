import Crypto
import CustosCore
import CustosTestSupport
@testable import CustosStore
import Foundation
import Testing

/// Issue 23's findings against the store, each as the attacker or the second operator did it.
@Suite struct SchemaAndSignedHead {
    /// Three flags, no checkpoint: the whole log is the "tail" a checkpoint would not cover.
    func store() throws -> Fixture {
        let f = try Fixture()
        try f.ingest((0..<3).map { flagLine(id: "f\($0)") }.joined(separator: "\n") + "\n")
        try f.store().addUser(name: "alice", role: .moderator)
        return f
    }

    /// Rewrites entry `seq`'s actor and re-hashes its leaf, every later chain link and every
    /// Merkle node, then puts the triggers back: what someone who can write the file but not
    /// read the key can do (finding 3).
    func rewrite(_ f: Fixture, seq: Int64) throws {
        let entries = try f.store().custodyEntries()
        var chain = CustodyEntry.genesisChain
        var builder = Merkle.FrontierBuilder()
        var sql = "DROP TRIGGER custody_no_update; DROP TRIGGER merkle_nodes_no_delete; DELETE FROM merkle_nodes;"
        for var e in entries {
            if e.seq == seq { e.actor = "mallory" }
            let leaf = e.leafHash
            chain = CustodyEntry.chain(previous: chain, leaf: leaf)
            sql += "UPDATE custody SET actor = '\(e.actor)', leaf_hash = x'\(Hex.encode(leaf))', chain_hash = x'\(Hex.encode(chain))' WHERE seq = \(e.seq);"
            for n in builder.append(leaf) { sql += "INSERT INTO merkle_nodes VALUES (\(n.level), \(n.index), x'\(Hex.encode(n.hash))');" }
        }
        sql += """
            CREATE TRIGGER custody_no_update BEFORE UPDATE ON custody
            BEGIN SELECT RAISE(ABORT, 'custody log is append-only: UPDATE refused'); END;
            CREATE TRIGGER merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes
            BEGIN SELECT RAISE(ABORT, 'merkle tree is append-only: DELETE refused'); END;
            """
        let (status, out) = try f.sqlite(sql)
        #expect(status == 0, "\(out)")
    }

    @Test func everyWriteSignsTheHeadOverTheWholeLog() throws {
        let f = try store()
        let s = try f.store()
        let head = try f.sqlite("SELECT size FROM signed_head").1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(head == String(try s.custodySize()))
        let r = try s.verify()
        #expect(r.ok && r.steps.contains { $0.name == "signed head" && $0.ok } && r.steps.contains { $0.name == "schema" && $0.ok }, "\(r.problems)")
    }

    @Test func aTailRewrittenWithoutTheKeyIsNamedAndNeverSignedOver() throws {
        let f = try store()
        let size = try f.store().custodySize()
        try rewrite(f, seq: size - 2)
        let r = try f.store().verify()
        // Every hash is consistent again, and the triggers are back: only the signature tells.
        #expect(r.steps.filter { !$0.ok }.map(\.name) == ["signed head"], "\(r.problems)")
        #expect(r.problems.first?.contains("without the signing key") == true, "\(r.problems)")
        // The next write refuses rather than sign the forgery, and writes nothing.
        let e = errorOf { try f.store().addUser(name: "zed", role: .moderator) }
        #expect(e?.kind == .invalidState && e?.description.contains("signed head") == true, "\(String(describing: e))")
        #expect(try f.store().custodySize() == size)
    }

    @Test func entriesAppendedOrAHeadDeletedWithoutTheKeyAreNamed() throws {
        let f = try store()
        try f.sqlite("DELETE FROM signed_head")
        #expect(try f.store().verify().problems.contains { $0.contains("no signed head") })
        #expect(errorKind { try f.store().addUser(name: "zed", role: .moderator) } == .invalidState)
    }

    @Test func aProcessThatCannotReadTheKeyWritesNothing() throws {
        let f = try store()
        let size = try f.store().custodySize()
        let s = try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), keyPath: f.dir.appendingPathComponent("missing.key").path)
        let e = errorOf { try s.addUser(name: "zed", role: .moderator) }
        #expect(e?.kind == .storage && e?.description.contains("signing key") == true, "\(String(describing: e))")
        #expect(try f.store().custodySize() == size)
        // A read needs no key.
        #expect(try s.users().count == 2)
    }

    /// Finding 4: a trigger that drops one user's evidence reads (and their Merkle nodes).
    @Test func aTriggerThatHidesEvidenceReadsFailsTheReadAndIsNamed() throws {
        let f = try store()
        let (status, out) = try f.sqlite("""
            CREATE TRIGGER hide_alice BEFORE INSERT ON custody WHEN NEW.actor = 'alice' AND NEW.action = 'evidence.view'
            BEGIN SELECT RAISE(IGNORE); END;
            """)
        #expect(status == 0, "\(out)")
        let size = try f.store().custodySize()
        let e = errorOf { _ = try f.store("alice").readFlag("f1", purpose: "triage") }
        #expect(e?.kind == .storage && e?.description.contains("was not stored") == true, "\(String(describing: e))")
        #expect(try f.store().custodySize() == size)
        let r = try f.store().verify()
        #expect(r.steps.first { $0.name == "schema" }?.problems == ["the schema has trigger hide_alice, which no migration creates: added behind Custos's back"], "\(r.problems)")
    }

    /// Finding 19: the append-only triggers dropped, nothing else changed.
    @Test func droppedAppendOnlyTriggersAreNamed() throws {
        let f = try store()
        try f.sqlite("DROP TRIGGER custody_no_update; DROP TRIGGER decisions_no_delete")
        let p = try f.store().verify().problems
        #expect(p.count == 2 && p.allSatisfy { $0.contains("dropped behind Custos's back") }, "\(p)")
        #expect(p.contains { $0.contains("custody_no_update") } && p.contains { $0.contains("decisions_no_delete") })
    }
}

func errorOf(_ body: () throws -> Void) -> CustosError? {
    do { try body(); return nil } catch let e as CustosError { return e } catch { return nil }
}

/// Finding 2: a hold follows the evidence into the case it was merged into.
@Suite struct HoldsFollowTheEvidence {
    let day: Int64 = 86_400_000

    @Test func aMergedCasesFlagStaysWhileTheCaseItJoinedIsHeld() throws {
        let f = try team()
        f.now = Int64(Date().timeIntervalSince1970 * 1000)
        // Adults in the UK: each case is routed to NCMEC and the NCA, so one export leaves it open.
        try f.ingest([flagLine(id: "a", text: "secret-alpha", adultCountry: "GB"),
                      flagLine(id: "c", text: "secret-charlie", adult: "u-6", adultCountry: "GB")].joined(separator: "\n") + "\n")
        for flag in ["a", "c"] {
            for n in ["alice", "bob"] {
                _ = try f.store(n).claim(flag)
                _ = try f.store(n).decide(flag, outcome: .confirm, reason: "grooming", category: .grooming, urgent: nil, annotations: [])
            }
        }
        let cases = try f.store("cora").cases()
        #expect(cases.count == 2, "\(cases)")
        let s = try f.store("cora")
        for c in ["C-000001", "C-000002"] {
            try s.recordReferral(try s.prepareReferral(caseName: c, agencyCode: "NCMEC", key: try s.signingKey()), tagManifestSHA256: String(repeating: "0", count: 64))
        }
        try f.store("cora").mergeCases("C-000001", "C-000002")
        f.now += 300 * day
        try f.store("cora").extendHold(caseName: "C-000001", until: f.now + 1000 * day, reason: "LE request 7")
        f.now += 100 * day  // C-000002's own hold has ended; C-000001's runs on
        #expect(try f.store("cora").retention(dryRun: false).isEmpty)
        let held = try f.store("cora").flagHolds()
        #expect(held.map(\.flag).sorted() == ["det:a", "det:c"])
        #expect(held.allSatisfy { $0.caseID == "C-000001" && $0.active && $0.holdUntil == Timestamp.utcString(millis: f.now + 900 * day) }, "\(held)")
        f.now += 901 * day
        #expect(try f.store("cora").retention(dryRun: false).map(\.flags).sorted { $0[0] < $1[0] } == [["det:a"], ["det:c"]])
    }
}
