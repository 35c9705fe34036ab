import Foundation
import Testing

/// Issue 23's findings at the command line: files, the witness's state, packets, the drill's
/// two attacks.
@Suite(.serialized) struct HardeningCLI {
    func mode(_ path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o777 : 0o7777
    }

    /// Finding 6: the store, its WAL and SHM and the key are the owner's alone, whatever the
    /// umask; a store an older custos left readable is tightened by the next write.
    @Test func storeFilesAreTheOwnersAlone() throws {
        let c = try CLI()
        try c.initStore()
        #expect(try c.run(["ingest", "-", "--db", c.db], stdin: Data((sampleLine + "\n").utf8)).status == 0)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: c.db + suffix) {
            #expect(mode(c.db + suffix) == 0o600, "\(suffix): \(String(mode(c.db + suffix), radix: 8))")
        }
        #expect(mode(c.dir.appendingPathComponent("c.signing.key").path) == 0o600)
        #expect(chmod(c.db, 0o644) == 0)
        #expect(try c.run(["user", "add", "zed", "--role", "moderator", "--db", c.db]).status == 0)
        #expect(mode(c.db) == 0o600)
    }

    /// Errors map to exit statuses in one place (`Custos.main`): help, usage, and the store's own.
    @Test func exitStatusesComeFromOnePlace() throws {
        let c = try CLI()
        let help = try c.run(["--help"]), group = try c.run(["audit"]), usage = try c.run(["no-such-command"])
        #expect(help.status == 0 && help.out.contains("OVERVIEW"), "\(help.err)")
        #expect(group.status == 0 && group.out.contains("custos audit <subcommand>"), "\(group.err)")
        #expect(usage.status == 64)
        let missing = try c.run(["flags", "--db", c.dir.appendingPathComponent("none\u{1b}[31m.db").path])
        #expect(missing.status == 66 && missing.err.hasPrefix("custos: ") && !missing.err.contains("\u{1b}"), "\(missing.err)")
    }

    /// An admin's reads (tokens with their users, users, settings) refuse anyone else, and the
    /// refusal is logged although the command opens the store read-only.
    @Test func aModeratorsAdminReadsAreRefusedAndLogged() throws {
        let c = try CLI()
        try c.initStore()
        #expect(try c.run(["user", "add", "mia", "--role", "moderator", "--db", c.db]).status == 0)
        #expect(try c.run(["user", "add", "det", "--role", "detector", "--db", c.db]).status == 0)
        #expect(try c.run(["token", "create", "det", "--db", c.db]).status == 0)
        for command in [["token", "list"], ["user", "list"], ["settings", "list"]] {
            let r = try c.run(command + ["--db", c.db, "--actor", "mia"])
            #expect(r.status == 77 && !r.out.contains("det"), "\(command): \(r.status) \(r.out)")
        }
        let log = try c.run(["audit", "log", "--json", "--db", c.db]).out
        #expect(log.components(separatedBy: "\"action\":\"refused\"").count - 1 == 3, "\(log)")
        #expect(try c.run(["token", "list", "--db", c.db]).out.contains("det"))
    }

    /// Finding 14: one state file serves one witness at a time.
    @Test func aSecondWitnessOnTheSameStateFileIsRefused() throws {
        let c = try CLI()
        try c.initStore()
        let logKey = try #require(c.run(["key", "show", "--db", c.db]).out.split(separator: "\n").first { $0.hasPrefix("vkey") }?.split(separator: " ").last.map(String.init))
        let state = c.dir.appendingPathComponent("witness-state.json").path
        let (first, _, _) = try WitnessServe().startWitness(c, logKey: logKey, state: state)
        defer { first.terminate(); first.waitUntilExit() }
        let second = try c.run(["witness", "serve", "--name", "witness.test/w1", "--key", c.dir.appendingPathComponent("w.key").path,
                                "--log", logKey, "--state", state, "--listen", "127.0.0.1:\(Int.random(in: 20000...60000))"])
        #expect(second.status != 0 && second.err.contains("in use by another witness"), "\(second.err)")
    }

    /// Finding 24: a symbolic link in a packet zip is named, not silently skipped.
    @Test func verifyPacketNamesZipEntriesItIgnores() throws {
        let c = try CLI()
        try c.initStore()
        let demo = try c.run(["demo", "--dir", c.dir.appendingPathComponent("demo").path])
        #expect(demo.status == 0, "\(demo.err)")
        let packet = c.dir.appendingPathComponent("demo/packet-C-000001-NCMEC").path
        let zip = c.dir.appendingPathComponent("with-link.zip").path
        let link = c.dir.appendingPathComponent("demo/packet-C-000001-NCMEC/data/extra-link").path
        #expect(symlink("/etc/passwd", link) == 0)
        let zipped = try c.run(["python3", "-c", """
            import os, sys, zipfile
            root, out = sys.argv[1], sys.argv[2]
            with zipfile.ZipFile(out, "w") as z:
                for d, _, files in os.walk(root):
                    for f in files:
                        p = os.path.join(d, f); name = os.path.relpath(p, os.path.dirname(root))
                        if os.path.islink(p):
                            info = zipfile.ZipInfo(name); info.external_attr = (0o120777 << 16)
                            z.writestr(info, os.readlink(p))
                        else:
                            z.write(p, name)
            """, packet, zip], binary: URL(fileURLWithPath: "/usr/bin/env"))
        #expect(zipped.status == 0, "\(zipped.err)")
        let r = try c.run(["verify-packet", zip])
        #expect(r.status != 0 && r.out.contains("symbolic link") && r.out.contains("extra-link"), "\(r.out)")
    }

    /// The drill's two attacks, as an insider with the file and no key: a rewritten tail and an
    /// added trigger. `audit verify` names each.
    @Test func aTailRewriteAndAnAddedTriggerAreNamed() throws {
        let c = try CLI()
        let dir = c.dir.appendingPathComponent("demo").path
        #expect(try c.run(["demo", "--dir", dir]).status == 0)
        let db = dir + "/demo.db"
        // A decision after the last checkpoint: the tail a checkpoint does not cover.
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/attacks/rewrite-tail.py").path
        _ = try c.run(["sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE)"], binary: URL(fileURLWithPath: "/usr/bin/env"))
        let attack = try c.run(["python3", script, db, "nothing to see"], binary: URL(fileURLWithPath: "/usr/bin/env"))
        #expect(attack.status == 0, "\(attack.err)")
        let v = try c.run(["audit", "verify", "--db", db])
        #expect(v.status != 0 && v.out.contains("FAIL signed head"), "\(v.out)")
        // And the next write does not sign over it.
        let w = try c.run(["user", "add", "zed", "--role", "moderator", "--db", db])
        #expect(w.status != 0 && w.err.contains("signed head"), "\(w.err)")

        let c2 = try CLI()
        let dir2 = c2.dir.appendingPathComponent("demo").path
        #expect(try c2.run(["demo", "--dir", dir2]).status == 0)
        let db2 = dir2 + "/demo.db"
        _ = try c2.run(["sqlite3", db2, "CREATE TRIGGER quiet BEFORE INSERT ON custody WHEN NEW.action = 'evidence.view' BEGIN SELECT RAISE(IGNORE); END;"],
                       binary: URL(fileURLWithPath: "/usr/bin/env"))
        let v2 = try c2.run(["audit", "verify", "--db", db2])
        #expect(v2.status != 0 && v2.out.contains("trigger quiet"), "\(v2.out)")
        let show = try c2.run(["show", "artemis:artemis-2026-000123", "--actor", "alice", "--db", db2])
        #expect(show.status != 0 && show.err.contains("was not stored"), "\(show.err)")
    }
}
