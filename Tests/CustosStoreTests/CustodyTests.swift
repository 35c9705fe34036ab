import Crypto
import CustosCore
@testable import CustosStore
import Foundation
import GRDB
import Testing

@Suite struct CustodyLogIntegrity {
    func populated() throws -> Fixture {
        let f = try Fixture()
        try f.ingest((0..<6).map { flagLine(id: "f\($0)", text: "message \($0)") }.joined(separator: "\n") + "\n")
        let s = try f.store()
        try s.makeCheckpoint(key: try s.signingKey())
        return f
    }

    /// What verify names, but for the schema step: these edits drop the append-only triggers
    /// first, which the schema step names on its own (`SchemaAndSignedHead`).
    func problems(_ f: Fixture) throws -> [String] { try f.store().verify().steps.filter { $0.name != "schema" }.flatMap(\.problems) }

    @Test func triggersRefuseUpdateAndDelete() throws {
        let f = try populated()
        for sql in ["UPDATE custody SET actor = 'x' WHERE seq = 1", "DELETE FROM custody WHERE seq = 1",
                    "UPDATE evidence SET document = 'x'", "DELETE FROM evidence", "UPDATE flags SET score = 0",
                    "DELETE FROM checkpoints", "UPDATE merkle_nodes SET hash = x'00'"] {
            let (status, out) = try f.sqlite(sql)
            #expect(status != 0, "\(sql) was allowed")
            #expect(out.contains("refused") || out.contains("append-only"), "\(out)")
        }
        #expect(try problems(f).isEmpty)
    }

    @Test func anUntouchedStoreVerifies() throws {
        let r = try populated().store().verify()
        #expect(r.ok && r.entries > 8 && r.checkpoints == 1 && r.conversations == 6)
    }

    @Test func aMessageEditedWithTheShellIsNamed() throws {
        let f = try populated()
        try f.sqlite("DROP TRIGGER evidence_no_update; UPDATE evidence SET document = replace(document, '\"message 3\"', '\"message 9\"');")
        let p = try problems(f)
        #expect(p.count == 1)
        #expect(p[0].contains("det:f3") && p[0].contains("evidence was changed"))
    }

    @Test func aCustodyRowEditedAfterDroppingTheTriggersIsNamed() throws {
        let f = try populated()
        try f.sqlite("DROP TRIGGER custody_no_update; UPDATE custody SET actor = 'mallory' WHERE seq = 4;")
        let p = try problems(f)
        #expect(p.first?.contains("custody entry 4") == true)
    }

    @Test func aRewrittenAndRechainedHistoryFailsAgainstTheSignedCheckpoint() throws {
        let f = try populated()
        // Rewrite entry 4 and recompute its leaf, its chain and every later chain link and Merkle
        // node, as someone with the code but without the signing key could.
        let s = try f.store()
        let entries = try s.custodyEntries()
        var chain = CustodyEntry.genesisChain
        var sql = "DROP TRIGGER custody_no_update; DROP TRIGGER merkle_nodes_no_delete; DELETE FROM merkle_nodes;"
        var builder = Merkle.FrontierBuilder()
        for var e in entries {
            if e.seq == 4 { e.actor = "mallory" }
            let leaf = e.leafHash
            chain = CustodyEntry.chain(previous: chain, leaf: leaf)
            sql += "UPDATE custody SET actor = '\(e.actor)', leaf_hash = x'\(Hex.encode(leaf))', chain_hash = x'\(Hex.encode(chain))' WHERE seq = \(e.seq);"
            for n in builder.append(leaf) { sql += "INSERT INTO merkle_nodes VALUES (\(n.level), \(n.index), x'\(Hex.encode(n.hash))');" }
        }
        let (status, out) = try f.sqlite(sql)
        #expect(status == 0, "\(out)")
        let p = try problems(f)
        #expect(p.count == 2, "\(p)")
        #expect(p.contains { $0.contains("signed head") && $0.contains("without the signing key") }, "\(p)")
        #expect(p.contains { $0.contains("checkpoint 1") && $0.contains("rewritten") }, "\(p)")
    }

    @Test func aTruncatedLogFailsAgainstTheLastCheckpoint() throws {
        let f = try populated()
        try f.sqlite("DROP TRIGGER custody_no_delete; DELETE FROM custody WHERE seq >= 7;")
        let p = try problems(f)
        #expect(p.contains { $0.contains("truncated") })
    }

    @Test func reorderedEntriesAreNamed() throws {
        let f = try populated()
        try f.sqlite("""
            DROP TRIGGER custody_no_update;
            UPDATE custody SET seq = -1 WHERE seq = 3; UPDATE custody SET seq = 3 WHERE seq = 4; UPDATE custody SET seq = 4 WHERE seq = -1;
            """)
        let p = try problems(f)
        #expect(p.first?.contains("custody entry 3") == true)
    }

    @Test func aFlagInsertedBehindTheLogsBackIsNamed() throws {
        let f = try populated()
        try f.sqlite("INSERT INTO flags(detector, flag_id, detected_at, detected_ms, platform, conversation_id, record_hash, ingested_at) VALUES ('det', 'ghost', 'x', 0, 'p', 1, 'h', 'now')")
        #expect(try problems(f).contains { $0.contains("det:ghost") })
    }

    @Test func proofsFromTheStoreVerifyOfflineAndConsistencyHolds() throws {
        let f = try populated()
        let s = try f.store()
        let first = try s.checkpoint(id: nil)
        try f.ingest(flagLine(id: "later") + "\n")
        let second = try s.makeCheckpoint(key: try s.signingKey())
        let key = try s.publicKey()
        for seq in [Int64(0), 3, first.size - 1] {
            let proof = try s.inclusionProof(seq: seq, checkpoint: second)
            let entry = try s.custodyEntry(seq: seq).canonicalBytes
            #expect(try TlogProof(text: proof.text).verify(entry: entry, key: key).size == second.size)
        }
        let cproof = try s.consistencyProof(from: first, to: second)
        #expect(Merkle.verifyConsistency(size1: first.size, size2: second.size, root1: first.root, root2: second.root, proof: cproof))
        #expect(try s.checkpoints().count == 2)
        #expect(try s.verify().ok)
    }

    @Test func aCheckpointSignedByAnotherKeyFails() throws {
        let f = try populated()
        let s = try f.store()
        let cp = try s.checkpoint(id: nil)
        let forged = try SignedNote.sign(text: Checkpoint(origin: try s.organisation().origin, size: cp.size, root: cp.root).text,
                                         name: try s.organisation().origin, key: Curve25519.Signing.PrivateKey())
        try f.sqlite("INSERT INTO checkpoints(size, root, note, created_at) VALUES (\(cp.size), x'\(Hex.encode(cp.root))', '\(forged)', 'now')")
        #expect(try problems(f).contains { $0.contains("checkpoint 2") })
    }
}

/// Checkpoints kept outside the store catch what the store alone cannot: a rollback to an
/// older copy, and a history rewritten and re-signed with the organisation's own key.
@Suite struct OutsideCheckpoints {
    @Test func aStoreRolledBackBehindAnOutsideCheckpointFails() throws {
        let f = try Fixture()
        try f.ingest(flagLine(id: "a") + "\n")
        let older = f.dir.appendingPathComponent("older.db").path
        #expect(try f.sqlite(".backup '\(older)'").0 == 0)
        try f.ingest(flagLine(id: "b", text: "second") + "\n")
        let s = try f.store()
        let outside = try s.makeCheckpoint(key: try s.signingKey()).note
        let key = try s.publicKey()
        #expect(try s.verify(anchors: [outside], anchorKey: key).ok)
        // Roll the store back to the older copy: alone it verifies; against the outside checkpoint it fails.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: f.db + suffix) }
        try FileManager.default.copyItem(atPath: older, toPath: f.db)
        let rolledBack = try f.store()
        #expect(try rolledBack.verify().ok)
        let r = try rolledBack.verify(anchors: [outside], anchorKey: key)
        #expect(r.steps.first { $0.name == "outside checkpoints" }?.problems.first?.contains("rolled back") == true, "\(r.problems)")
    }

    @Test func aHistoryRewrittenAndResignedWithTheSameKeyFails() throws {
        let f = try Fixture()
        try f.ingest([flagLine(id: "a"), flagLine(id: "b", text: "2")].joined(separator: "\n") + "\n")
        let s = try f.store()
        let outside = try s.makeCheckpoint(key: try s.signingKey()).note
        // The key holder rewrites entry 4, recomputes every leaf, link and node, drops the stored
        // checkpoints and signs a new one: the store alone verifies.
        var chain = CustodyEntry.genesisChain
        var sql = "DROP TRIGGER custody_no_update; DROP TRIGGER merkle_nodes_no_delete; DROP TRIGGER checkpoints_no_delete; DELETE FROM merkle_nodes; DELETE FROM checkpoints;"
        var builder = Merkle.FrontierBuilder()
        for var e in try s.custodyEntries() {
            if e.seq == 4 { e.actor = "mallory" }
            let leaf = e.leafHash
            chain = CustodyEntry.chain(previous: chain, leaf: leaf)
            sql += "UPDATE custody SET actor = '\(e.actor)', leaf_hash = x'\(Hex.encode(leaf))', chain_hash = x'\(Hex.encode(chain))' WHERE seq = \(e.seq);"
            for n in builder.append(leaf) { sql += "INSERT INTO merkle_nodes VALUES (\(n.level), \(n.index), x'\(Hex.encode(n.hash))');" }
        }
        // ... and, holding the key, signs the rewritten log's head.
        let size = Int64(try s.custodyEntries().count)
        let root = Merkle.root(leaves: try s.custodyEntries().map { e in e.seq == 4 ? { var e = e; e.actor = "mallory"; return e }().leafHash : e.leafHash })
        let origin = try s.organisation().origin
        let head = try SignedNote.sign(text: Checkpoint(origin: origin, size: size, root: root).text, name: origin, key: try s.signingKey())
        sql += "UPDATE signed_head SET size = \(size), root = x'\(Hex.encode(root))', note = '\(head)';"
        #expect(try f.sqlite(sql).0 == 0)
        let forked = try f.store()
        try forked.makeCheckpoint(key: try forked.signingKey())
        // Alone it verifies, but for the append-only triggers the rewrite dropped, and the new
        // checkpoint's id, which the log already gave the deleted one.
        let alone = try forked.verify()
        #expect(alone.steps.filter { !$0.ok }.map(\.name) == ["schema", "state replay"])
        #expect(alone.steps.first { $0.name == "state replay" }?.problems.first?.contains("audit.checkpoint 1) cannot be applied") == true, "\(alone.problems)")
        let r = try forked.verify(anchors: [outside], anchorKey: try forked.publicKey())
        #expect(r.steps.first { $0.name == "outside checkpoints" }?.problems.first?.contains("rewritten or forked") == true, "\(r.problems)")
    }

    @Test func aCheckpointSignedByAnotherKeyIsRefused() throws {
        let f = try Fixture()
        let s = try f.store()
        let outside = try s.makeCheckpoint(key: try s.signingKey()).note
        let r = try s.verify(anchors: [outside], anchorKey: Curve25519.Signing.PrivateKey().publicKey)
        #expect(r.problems.contains { $0.contains("not a checkpoint signed by the pinned key") })
    }
}

/// State tables are a fold of the log: an edit made with the sqlite3 shell (triggers dropped)
/// to any table the fold covers is named by `audit verify`.
@Suite struct StateReplay {
    /// A store with users, a changed setting, an agency change, a confirmed, a dismissed and a
    /// claimed flag, and a checkpoint.
    func workflow() throws -> Fixture {
        let f = try team()
        try f.ingest([flagLine(id: "a", text: "1"), flagLine(id: "b", text: "2"), flagLine(id: "c", text: "3")].joined(separator: "\n") + "\n")
        try f.store().setSetting("lease-minutes", "30")
        try f.store("cora").setAgency(code: "NCA", name: nil, jurisdictions: nil, profile: nil, route: .never, retentionDays: nil)
        for n in ["alice", "bob"] {
            _ = try f.store(n).claim("a")
            _ = try f.store(n).decide("a", outcome: .confirm, reason: "grooming by \(n)", category: .grooming, urgent: nil, annotations: [])
        }
        _ = try f.store("alice").claim("b")
        _ = try f.store("alice").decide("b", outcome: .dismiss, reason: "benign", category: nil, urgent: nil, annotations: [])
        _ = try f.store("bob").claim("c")
        let s = try f.store()
        try s.makeCheckpoint(key: try s.signingKey())
        return f
    }

    @Test func theReplayEqualsTheTablesAfterAWorkflow() throws {
        let r = try workflow().store().verify()
        #expect(r.ok, "\(r.problems)")
        #expect(r.steps.contains { $0.name == "state replay" && $0.ok })
    }

    @Test(arguments: [
        ("DROP TRIGGER IF EXISTS users_no_update; UPDATE users SET role = 'lead' WHERE name = 'alice'", "users \"alice\": role"),
        ("INSERT INTO users(name, role, created_at) VALUES ('eve', 'admin', 'x')", "users \"eve\" is not produced"),
        ("DELETE FROM users WHERE name = 'bob'", "users \"bob\", which the custody log records, is missing"),
        ("UPDATE settings SET value = 'off' WHERE key = 'second-review'", "settings \"second-review\": value"),
        ("UPDATE agencies SET route = 'always' WHERE code = 'NCA'", "agencies \"NCA\": route"),
        ("UPDATE flag_state SET status = 'confirmed', queue = NULL WHERE flag = (SELECT id FROM flags WHERE flag_id = 'b')", "flag \"det:b\""),
        ("UPDATE flag_state SET claimed_by = 'alice' WHERE flag = (SELECT id FROM flags WHERE flag_id = 'c')", "flag \"det:c\""),
        ("DROP TRIGGER decisions_no_update; UPDATE decisions SET reason = 'forged' WHERE reason = 'grooming by bob'", "decisions \"2\": reason"),
        ("DROP TRIGGER decisions_no_update; UPDATE decisions SET reviewer = 'lee' WHERE reviewer = 'bob'", "decisions \"2\": reviewer"),
        ("DROP TRIGGER decisions_no_delete; DELETE FROM decisions WHERE reason = 'benign'", "decisions \"3\", which the custody log records, is missing"),
        ("DROP TRIGGER checkpoints_no_delete; DELETE FROM checkpoints", "checkpoints \"1\", which the custody log records, is missing"),
        ("UPDATE store_meta SET value = 'Someone Else' WHERE key = 'org'", "store_meta \"org\": value"),
        ("UPDATE store_meta SET value = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n' WHERE key = 'public_key_pem'", "re-keyed"),
    ] as [(String, String)])
    func anEditBehindTheLogsBackIsNamed(sql: String, named: String) throws {
        let f = try workflow()
        let (status, out) = try f.sqlite(sql)
        #expect(status == 0, "\(out)")
        let problems = try f.store().verify().problems
        #expect(problems.contains { $0.contains(named) }, "\(problems)")
    }

    /// A log whose decisions break the review rules is named even when every hash is right:
    /// here a lead confirming alone what they escalated, written as entries by the key holder.
    @Test func aDecisionThatBreaksTheRulesIsNamed() throws {
        var projection = Projection(replaying: true)
        let at = "2026-11-20T14:00:00.000Z"
        func entry(_ seq: Int64, _ actor: String, _ action: CustodyAction, _ subject: String, _ details: String) -> CustodyEntry {
            CustodyEntry(seq: seq, at: at, actor: actor, osUser: actor, action: action.rawValue, subjectType: action.subjectType.rawValue,
                         subjectID: subject, details: details, evidenceHash: nil)
        }
        let scratch = try DatabaseQueue()
        try scratch.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            _ = try LogReplay.prepare(db, versions: Set(Migrations.all.map(\.version)))
            try db.execute(sql: """
                INSERT INTO flags(id, detector, flag_id, detected_at, detected_ms, platform, conversation_id, record_hash, ingested_at)
                VALUES (1, 'd', 'f', ?, 0, 'p', 1, 'h', ?)
                """, arguments: [at, at])
            try projection.apply(entry(0, "admin", .userAdd, "lee", #"{"role":"lead"}"#), db: db)
            try projection.apply(entry(1, "admin", .flagIngest, "d:f", "{}"), db: db)
            try projection.apply(entry(2, "lee", .flagDecide, "d:f", #"{"final":false,"outcome":"escalate","reason":"r","result":"lead_review","stage":"open"}"#), db: db)
            #expect(projection.problems.isEmpty, "\(projection.problems)")
            try projection.apply(entry(3, "lee", .flagDecide, "d:f", #"{"category":"grooming","final":true,"outcome":"confirm","reason":"alone","result":"confirmed","stage":"lead_review"}"#), db: db)
        }
        #expect(projection.problems.first?.contains("breaks the review rules") == true, "\(projection.problems)")
    }
}

/// Checkpoints signed on their own at the `checkpoint-minutes` interval, by any write.
@Suite struct AutomaticCheckpoints {
    @Test func aWriteAfterTheIntervalSignsACheckpointAndOnlyThen() throws {
        let f = try Fixture()
        f.now = Int64(Date().timeIntervalSince1970 * 1000)  // the store was created on the real clock
        try f.store().setSetting("checkpoint-minutes", "30")
        func count() throws -> Int { try f.store().checkpoints().count }
        func write(_ user: String) throws {
            let s = try f.store()
            s.autoCheckpoint = true
            try s.addUser(name: user, role: .moderator)
        }
        let before = try count()
        // Within the interval: nothing.
        f.now += 10 * 60_000
        try write("alice")
        #expect(try count() == before)
        // Past it: the next write signs one, covering that write.
        f.now += 40 * 60_000
        try write("bob")
        #expect(try count() == before + 1)
        let latest = try #require(try f.store().checkpoints().last)
        #expect(latest.size == (try f.store().custodySize()) - 1)
        // Turned off: never.
        try f.store().setSetting("checkpoint-minutes", "0")
        f.now += 24 * 60 * 60_000
        try write("carol")
        #expect(try count() == before + 1)
        #expect(try f.store().verify().ok)
    }
}
