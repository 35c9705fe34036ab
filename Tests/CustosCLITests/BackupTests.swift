import Foundation
import Testing

/// `custos backup` and `custos restore`: a verified online copy, taken while another process
/// writes, and a restore that verifies before it succeeds.
@Suite struct BackupAndRestore {

    @Test func aBackupTakenDuringAnIngestVerifiesAndCarriesTheSameCheckpoints() throws {
        let c = try CLI()
        try c.initStore()
        // Two halves of one generated set: the first stored, the second ingested while the backup is taken.
        let lines = try c.run(["gen", "--flags", "8000", "--messages", "8", "--seed", "5"]).out.split(separator: "\n")
        let flags = c.dir.appendingPathComponent("flags.jsonl"), more = c.dir.appendingPathComponent("more.jsonl")
        try (lines.prefix(4000).joined(separator: "\n") + "\n").write(to: flags, atomically: true, encoding: .utf8)
        try (lines.dropFirst(4000).joined(separator: "\n") + "\n").write(to: more, atomically: true, encoding: .utf8)
        #expect(try c.run(["ingest", flags.path, "--db", c.db]).status == 0)
        #expect(try c.run(["audit", "checkpoint", "--db", c.db]).status == 0)
        let ingest = Process()
        ingest.executableURL = CLI.binary
        ingest.arguments = ["ingest", more.path, "--db", c.db]
        ingest.environment = ProcessInfo.processInfo.environment.merging(["USER": "tester"]) { _, b in b }
        ingest.standardOutput = FileHandle.nullDevice
        ingest.standardError = FileHandle.nullDevice
        try ingest.run()
        usleep(300_000)
        let copy = c.dir.appendingPathComponent("copy.db").path
        let b = try c.run(["backup", copy, "--db", c.db])
        ingest.waitUntilExit()
        #expect(b.status == 0 && b.out.contains("verified"), "\(b.out)\(b.err)")
        #expect(ingest.terminationStatus == 0)
        // The copy's checkpoints are the source's, note for note; the copy verifies on its own.
        let notes = "SELECT id, note FROM checkpoints ORDER BY id"
        let copied = try sqliteShell(copy, notes)
        let source = try sqliteShell(c.db, notes)
        #expect(!copied.isEmpty && source.hasPrefix(copied))
        #expect(try c.run(["audit", "verify", "--db", copy]).status == 0)
        // The backup is a custody entry of the source, and the source verifies.
        #expect(try sqliteShell(c.db, "SELECT count(*) FROM custody WHERE action = 'store.backup'") == "1\n")
        #expect(try c.run(["audit", "verify", "--db", c.db]).status == 0)
        // The key stayed behind; the file is private.
        #expect(!FileManager.default.fileExists(atPath: c.dir.appendingPathComponent("copy.signing.key").path))
        let mode = try FileManager.default.attributesOfItem(atPath: copy)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Restore: a new file only, verified, and the restore recorded in it.
        let restored = c.dir.appendingPathComponent("restored.db").path
        #expect(try c.run(["restore", copy, "--db", restored]).status == 0)
        #expect(try c.run(["audit", "verify", "--db", restored]).status == 0)
        #expect(try sqliteShell(restored, "SELECT action FROM custody ORDER BY seq DESC LIMIT 1") == "store.restore\n")
        #expect(try c.run(["restore", copy, "--db", restored]).status == 73)
        #expect(try c.run(["backup", copy, "--db", c.db]).status == 73)
    }

    @Test func aDamagedBackupIsNotRestoredAndOnlyAnAdminBacksUp() throws {
        let c = try CLI()
        try c.initStore()
        let flags = c.dir.appendingPathComponent("flags.jsonl")
        try c.run(["gen", "--flags", "20", "--messages", "4", "--seed", "1"]).out.write(to: flags, atomically: true, encoding: .utf8)
        #expect(try c.run(["ingest", flags.path, "--db", c.db]).status == 0)
        #expect(try c.run(["user", "add", "mo", "--role", "moderator", "--db", c.db]).status == 0)
        #expect(try c.run(["backup", c.dir.appendingPathComponent("x.db").path, "--db", c.db, "--actor", "mo"]).status == 77)
        #expect(!FileManager.default.fileExists(atPath: c.dir.appendingPathComponent("x.db").path))
        let copy = c.dir.appendingPathComponent("copy.db").path
        #expect(try c.run(["backup", copy, "--db", c.db]).status == 0)
        _ = try sqliteShell(copy, "DROP TRIGGER IF EXISTS evidence_no_update; UPDATE evidence SET document = replace(document, '\"text\":\"', '\"text\":\"altered ') WHERE conversation_id = (SELECT min(conversation_id) FROM evidence)")
        let restored = c.dir.appendingPathComponent("restored.db").path
        let r = try c.run(["restore", copy, "--db", restored])
        #expect(r.status == 65 && r.err.contains("does not verify"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: restored))
    }
}

/// Retention through the CLI on the demo: the dismissed flag is erased; the store and the
/// packet exported before still verify; `show` says the evidence was erased; the transparency
/// report counts it.
@Suite struct RetentionCLI {
    @Test func retentionRunErasesTheDismissedFlagAndEverythingStillVerifies() throws {
        let c = try CLI()
        let demo = c.dir.appendingPathComponent("demo")
        #expect(try c.run(["demo", "--dir", demo.path]).status == 0)
        let db = demo.appendingPathComponent("demo.db").path
        #expect(try c.run(["settings", "set", "dismissed-retention-days", "0", "--db", db]).status == 0)
        let dry = try c.run(["retention", "run", "--dry-run", "--json", "--db", db, "--actor", "cora"])
        #expect(dry.status == 0 && dry.out.contains("artemis:artemis-2026-000125") && !dry.out.contains("000127"), "\(dry.out)")
        let run = try c.run(["retention", "run", "--db", db, "--actor", "cora"])
        #expect(run.status == 0 && run.out.contains("1 conversation erased"), "\(run.out)\(run.err)")
        #expect(try c.run(["audit", "verify", "--db", db]).status == 0)
        let packet = demo.appendingPathComponent("packet-C-000001-NCMEC.zip").path
        #expect(try c.run(["verify-packet", packet, "--key", demo.appendingPathComponent("custos-key.pem").path]).status == 0)
        let show = try c.run(["show", "artemis:artemis-2026-000125", "--db", db, "--actor", "cora"])
        #expect(show.status == 69 && show.err.contains("erased"), "\(show.err)")
        let t = try c.run(["transparency", "--from", "2000-01-01", "--to", "2100-01-01", "--json", "--db", db])
        #expect(t.status == 0 && t.out.contains("\"erasures\":1") && t.out.contains("\"flags_received\":7"), "\(t.out)")
        let html = c.dir.appendingPathComponent("transparency.html")
        #expect(try c.run(["transparency", "--from", "2000-01-01", "--to", "2100-01-01", "--html", html.path, "--db", db]).status == 0)
        let page = try String(contentsOf: html, encoding: .utf8)
        #expect(page.contains("<th scope=\"row\">Evidence erasures</th><td>1</td>") && page.contains("Example Platform Inc."), "\(page)")
    }
}
