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

    /// A process that keeps the store open (`serve`) extends the tree it signed last: a rewrite
    /// made behind its back between two of its writes is still never signed, by a head or a
    /// checkpoint, and verify names it.
    @Test func aLongRunningWriterNeverSignsARewriteMadeBetweenItsWrites() throws {
        let f = try store()
        let s = try f.store()
        try s.addUser(name: "bob", role: .moderator)
        try rewrite(f, seq: try s.custodySize() - 2)
        try s.addUser(name: "carl", role: .moderator)
        let cp = try s.makeCheckpoint(key: try s.signingKey())
        let r = try f.store().verify()
        #expect(r.steps.first { $0.name == "signed head" }?.ok == false, "\(r.problems)")
        #expect(r.problems.contains { $0.contains("checkpoint \(cp.id)") && $0.contains("rewritten") }, "\(r.problems)")
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

/// Finding 5: blind means blind, for a lead too, and in the custody log.
@Suite struct BlindMeansBlind {
    func firstDecided() throws -> Fixture {
        let f = try team()
        try f.ingest(flagLine(id: "a") + "\n")
        _ = try f.store("alice").claim("a")
        _ = try f.store("alice").decide("a", outcome: .confirm, reason: "asks for photos, secrecy", category: .grooming, urgent: nil, annotations: [])
        return f
    }

    @Test func aLeadWhoMayStillDecideSeesNoEarlierDecisionOfTheRound() throws {
        let f = try firstDecided()
        _ = try f.store("lee").claim("a")
        let lead = try f.store("lee").reviewFlag("a", purpose: "second review")
        #expect(lead.decisions.isEmpty && lead.decisionsHidden)
        let other = try f.store("bob").reviewFlag("a", purpose: "second review")
        #expect(other.decisions.isEmpty && other.decisionsHidden)
        // The first reviewer, and compliance (who cannot decide), see it.
        #expect(try f.store("alice").reviewFlag("a", purpose: "look back").decisions.count == 1)
        #expect(try f.store("cora").reviewFlag("a", purpose: "audit").decisions.count == 1)
        // Once settled, it is history for everyone.
        _ = try f.store("lee").decide("a", outcome: .confirm, reason: "agree", category: .grooming, urgent: nil, annotations: [])
        #expect(try f.store("bob").reviewFlag("a", purpose: "history").decisions.count == 2)
    }

    @Test func theCustodyLogWithholdsTheRoundsDecisionsAndItsReadIsLogged() throws {
        let f = try firstDecided()
        let size = try f.store().custodySize()
        let seen = try f.store("bob").readCustodyLog(subjects: ["det:a"])
        let decide = try #require(seen.first { $0.action == CustodyAction.flagDecide.rawValue })
        #expect(!decide.details.contains("secrecy") && decide.details.contains("withheld"), "\(decide.details)")
        // The read is an evidence read, by bob, in the log.
        let after = try f.store().custodyEntries()
        #expect(after.count == size + 1 && after.last?.action == CustodyAction.evidenceView.rawValue && after.last?.actor == "bob")
        // Compliance reads it whole; the whole timeline withholds it from bob too.
        #expect(try f.store("cora").readCustodyLog(subjects: ["det:a"]).contains { $0.details.contains("secrecy") })
        #expect(try !f.store("bob").readCustodyLog().contains { $0.details.contains("secrecy") })
    }
}

/// Findings 7, 8 and 22: retention wipes what it erased, detector text included, and says
/// which copies it cannot reach.
@Suite struct RetentionWipes {
    let day: Int64 = 86_400_000

    func dismissed() throws -> Fixture {
        let f = try team()
        f.now = Int64(Date().timeIntervalSince1970 * 1000)
        let line = flagLine(id: "b", text: "secret-bravo").replacingOccurrences(of: "\"flag_id\":\"b\",", with: "\"flag_id\":\"b\",\"signals\":[\"quotes: secret-signal\"],\"vendor_note\":\"secret-extra\",")
        try f.ingest(line + "\n")
        _ = try f.store("alice").claim("b")
        _ = try f.store("alice").decide("b", outcome: .dismiss, reason: "benign", category: nil, urgent: nil, annotations: [])
        f.now += 31 * day
        return f
    }

    @Test func detectorFreeTextGoesWithTheEvidenceAndTheStoreStillVerifies() throws {
        let f = try dismissed()
        #expect(try f.fileBytes().firstRange(of: Data("secret-signal".utf8)) != nil)
        #expect(try f.store("cora").retention(dryRun: false).map(\.flags) == [["det:b"]])
        let bytes = try f.fileBytes()
        for secret in ["secret-bravo", "secret-signal", "secret-extra"] {
            #expect(bytes.firstRange(of: Data(secret.utf8)) == nil, "\(secret) is still in the store's files")
        }
        let r = try f.store().verify()
        #expect(r.ok, "\(r.problems)")
        // Blanking is a purge's alone: the trigger refuses it otherwise.
        #expect(try f.sqlite("UPDATE flags SET signals = NULL").0 != 0)
    }

    @Test func aReaderHoldingASnapshotMakesTheRunFailAndTheNextOneWipes() throws {
        let f = try dismissed()
        // Another process (the sqlite3 shell) holds a read transaction open over the whole run.
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        reader.arguments = ["sqlite3", f.db]
        let input = Pipe(), output = Pipe()
        reader.standardInput = input
        reader.standardOutput = output
        try reader.run()
        input.fileHandleForWriting.write(Data("BEGIN; SELECT count(*) FROM evidence;\n".utf8))
        _ = output.fileHandleForReading.availableData  // its snapshot is open once it answers
        let store = try f.store("cora")
        let e = errorOf { _ = try store.retention(dryRun: false) }
        #expect(e?.kind == .storage && e?.description.contains("not yet wiped") == true, "\(String(describing: e))")
        #expect(try f.fileBytes().firstRange(of: Data("secret-bravo".utf8)) != nil)
        try input.fileHandleForWriting.close()
        reader.waitUntilExit()
        // Nothing is due any more, and the run wipes what the last one could not.
        #expect(try f.store("cora").retention(dryRun: false).isEmpty)
        #expect(try f.fileBytes().firstRange(of: Data("secret-bravo".utf8)) == nil)
    }

    @Test func backupsMadeBeforeAnErasureAreNamed() throws {
        let f = try dismissed()
        let copy = f.dir.appendingPathComponent("before.db").path
        _ = try f.store().backup(to: copy)
        #expect(try f.store().backupsHoldingErased().isEmpty)
        _ = try f.store("cora").retention(dryRun: false)
        let held = try f.store().backupsHoldingErased()
        #expect(held.count == 1 && held[0].path == URL(fileURLWithPath: copy).standardizedFileURL.path && held[0].conversations == 1, "\(held)")
    }
}

/// Findings 11, 16, 23 and 1 at the store: credentials, tokens, and one submission at a time.
@Suite struct CredentialsAndLocks {
    @Test func aSessionCannotChangeItsOwnCredentialsAndNothingChanges() throws {
        let f = try team()
        try f.store().setPassword(user: "alice", password: "alice-password-1")
        let before = try f.store().credential(user: "alice")?.stamp
        let session = try Store.open(path: f.db, actor: Actor(name: "alice", osUser: "www", auth: .password))
        let e = errorOf { try session.setPassword(user: "alice", password: "mallory-pass-123") }
        #expect(e?.kind == .invalidState && e?.description.contains("as your OS login") == true, "\(String(describing: e))")
        #expect(errorKind { _ = try session.enrolTOTP(user: "alice") } == .invalidState)
        #expect(try f.store().credential(user: "alice")?.stamp == before)
        #expect(try f.store().custodyEntries().last?.action == CustodyAction.refused.rawValue)
        // As the OS login (the CLI) it works.
        try f.store("alice").setPassword(user: "alice", password: "alice-password-2")
        #expect(try f.store().credential(user: "alice")?.stamp != before)
    }

    @Test func privilegedRolesGetNoTokensAndDetectorsNoPasswords() throws {
        let f = try team()
        #expect(errorKind { _ = try f.store().createToken(user: "cora") } == .invalidState)
        let (_, token) = try f.store().createToken(user: "lee")
        #expect(try f.store().tokenUser(token)?.name == "lee")
        // A role change makes an old token act for nobody.
        try f.sqlite("DROP TRIGGER IF EXISTS users_no_update; UPDATE users SET role = 'admin' WHERE name = 'lee'")
        #expect(try f.store().tokenUser(token) == nil)
        try f.store().addUser(name: "det2", role: .detector)
        #expect(errorKind { try f.store().setPassword(user: "det2", password: "detector-pass-1") } == .invalidInput)
    }

    @Test func oneSubmissionOfACaseAtATime() throws {
        let f = try team()
        let first = try f.store("cora").submissionLock(caseName: "C-000001", agency: "NCMEC")
        let e = errorOf { _ = try f.store("cora").submissionLock(caseName: "1", agency: "NCMEC") }
        #expect(e?.kind == .conflict && e?.description.contains("by cora") == true, "\(String(describing: e))")
        // Another case, or another agency, is not held up.
        _ = try f.store("cora").submissionLock(caseName: "C-000002", agency: "NCMEC")
        first.release()
        _ = try f.store("cora").submissionLock(caseName: "C-000001", agency: "NCMEC")
    }
}
