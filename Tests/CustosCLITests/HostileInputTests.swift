import CustosCore
import Foundation
import Testing

/// Hostile and mistaken input, as a user at a shell would give it: every case ends with a
/// message, an exit status below 128, and nothing stored changed.
@Suite struct HostileInput {
    @Test func foldersFifosAndMissingFilesAreRefusedWithAMessage() throws {
        let c = try CLI()
        try c.initStore()
        let before = try Data(contentsOf: URL(fileURLWithPath: c.db))
        let folder = c.dir.appendingPathComponent("a-folder")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let fifo = c.dir.appendingPathComponent("a-fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for (args, status, words) in [
            (["ingest", folder.path], 65, "is a folder"),
            (["ingest", fifo], 65, "FIFO"),
            (["ingest", "/dev/null"], 65, "a device"),
            (["ingest", c.dir.appendingPathComponent("missing.jsonl").path], 66, "no file"),
        ] as [([String], Int32, String)] {
            let r = try c.run(args + ["--db", c.db])
            #expect(r.status == status && r.err.hasPrefix("custos: ") && r.err.contains(words), "\(args): \(r.status) \(r.err)")
        }
        let asStore = try c.run(["--db", folder.path, "flags"])
        #expect(asStore.status == 65 && asStore.err.contains("is a folder"), "\(asStore.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: c.db)) == before)
    }

    @Test func onlyInitCreatesAStoreAndOtherFilesAreLeftUntouched() throws {
        let c = try CLI()
        let empty = c.dir.appendingPathComponent("empty.db").path
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        let other = c.dir.appendingPathComponent("other.sqlite").path
        _ = try runShell(["sqlite3", other, "CREATE TABLE notes(x); INSERT INTO notes VALUES ('mine');"])
        for file in [empty, other] {
            let before = try Data(contentsOf: URL(fileURLWithPath: file))
            for args in [["flags"], ["user", "add", "x", "--role", "moderator"], ["audit", "verify"]] {
                let r = try c.run(args + ["--db", file])
                #expect(r.status == 65 && r.err.contains("not a Custos store"), "\(args) on \(file): \(r.err)")
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == before)
            #expect(!FileManager.default.fileExists(atPath: file + "-wal"))
        }
    }

    @Test func aReadOnlyCopyCanBeInspectedButNotChanged() throws {
        let c = try CLI()
        try c.initStore()
        #expect(try c.run(["ingest", "-", "--db", c.db], stdin: Data((sampleLine + "\n").utf8)).status == 0)
        #expect(try c.run(["audit", "checkpoint", "--db", c.db]).status == 0)
        let copyDir = c.dir.appendingPathComponent("ro")
        try FileManager.default.createDirectory(at: copyDir, withIntermediateDirectories: true)
        let copy = copyDir.appendingPathComponent("copy.db").path
        _ = try runShell(["sqlite3", c.db, ".backup '\(copy)'"])
        _ = try runShell(["sqlite3", copy, "PRAGMA journal_mode=DELETE;"])
        #expect(chmod(copy, 0o444) == 0 && chmod(copyDir.path, 0o555) == 0)
        defer { chmod(copyDir.path, 0o755) }
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        // Root ignores file modes; the store is still opened read-only by read commands.
        for args in [["flags", "--json"], ["audit", "verify"], ["audit", "log"], ["queue"], ["stats"], ["case", "list"]] {
            let r = try c.run(args + ["--db", copy])
            #expect(r.status == 0, "\(args): \(r.err)")
        }
        #expect(try c.run(["audit", "verify", "--db", copy]).out.contains("OK"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
    }

    @Test func hugeNumbersAreRefusedOnInputAndNothingOverflows() throws {
        let c = try CLI()
        try c.initStore()
        let sla = try c.run(["settings", "set", "urgent-sla-minutes", "9223372036854775807", "--db", c.db])
        #expect(sla.status == 65 && sla.err.contains("urgent-sla-minutes"), "\(sla.err)")
        let lease = try c.run(["settings", "set", "lease-minutes", "0", "--db", c.db])
        #expect(lease.status == 65)
        let retention = try c.run(["agency", "set", "NCA", "--retention-days", "106751991167", "--db", c.db])
        #expect(retention.status != 0 && retention.status < 128)
        // Even a value written behind the tool's back cannot make stats trap.
        _ = try runShell(["sqlite3", c.db, "UPDATE settings SET value = '9223372036854775807' WHERE key = 'urgent-sla-minutes'"])
        let stats = try c.run(["stats", "--db", c.db])
        #expect(stats.status == 0, "\(stats.err)")
    }

    @Test func lookAlikeAndCaseVariantUserNamesAreRefused() throws {
        let c = try CLI()
        try c.initStore()
        #expect(try c.run(["user", "add", "bob", "--role", "moderator", "--db", c.db]).status == 0)
        for name in ["Bob", "BOB", "b\u{043E}b", "b0b", "bo\u{200B}b", "\u{202E}bob"] {
            let r = try c.run(["user", "add", name, "--role", "admin", "--db", c.db])
            #expect([65, 73].contains(r.status), "\(name): \(r.status) \(r.err)")
            #expect(!r.err.contains("\u{202E}") && !r.err.contains("\u{200B}"))
        }
        #expect(try c.run(["user", "list", "--db", c.db]).out.components(separatedBy: "\n").filter { $0.lowercased().contains("bob") }.count == 1)
    }

    @Test func theOSLoginComesFromTheProcessNotTheEnvironment() throws {
        var c = try CLI()
        c.env["USER"] = "someone-else"
        c.env["LOGNAME"] = "someone-else"
        try c.initStore()
        let log = try c.run(["audit", "log", "--json", "--db", c.db]).out
        #expect(!log.contains("someone-else"))
        let me = String(cString: getpwuid(getuid()).pointee.pw_name)
        #expect(log.contains("\"os_user\":\"\(me)\""))
    }

    @Test func c1ControlsInStoredTextReachNoTerminalRaw() throws {
        let c = try CLI()
        try c.initStore()
        let csi = "\u{9B}31m"
        let line = sampleLine.replacingOccurrences(of: "\"text\":\"hi\"", with: "\"text\":\"x\\u009b31m\\u001b[2J\"")
            .replacingOccurrences(of: "\"flag_id\":\"f1\"", with: "\"flag_id\":\"f\\u009b1\"")
        let ing = try c.run(["ingest", "-", "--db", c.db], stdin: Data((line + "\n" + "{\"flag_id\":\"\\u009b\"}\n").utf8))
        #expect(ing.status == 3)
        #expect(!ing.err.contains(csi) && !ing.err.contains("\u{9B}"), "rejection message carried a raw C1 control")
        let missing = try c.run(["show", "no\u{9B}such", "--db", c.db])
        #expect(missing.status == 66 && !missing.err.contains("\u{9B}"))
        // audit show and log --json print the stored details; on a pipe they are exact bytes,
        // but the human form escapes them.
        let entries = try c.run(["audit", "log", "--db", c.db]).out
        #expect(!entries.contains("\u{9B}"))
        let shown = try c.run(["audit", "show", "3", "--db", c.db]).out
        #expect(!shown.contains("\u{9B}"))
    }
}

/// Runs a tool with no expectations about its output (setup steps).
@discardableResult
func runShell(_ args: [String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

/// A store with one confirmed case (C-000001), made through the CLI.
func confirmedCase(_ c: CLI) throws {
    try c.initStore()
    #expect(try c.run(["ingest", "-", "--db", c.db], stdin: Data((sampleLine + "\n").utf8)).status == 0)
    for (n, r) in [("alice", "moderator"), ("bob", "moderator"), ("cora", "compliance")] {
        #expect(try c.run(["user", "add", n, "--role", r, "--db", c.db]).status == 0)
    }
    for n in ["alice", "bob"] {
        #expect(try c.run(["claim", "d:f1", "--actor", n, "--db", c.db]).status == 0)
        let d = try c.run(["decide", "d:f1", "--actor", n, "--outcome", "confirm", "--category", "grooming", "--reason", "r", "--db", c.db])
        #expect(d.status == 0, "\(d.err)")
    }
}

@Suite struct Exports {
    @Test func concurrentExportsOfOneCaseGetDistinctPacketIDs() throws {
        let c = try CLI()
        try confirmedCase(c)
        let procs = (1...3).map { i -> Process in
            let p = Process()
            p.executableURL = CLI.binary
            p.arguments = ["export", "C-000001", "--agency", "NCMEC", "--out", c.dir.appendingPathComponent("p\(i)").path, "--zip",
                           "--actor", "cora", "--db", c.db]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            return p
        }
        for p in procs { try p.run() }
        for p in procs { p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        let holds = try c.run(["holds", "--json", "--db", c.db])
        let ids = try JSONValue.parse(Data(holds.out.utf8)).arrayValue?.compactMap { $0["packet"]?.stringValue ?? $0["packet_id"]?.stringValue } ?? []
        #expect(Set(ids) == ["C-000001-NCMEC-1", "C-000001-NCMEC-2", "C-000001-NCMEC-3"], "\(holds.out)")
        #expect(try c.run(["audit", "verify", "--db", c.db]).status == 0)
    }

    @Test func verifyPacketWithoutAPinnedKeyIsIntegrityOnly() throws {
        let c = try CLI()
        try confirmedCase(c)
        let out = c.dir.appendingPathComponent("packet").path
        #expect(try c.run(["export", "C-000001", "--agency", "NCMEC", "--out", out, "--actor", "cora", "--db", c.db]).status == 0)
        let unpinned = try c.run(["verify-packet", out])
        #expect(unpinned.status == 2 && unpinned.out.contains("INTEGRITY ONLY"), "\(unpinned.out)")
        let pem = c.dir.appendingPathComponent("key.pem").path
        #expect(try c.run(["key", "show", "--pem", "--out", pem, "--db", c.db]).status == 0)
        let pinned = try c.run(["verify-packet", out, "--key", pem])
        #expect(pinned.status == 0 && pinned.out.contains("PASS claims") && pinned.out.contains("VERIFIED"), "\(pinned.out)")
    }

    @Test func aFailedExportLeavesNoPartialPacketAndNoReferral() throws {
        let c = try CLI()
        try confirmedCase(c)
        let templates = c.dir.appendingPathComponent("broken-templates")
        try FileManager.default.createDirectory(at: templates, withIntermediateDirectories: true)
        try Data("{{#unclosed}}".utf8).write(to: templates.appendingPathComponent("cybertipline.html.mustache"))
        let out = c.dir.appendingPathComponent("packet")
        let r = try c.run(["export", "C-000001", "--agency", "NCMEC", "--out", out.path, "--zip", "--templates", templates.path,
                           "--actor", "cora", "--db", c.db])
        #expect(r.status == 65 && r.err.contains("template"), "\(r.status) \(r.err)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        #expect(!FileManager.default.fileExists(atPath: out.path + ".zip"))
        #expect(try c.run(["holds", "--json", "--db", c.db]).out == "[]\n")
        // A second try after fixing the templates works, with the next packet number.
        let ok = try c.run(["export", "C-000001", "--agency", "NCMEC", "--out", out.path, "--actor", "cora", "--db", c.db])
        #expect(ok.status == 0 && ok.out.contains("C-000001-NCMEC-2"), "\(ok.err)")
    }
}

@Suite struct Refusals {
    /// An unknown or disabled user is refused with 77, and the attempt is a custody entry,
    /// for reading commands too; nothing else changes.
    @Test func refusedUsersAreRecordedAndNothingElseChanges() throws {
        let c = try CLI()
        try c.initStore()
        #expect(try c.run(["user", "add", "mod", "--role", "moderator", "--db", c.db]).status == 0)
        for args in [["flags", "--actor", "mallory"], ["settings", "set", "second-review", "off", "--actor", "mod"], ["queue", "--actor", "nobody"]] {
            let r = try c.run(args + ["--db", c.db])
            #expect(r.status == 77, "\(args): \(r.status) \(r.err)")
        }
        let log = try c.run(["audit", "log", "--json", "--db", c.db]).out.split(separator: "\n")
        let refused = log.filter { $0.contains("\"action\":\"refused\"") }
        #expect(refused.count == 3)
        #expect(refused.contains { $0.contains("mallory") } && refused.contains { $0.contains("nobody") } && refused.contains { $0.contains("setSetting") })
        #expect(try c.run(["settings", "list", "--db", c.db]).out.contains("second-review = required"))
        #expect(try c.run(["audit", "verify", "--db", c.db]).status == 0)
    }
}

@Suite struct Anchors {
    @Test func aCheckpointKeptOutsideCatchesARollback() throws {
        let c = try CLI()
        try c.initStore()
        let outbox = c.dir.appendingPathComponent("outbox")
        try FileManager.default.createDirectory(at: outbox, withIntermediateDirectories: true)
        let older = c.dir.appendingPathComponent("older.db").path
        _ = try runShell(["sqlite3", c.db, ".backup '\(older)'"])
        #expect(try c.run(["ingest", "-", "--db", c.db], stdin: Data((sampleLine + "\n").utf8)).status == 0)
        let cp = try c.run(["audit", "checkpoint", "--out", outbox.path, "--db", c.db])
        #expect(cp.status == 0 && cp.out.contains("wrote"), "\(cp.err)")
        let files = try FileManager.default.contentsOfDirectory(atPath: outbox.path).map { outbox.appendingPathComponent($0).path }
        #expect(files.count == 1)
        let pem = c.dir.appendingPathComponent("key.pem").path
        #expect(try c.run(["key", "show", "--pem", "--out", pem, "--db", c.db]).status == 0)
        let ok = try c.run(["audit", "verify", "--checkpoint", files[0], "--key", pem, "--db", c.db])
        #expect(ok.status == 0 && ok.out.contains("PASS outside checkpoints"), "\(ok.out) \(ok.err)")
        // The store replaced by its older copy: fine alone, caught against the outside checkpoint.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: c.db + suffix) }
        try FileManager.default.copyItem(atPath: older, toPath: c.db)
        #expect(try c.run(["audit", "verify", "--db", c.db]).status == 0)
        let bad = try c.run(["audit", "verify", "--checkpoint", files[0], "--key", pem, "--db", c.db])
        #expect(bad.status == 1 && bad.out.contains("rolled back"), "\(bad.out)")
        #expect(try c.run(["audit", "verify", "--checkpoint", files[0], "--db", c.db]).status == 65)
    }
}

@Suite struct Upgrades {
    /// A reading command on a store an older custos wrote upgrades it first (it can write the
    /// file), then reads it read-only.
    @Test func aReadingCommandUpgradesAnOlderStore() throws {
        // A store custos 36fa373 wrote (schema 5), turned back into a schema-4 one.
        let c = try CLI.fixtureStore("schema5")
        _ = try runShell(["sqlite3", c.db, "DROP TABLE packet_ids; DELETE FROM schema_migrations WHERE version = 5;"])
        let r = try c.run(["flags", "--json", "--db", c.db, "--actor", "cora"])
        #expect(r.status == 0 && r.out.contains("artemis-2026-000127"), "\(r.err)")
        #expect(try sqliteShell(c.db, "SELECT count(*) FROM schema_migrations WHERE version = 5") == "1\n")
        #expect(try c.run(["audit", "verify", "--db", c.db]).status == 0)
    }
}

/// A store written by the custos before schema 6 (Tests/Fixtures/schema5: the demo, a receipt,
/// a merge and a split, made with commit 36fa373): its entries lack facts the fold needs (the
/// accounts a flag brings to a case, a split case's platform), so the upgrade records them once.
@Suite struct SchemaFiveStore {
    @Test func itUpgradesWithOneMigrationEntryAndStaysAFoldOfItsLog() throws {
        let c = try CLI.fixtureStore("schema5")
        let entriesBefore = try sqliteShell(c.db, "SELECT seq, leaf_hash FROM custody ORDER BY seq")
        let v = try c.run(["audit", "verify", "--db", c.db])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        // The old entries are untouched; one migration entry follows them.
        let after = try sqliteShell(c.db, "SELECT seq, leaf_hash FROM custody ORDER BY seq")
        #expect(after.hasPrefix(entriesBefore))
        #expect(try sqliteShell(c.db, "SELECT action FROM custody ORDER BY seq DESC LIMIT 1") == "store.migrate\n")
        #expect(try sqliteShell(c.db, "SELECT json_extract(details, '$.tables.cases') IS NOT NULL FROM custody WHERE action = 'store.migrate'") == "1\n")
        // Work goes on, and the store stays a fold of its log.
        let e = try c.run(["export", "C-000003", "--agency", "NCMEC", "--out", c.dir.appendingPathComponent("p").path, "--db", c.db, "--actor", "cora"])
        #expect(e.status == 0, "\(e.err)")
        #expect(try c.run(["referral", "receipt", "C-000003", "--agency", "NCMEC", "--reference", "TIP-2", "--db", c.db, "--actor", "cora"]).status == 0)
        let again = try c.run(["audit", "verify", "--db", c.db])
        #expect(again.status == 0, "\(again.out)")
        #expect(try sqliteShell(c.db, "SELECT count(*) FROM custody WHERE action = 'store.migrate'") == "1\n")
    }

    /// After the upgrade, an edit to any case table, old rows or new, is named.
    @Test(arguments: [
        ("UPDATE cases SET state = 'open', merged_into = NULL WHERE id = 2", "cases \"2\": state"),
        ("DELETE FROM case_accounts WHERE case_id = 3", "case_accounts \"3|u-1001\""),
        ("INSERT INTO case_accounts VALUES (1, 'u-9999')", "case_accounts \"1|u-9999\""),
        ("UPDATE case_flags SET case_id = 1", "case_flags"),
        ("UPDATE case_agencies SET served = 1 WHERE case_id = 3", "case_agencies \"3|"),
        ("DROP TRIGGER receipts_no_update; UPDATE receipts SET reference = 'TIP-X'", "receipts \"1\": reference"),
        ("DROP TRIGGER referrals_no_update; UPDATE referrals SET hold_until_ms = hold_until_ms + 1", "referrals"),
        ("UPDATE packet_ids SET allocated_at = 'x'", "packet_ids"),
        ("UPDATE store_meta SET value = '/tmp/other.key' WHERE key = 'key_file'", "store_meta \"key_file\""),
    ] as [(String, String)])
    func editsAfterTheUpgradeAreNamed(sql: String, named: String) throws {
        let c = try CLI.fixtureStore("schema5")
        #expect(try c.run(["audit", "verify", "--db", c.db]).status == 0)
        _ = try sqliteShell(c.db, sql)
        let v = try c.run(["audit", "verify", "--db", c.db])
        #expect(v.status == 1 && v.out.contains(named), "\(v.out)\(v.err)")
    }
}

/// A store written by the custos of schema 8 (Tests/Fixtures/schema8: `custos demo` of commit
/// ad899e0, then a retention run that erased the dismissed flag's conversation): evidence as
/// message and participant rows. Migrations 9 and 10 turn each conversation into its stored
/// document and drop the rows.
@Suite struct SchemaEightStore {
    @Test func eachConversationBecomesTheDocumentItsHashCovers() throws {
        let c = try CLI.fixtureStore("schema8")
        let entriesBefore = try sqliteShell(c.db, "SELECT seq, leaf_hash FROM custody ORDER BY seq")
        let v = try c.run(["audit", "verify", "--db", c.db])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        #expect(try sqliteShell(c.db, "SELECT seq, leaf_hash FROM custody ORDER BY seq").hasPrefix(entriesBefore))
        #expect(try sqliteShell(c.db, "SELECT json_extract(details, '$.migrations') FROM custody ORDER BY seq DESC LIMIT 1").contains("0010_drop_message_rows.sql"))
        #expect(try sqliteShell(c.db, "SELECT count(*) FROM sqlite_master WHERE name IN ('messages', 'participants')") == "0\n")
        // Every conversation but the erased one has its document, and the document hashes to
        // the evidence hash the old rows were stored under (hashed here, not by custos).
        let rows = try sqliteShell(c.db, "SELECT c.id, c.evidence_hash, e.document IS NULL FROM conversations c LEFT JOIN evidence e ON e.conversation_id = c.id ORDER BY c.id")
            .split(separator: "\n").map { $0.split(separator: "|").map(String.init) }
        #expect(rows.count == 6)
        let erased = try sqliteShell(c.db, "SELECT evidence_hash FROM tombstones").trimmingCharacters(in: .whitespacesAndNewlines)
        for row in rows {
            if row[1] == erased { #expect(row[2] == "1"); continue }
            #expect(row[2] == "0")
            let document = try sqliteShell(c.db, "SELECT document FROM evidence WHERE conversation_id = \(row[0])")
            #expect(SHA256Hex.of(Data(document.dropLast().utf8)) == row[1], "conversation \(row[0])")
        }
        // The attachment the demo ingested is in its document, and reads back.
        let show = try c.run(["show", "artemis-2026-000123", "--canonical", "--db", c.db, "--actor", "alice"])
        #expect(show.status == 0 && show.out.contains("\"attachments\":[{") && show.out.contains("\"sha256\":"), "\(show.out)\(show.err)")
        // Work goes on and the store stays a fold of its log.
        let ingest = try c.run(["ingest", c.dir.appendingPathComponent("none.jsonl").path, "--db", c.db])
        #expect(ingest.status != 0)  // no such file: refused, nothing written
        #expect(try c.run(["audit", "verify", "--db", c.db]).status == 0)
    }

    /// A message row edited behind the log's back before the upgrade is still named after it:
    /// the document is written as the rows held it, and no longer hashes to its evidence hash.
    @Test func anEditBeforeTheUpgradeIsNamedAfterIt() throws {
        let c = try CLI.fixtureStore("schema8")
        _ = try sqliteShell(c.db, "DROP TRIGGER messages_no_update; UPDATE messages SET text = 'altered' WHERE conversation_id = 1 AND seq = 0")
        let v = try c.run(["audit", "verify", "--db", c.db])
        #expect(v.status == 1 && v.out.contains("artemis:artemis-2026-000123") && v.out.contains("evidence was changed"), "\(v.out)\(v.err)")
    }

    /// After the upgrade, the documents are evidence like the rows were: the triggers refuse an
    /// edit, and an edit made by dropping them is named.
    @Test func anEditAfterTheUpgradeIsRefusedOrNamed() throws {
        let c = try CLI.fixtureStore("schema8")
        #expect(try c.run(["audit", "verify", "--db", c.db]).status == 0)
        #expect(try sqliteShell(c.db, "UPDATE evidence SET document = '{}' WHERE conversation_id = 2", withErrors: true).contains("refused"))
        #expect(try sqliteShell(c.db, "DELETE FROM evidence WHERE conversation_id = 2", withErrors: true).contains("refused"))
        _ = try sqliteShell(c.db, "DROP TRIGGER evidence_no_delete; DELETE FROM evidence WHERE conversation_id = 2")
        let v = try c.run(["audit", "verify", "--db", c.db])
        #expect(v.status == 1 && v.out.contains("artemis:artemis-2026-000124") && v.out.contains("document is missing"), "\(v.out)")
    }
}

/// Issue 26, item 1: `custos hash` needs no store and prints what a hash list is checked with.
@Suite struct HashCommandTests {
    @Test func hashPrintsSHA256MD5AndPDQOrWhyNot() throws {
        let c = try CLI()
        let text = c.dir.appendingPathComponent("note\u{1b}[31m.txt")
        try Data("hello\n".utf8).write(to: text)
        let r = try c.run(["hash", "--json", text.path])
        #expect(r.status == 0, "\(r.err)")
        let j = try JSONValue.parse(Array(r.out.utf8))
        #expect(j["sha256"]?.stringValue == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        #expect(j["md5"]?.stringValue == "b1946ac92492d2347c6235b4d2611184")
        #expect(j["not_hashed"]?.stringValue == "not hashed: not a PNG or JPEG image")
        // The human form escapes a hostile file name; a missing file is an error naming it.
        let plain = try c.run(["hash", text.path])
        #expect(plain.status == 0 && !plain.out.contains("\u{1b}"))
        let missing = try c.run(["hash", c.dir.appendingPathComponent("nope.png").path])
        #expect(missing.status != 0 && missing.err.contains("no file"), "\(missing.status) \(missing.err) \(missing.out)")
    }
}
