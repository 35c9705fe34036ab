import Crypto
import CustosCore
import CustosTestSupport
@testable import CustosStore
import Foundation
import Testing

@Suite struct IngestBehaviour {
    @Test func storesGoodRecordsAndLogsEachOne() throws {
        let f = try Fixture()
        let (s, rejects) = try f.ingest([flagLine(id: "a"), flagLine(id: "b", score: nil)].joined(separator: "\n") + "\n")
        #expect(s.ingested == 2 && s.rejected == 0 && rejects.isEmpty)
        let flags = try f.store().flags()
        #expect(flags.map(\.key) == ["det:a", "det:b"])
        let entries = try f.store().custodyEntries().filter { $0.action == "flag.ingest" }
        #expect(entries.map(\.subjectID) == ["det:a", "det:b"])
        #expect(entries[0].evidenceHash == flags[0].evidenceHash)
        #expect(try f.store().verify().ok)
    }

    @Test func idempotentAndConflictsLeaveTheStoredRecordUntouched() throws {
        let f = try Fixture()
        try f.ingest(flagLine(id: "a") + "\n")
        let before = try f.sqlite("SELECT * FROM evidence; SELECT * FROM flags;").1
        let entries = try f.store().custodySize()
        let (s, _) = try f.ingest(flagLine(id: "a") + "\n")
        #expect(s.duplicate == 1 && s.ingested == 0 && s.rejected == 0)
        let (s2, rejects) = try f.ingest(flagLine(id: "a", text: "changed") + "\n")
        #expect(s2.rejected == 1)
        #expect(rejects[0].reason.contains("conflict"))
        #expect(try f.sqlite("SELECT * FROM evidence; SELECT * FROM flags;").1 == before)
        #expect(try f.store().custodySize() == entries)
    }

    @Test func theAcceptanceMixStoresExactlyTheGoodOnesAndNamesEachBadLine() throws {
        let f = try Fixture()
        try f.ingest(flagLine(id: "existing") + "\n")
        _ = try f.write("blob.bin", "abc")
        let goodSHA = SHA256Hex.of(Data("abc".utf8))
        let lines = [
            flagLine(id: "good1"),                                                              // 1
            "{\"flag_id\": ",                                                                   // 2 malformed JSON
            flagLine(id: "x").replacingOccurrences(of: "\"flag_id\":\"x\",", with: ""),         // 3 missing flag_id
            flagLine(id: "s").replacingOccurrences(of: "\"sender\":\"u-2\"", with: "\"sender\":\"u-9\""), // 4 unknown sender
            flagLine(id: "t", detected: "20/11/2026"),                                          // 5 bad timestamp
            flagLine(id: "sc", score: 1.5),                                                     // 6 score
            flagLine(id: "att", attachments: ",\"attachments\":[{\"sha256\":\"\(String(repeating: "0", count: 64))\",\"size\":3,\"path\":\"blob.bin\"}]"), // 7
            flagLine(id: "good2", attachments: ",\"attachments\":[{\"name\":\"b\",\"sha256\":\"\(goodSHA)\",\"size\":3,\"path\":\"blob.bin\"}]"),  // 8
            flagLine(id: "existing"),                                                           // 9 duplicate
            flagLine(id: "existing", text: "other"),                                            // 10 conflict
            "",                                                                                 // 11 blank: skipped
            "\u{FF}\u{FE}",                                                                     // 12 not UTF-8? (valid UTF-8 chars, not JSON)
        ]
        let (s, rejects) = try f.ingest(lines.joined(separator: "\n") + "\n", name: "mix.jsonl")
        #expect(s.ingested == 2 && s.duplicate == 1)
        #expect(s.rejected == 8)
        let byLine = Dictionary(uniqueKeysWithValues: rejects.map { ($0.location, $0.reason) })
        #expect(byLine["mix.jsonl:2"]?.contains("malformed JSON") == true)
        #expect(byLine["mix.jsonl:3"]?.contains("flag_id: missing") == true)
        #expect(byLine["mix.jsonl:4"]?.contains("unknown sender") == true)
        #expect(byLine["mix.jsonl:5"]?.contains("detected_at") == true)
        #expect(byLine["mix.jsonl:6"]?.contains("outside [0, 1]") == true)
        #expect(byLine["mix.jsonl:7"]?.contains("sha256 mismatch") == true)
        #expect(byLine["mix.jsonl:10"]?.contains("conflict") == true)
        #expect(byLine["mix.jsonl:12"] != nil)
        #expect(rejects.first { $0.location == "mix.jsonl:4" }?.raw == Array(lines[3].utf8))
        #expect(try f.store().flags().map(\.flagID).sorted() == ["existing", "good1", "good2"])
        #expect(try f.store().blob(sha256: goodSHA) == Data("abc".utf8))
        // Again: nothing changes.
        let size = try f.store().custodySize()
        let (again, _) = try f.ingest(lines.joined(separator: "\n") + "\n", name: "mix.jsonl")
        #expect(again.ingested == 0 && again.duplicate == 3 && again.rejected == 8)
        #expect(try f.store().custodySize() == size)
    }

    @Test func invalidUTF8AndHugeLinesAreRejectedWithTheirLine() throws {
        let f = try Fixture()
        var bytes = Array((flagLine(id: "ok") + "\n").utf8)
        bytes += Array("{\"flag_id\":\"".utf8) + [0xC3, 0x28] + Array("\"}\n".utf8)
        bytes += [UInt8](repeating: 0x78, count: RecordLimits.maxLineBytes + 10) + [0x0A]
        bytes += Array((flagLine(id: "ok2") + "\n").utf8)
        let url = f.dir.appendingPathComponent("bad.jsonl")
        try Data(bytes).write(to: url)
        let ing = Ingestor(store: try f.store())
        var rejects: [Rejection] = []
        ing.onReject = { rejects.append($0) }
        try ing.ingestJSONLines(FileHandle(forReadingAtPath: url.path)!, name: "bad.jsonl", baseDirectory: f.dir)
        #expect(ing.summary.ingested == 2)
        try #require(rejects.map(\.location) == ["bad.jsonl:2", "bad.jsonl:3"], "\(rejects.map { "\($0.location) \($0.reason)" })")
        #expect(rejects[0].reason.contains("UTF-8"))
        #expect(rejects[1].reason.contains("exceeds the limit"))
    }

    @Test func attachmentPathsCannotEscapeThroughSymlinks() throws {
        let f = try Fixture()
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("custos-secret-\(UUID().uuidString)")
        try Data("abc".utf8).write(to: outside)
        defer { try? FileManager.default.removeItem(at: outside) }
        try FileManager.default.createSymbolicLink(at: f.dir.appendingPathComponent("link.bin"), withDestinationURL: outside)
        let sha = SHA256Hex.of(Data("abc".utf8))
        let (s, rejects) = try f.ingest(flagLine(id: "l", attachments: ",\"attachments\":[{\"sha256\":\"\(sha)\",\"size\":3,\"path\":\"link.bin\"}]") + "\n")
        #expect(s.rejected == 1)
        #expect(rejects[0].reason.contains("leaves the input file's folder"))
    }

    @Test func textIsStoredByteExact() throws {
        let f = try Fixture()
        let hostile = "emoji 😊👩‍👩‍👧 rtl \u{202E}txet\u{202C} <script>alert(1)</script> ]]> & \"quotes\" 'single' \u{200B}\ttab\r\nline"
        let long = String(repeating: "ä", count: 60_000)  // 120 KB of UTF-8
        try f.ingest(flagLine(id: "h", text: hostile) + "\n" + flagLine(id: "long", text: long) + "\n")
        let h = try f.store().readFlag("det:h", purpose: "test")
        #expect(Array(h.conversation.messages[0].text.utf8) == Array(hostile.utf8))
        #expect(try f.store().readFlag("long", purpose: "test").conversation.messages[0].text == long)
        // The text in SQLite is exactly the UTF-8 received (SQLite's own JSON reader decodes it).
        let hex = try f.sqlite("SELECT hex(json_extract(e.document, '$.conversation.messages[0].text')) FROM evidence e JOIN flags f ON f.conversation_id = e.conversation_id WHERE f.flag_id = 'h'").1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hex == Hex.encode(Array(hostile.utf8)).uppercased())
    }

    @Test func readingEvidenceIsLogged() throws {
        let f = try Fixture()
        try f.ingest(flagLine(id: "a") + "\n")
        _ = try f.store().readFlag("a", purpose: "triage")
        let last = try #require(try f.store().custodyEntries().last)
        #expect(last.action == "evidence.view" && last.subjectID == "det:a" && last.details.contains("triage"))
    }
}

@Suite struct StoreLifecycle {
    @Test func initRefusesToOverwriteAndRecordsItsSteps() throws {
        let f = try Fixture()
        #expect(errorKind {
            _ = try Store.create(path: f.db, keyPath: nil, org: "x", contactEmail: "a@b.c", actor: Actor(name: "a", osUser: "a"))
        } == .conflict)
        let actions = try f.store().custodyEntries().map(\.action)
        #expect(actions == ["store.init", "key.create", "user.add"])
        let keyPath = Store.defaultKeyPath(forStore: f.db)
        let attrs = try FileManager.default.attributesOfItem(atPath: keyPath)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(errorKind {
            _ = try Store.create(path: f.dir.appendingPathComponent("other.db").path, keyPath: keyPath, org: "x", contactEmail: "a@b.c", actor: Actor(name: "a", osUser: "a"))
        } == .conflict)
        #expect(!FileManager.default.fileExists(atPath: f.dir.appendingPathComponent("other.db").path))
    }

    /// `serve` copies the WAL into the database on a utility thread, not inside the commit a
    /// waiting client's answer depends on. Seen from outside: once that thread has run, the
    /// database file alone (without its WAL) holds what was committed; a command's ingest
    /// leaves it in the WAL until SQLite's own threshold.
    @Test func aServedStoreCopiesTheWALIntoTheDatabaseInTheBackground() throws {
        func flagsInTheDatabaseFileAlone(_ f: Fixture) throws -> String {
            let copy = f.dir.appendingPathComponent("file-alone.db")
            try? FileManager.default.removeItem(at: copy)
            try FileManager.default.copyItem(at: URL(fileURLWithPath: f.db), to: copy)
            return try runTool(["sqlite3", copy.path, "SELECT count(*) FROM flags"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let lines = (1...3).map { flagLine(id: "w\($0)") }.joined(separator: "\n") + "\n"

        let command = try Fixture()
        // Another connection stays open, so closing the ingest's does not checkpoint either.
        let keptOpen = try command.store()
        #expect(try command.ingest(lines).0.ingested == 3)
        #expect(try flagsInTheDatabaseFileAlone(command) == "0")
        withExtendedLifetime(keptOpen) {}

        let served = try Fixture()
        let store = try served.store()
        try store.checkpointWALInBackground(atBytes: 1)
        #expect(try served.ingest(lines, into: store).0.ingested == 3)
        let deadline = Date().addingTimeInterval(30)
        while (store.walCheckpointer?.checkpointsRun ?? 0) == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(store.walCheckpointer?.checkpointsRun ?? 0 >= 1)
        #expect(try flagsInTheDatabaseFileAlone(served) == "3")
    }

    /// Commits made while the background checkpoint copies beside the writers still let the
    /// WAL start again from its beginning at the next write; a WAL copied only beside the
    /// writers grew past 900 MiB in a 100,000-flag API ingest.
    @Test func aServedStoresWALStartsAgainThoughWritersCommittedDuringTheCheckpoint() throws {
        let f = try Fixture()
        let store = try f.store()
        try store.checkpointWALInBackground(atBytes: 1 << 40)  // run by hand below, never by a commit
        guard let checkpointer = store.walCheckpointer else { Issue.record("no checkpointer"); return }
        func ingest(_ ids: ClosedRange<Int>) throws {
            #expect(try f.ingest(ids.map { flagLine(id: "r\($0)") }.joined(separator: "\n") + "\n", into: store).0.ingested == ids.count)
        }
        try ingest(1...50)
        let before = checkpointer.walFrames
        try checkpointer.run(between: { try ingest(51...100) })
        #expect(checkpointer.walFrames > before)
        try ingest(101...101)
        #expect(checkpointer.walFrames < before, "the WAL went on from \(before) frames to \(checkpointer.walFrames)")
    }

    @Test func storeUsesWALAndForeignKeys() throws {
        let f = try Fixture()
        #expect(try f.sqlite("PRAGMA journal_mode").1.contains("wal"))
    }

    @Test func aStoreFromANewerSchemaIsRefusedAndUnchanged() throws {
        let f = try Fixture()
        try f.sqlite("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 'x', 'then')")
        let before = try Data(contentsOf: URL(fileURLWithPath: f.db))
        do { _ = try f.store(); Issue.record("expected refusal") } catch {
            #expect("\(error)".contains("newer than this custos"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: f.db)) == before)
    }

    @Test func anEditedMigrationIsRefused() throws {
        let f = try Fixture()
        try f.sqlite("UPDATE schema_migrations SET sha256 = 'tampered' WHERE version = 1")
        #expect(errorKind { _ = try f.store() } == .invalidState)
    }

    /// Schema 2 builds the Merkle tree over a log that has none, from the stored leaf hashes:
    /// no entry is rewritten. The store is one custos 36fa373 wrote (Tests/Fixtures/schema5/
    /// flags.db: nine flags ingested), turned back into a schema-1 store.
    @Test func upgradingASchema1StoreBuildsTheMerkleTreeWithoutRewritingEntries() throws {
        let f = try Fixture()
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/schema5/flags.db")
        try FileManager.default.removeItem(atPath: f.db)
        try FileManager.default.copyItem(atPath: fixture.path, toPath: f.db)
        let columns = "seq, at, actor, os_user, action, subject_type, subject_id, details, evidence_hash, hex(leaf_hash), hex(chain_hash)"
        let entriesBefore = try f.sqlite("SELECT \(columns) FROM custody ORDER BY seq").1
        let size = Int64(try f.count("custody"))
        // The leaves as the old store holds them (opening it would upgrade it).
        let leaves = try f.sqlite("SELECT hex(leaf_hash) FROM custody ORDER BY seq").1.split(separator: "\n").map { Hex.decode(String($0)) ?? [] }
        let rootBefore = Merkle.root(leaves: leaves)
        // No Merkle tables, migration 2 not applied.
        try f.sqlite("DROP TABLE merkle_nodes; DROP TABLE checkpoints; DELETE FROM schema_migrations WHERE version = 2;")
        // The fixture's signing key was not kept, and the upgrade is a write, which signs the
        // log's head: the copy gets a new key (which verify names as a re-keying, below).
        let key = Curve25519.Signing.PrivateKey()
        let keyFile = f.dir.appendingPathComponent("flags.signing.key").path
        try Store.writeSecret(KeyEncoding.privateKeyPEM(key), to: keyFile)
        try f.sqlite("UPDATE store_meta SET value = '\(KeyEncoding.publicKeyPEM(key.publicKey))' WHERE key = 'public_key_pem'")
        let s = try Store.open(path: f.db, actor: Actor(name: "root", osUser: "root"), access: .verify, keyPath: keyFile)
        // The entries are unchanged (schema 7 adds an `auth` column, NULL in them); the upgrade is recorded after them.
        #expect(try f.sqlite("SELECT \(columns) FROM custody WHERE seq < \(size) ORDER BY seq").1 == entriesBefore)
        #expect(try f.sqlite("SELECT count(*) FROM custody WHERE seq < \(size) AND auth IS NOT NULL").1.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        #expect(try s.custodyEntries().last?.action == CustodyAction.storeMigrate.rawValue)
        let rootAfter = try s.read { db in try Merkle.root(size: size, nodes: MerkleNodes.source(db)) }
        #expect(rootAfter == rootBefore)
        let problems = try s.verify().problems
        #expect(problems.count == 1 && problems[0].contains("re-keyed"), "\(problems)")
    }
}

/// Flag keys from before schema 6: two flags can share `detector:flag_id` when a detector name
/// holds ':'. Custos refuses to act on such a key rather than mix the two flags' custody.
@Suite struct AmbiguousLegacyKeys {
    @Test func aKeyTwoLegacyFlagsShareIsRefusedAndAnUnambiguousOneResolves() throws {
        let f = try Fixture()
        try f.ingest(flagLine(id: "x:y") + "\n")
        let s = try f.store()
        #expect(try s.read { db in try s.resolveFlag("det:x:y", db: db).key } == "det:x:y")
        // What an older custos could have stored: detector "det:x", flag "y".
        #expect(try f.sqlite("""
            INSERT INTO flags(detector, flag_id, model_version, score, detected_at, detected_ms, platform, surface, signals, extra,
                              conversation_id, record_hash, ingested_at)
            SELECT 'det:x', 'y', model_version, score, detected_at, detected_ms, platform, surface, signals, extra, conversation_id,
                   record_hash, ingested_at FROM flags
            """).0 == 0)
        #expect(errorKind { try s.read { db in _ = try s.resolveFlag("det:x:y", db: db) } } == .conflict)
        #expect(errorKind { _ = try f.store("admin").readFlag("det:x:y", purpose: "test") } == .conflict)
    }
}
