import CustosCore
import Foundation
import Testing

/// Runs the built `custos` binary as a user would.
struct CLI {
    /// The `custos` built beside this test binary (or $CUSTOS_BIN).
    static let binary: URL = {
        if let b = ProcessInfo.processInfo.environment["CUSTOS_BIN"] { return URL(fileURLWithPath: b) }
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent("custos")
    }()

    let dir: URL
    var env: [String: String] = [:]

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    var db: String { dir.appendingPathComponent("c.db").path }

    struct Result { let status: Int32; let out: String; let err: String }

    @discardableResult
    func run(_ args: [String], binary: URL = CLI.binary, stdin: Data? = nil, cwd: URL? = nil) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = cwd ?? dir
        var e = ProcessInfo.processInfo.environment
        e["USER"] = "tester"
        e.removeValue(forKey: "CUSTOS_DB")
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(stdin) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let r = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: r, as: UTF8.self))
    }

    func initStore() throws {
        let r = try run(["init", "--org", "CLI Test", "--contact-email", "t@example.com", "--db", db])
        #expect(r.status == 0, "\(r.err)")
    }
}

extension CLI {
    /// A copy of a fixture store written by an older custos (Tests/Fixtures/`name`: `demo.db`
    /// and its key) as `c.db`. The store names its key file where it was made; the copy's key
    /// is beside it.
    static func fixtureStore(_ name: String) throws -> CLI {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(name)")
        var c = try CLI()
        for (from, to) in [("demo.db", "c.db"), ("demo.signing.key", "c.signing.key")] {
            try FileManager.default.copyItem(at: folder.appendingPathComponent(from), to: c.dir.appendingPathComponent(to))
        }
        c.env["CUSTOS_KEY"] = c.dir.appendingPathComponent("c.signing.key").path
        return c
    }
}

/// Runs SQL on a store file with the sqlite3 shell, as someone with the file would: what it
/// prints (with `withErrors`, its standard error too: a trigger's refusal).
func sqliteShell(_ db: String, _ sql: String, withErrors: Bool = false) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["sqlite3", db, sql]
    let out = Pipe()
    p.standardOutput = out
    if withErrors { p.standardError = out }
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return text
}

let sampleLine = #"{"flag_id":"f1","source":{"detector":"d"},"score":0.5,"detected_at":"2026-11-20T14:03:00Z","service":{"platform":"P"},"conversation":{"id":"c","participants":[{"user_id":"a","role_hint":"suspected_adult"},{"user_id":"b","role_hint":"suspected_minor"}],"messages":[{"id":"1","sender":"a","sent_at":"2026-11-20T13:00:00Z","text":"hi"}]}}"#

@Suite struct CommandLine_ {
    @Test func globalOptionsWorkBeforeOrAfterTheSubcommand() throws {
        let c = try CLI()
        try c.initStore()
        let a = try c.run(["--db", c.db, "flags", "--json"])
        let b = try c.run(["flags", "--json", "--db", c.db])
        #expect(a.status == 0 && b.status == 0 && a.out == b.out && a.out == "[]\n")
        var withEnv = c
        withEnv.env["CUSTOS_DB"] = c.db
        #expect(try withEnv.run(["flags", "--json"]).out == "[]\n")
        let missing = try c.run(["flags"])
        #expect(missing.status == 66 && missing.err.contains("no store \"custos.db\""))
        #expect(!FileManager.default.fileExists(atPath: c.dir.appendingPathComponent("custos.db").path))
    }

    @Test func ingestExitCodesRejectsFileAndStdin() throws {
        let c = try CLI()
        try c.initStore()
        let input = sampleLine + "\n{not json\n"
        let path = c.dir.appendingPathComponent("in.jsonl")
        try Data(input.utf8).write(to: path)
        let r = try c.run(["ingest", path.path, "--rejects", "rej.jsonl", "--db", c.db])
        #expect(r.status == 3)
        #expect(r.err.contains("in.jsonl:2: malformed JSON"))
        #expect(r.out.contains("ingested 1, duplicate 0, rejected 1"))
        #expect(try String(contentsOf: c.dir.appendingPathComponent("rej.jsonl"), encoding: .utf8) == "{not json\n")
        let again = try c.run(["ingest", "-", "--db", c.db], stdin: Data((sampleLine + "\n").utf8))
        #expect(again.status == 0 && again.out.contains("duplicate 1"))
        let verify = try c.run(["audit", "verify", "--db", c.db])
        #expect(verify.status == 0 && verify.out.contains("OK"))
    }

    @Test func aCopiedBinaryCarriesItsMigrations() throws {
        let c = try CLI()
        let elsewhere = c.dir.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        let copy = elsewhere.appendingPathComponent("custos")
        try FileManager.default.copyItem(at: CLI.binary, to: copy)
        let r = try c.run(["init", "--org", "X", "--contact-email", "x@example.com", "--db", c.db], binary: copy, cwd: elsewhere)
        #expect(r.status == 0, "\(r.err)")
        #expect(try c.run(["audit", "verify", "--db", c.db], binary: copy, cwd: elsewhere).status == 0)
    }

    @Test func pan12ImportThroughTheCLI() throws {
        let c = try CLI()
        try c.initStore()
        let xml = #"<conversations><conversation id="c9"><message line="1"><author>x</author><time>23:59</time><text>a &amp; b</text></message><message line="2"><author>y</author><time>00:00</time><text/></message></conversation></conversations>"#
        try Data(xml.utf8).write(to: c.dir.appendingPathComponent("pan.xml"))
        let r = try c.run(["ingest", "pan.xml", "--format", "pan12", "--date", "2026-01-31", "--db", c.db])
        #expect(r.status == 0, "\(r.err)")
        let show = try c.run(["show", "pan12:c9", "--canonical", "--db", c.db])
        #expect(show.out.contains(#""sent_at":"2026-02-01T00:00:00Z","text":"""#))
        #expect(show.out.contains(#""text":"a & b""#))
        let bad = try c.run(["ingest", "pan.xml", "--format", "pan12", "--db", c.db])
        #expect(bad.status == 64 && bad.err.contains("--date"))
        try Data("<conversations><conversation id=\"z\">".utf8).write(to: c.dir.appendingPathComponent("broken.xml"))
        let broken = try c.run(["ingest", "broken.xml", "--format", "pan12", "--date", "2026-01-31", "--db", c.db])
        #expect(broken.status == 3 && broken.err.contains("malformed XML"))
    }

    @Test func keyShowPEMIsReadByOpenSSL() throws {
        let c = try CLI()
        try c.initStore()
        let pem = try c.run(["key", "show", "--pem", "--db", c.db]).out
        try Data(pem.utf8).write(to: c.dir.appendingPathComponent("k.pem"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["pkey", "-pubin", "-in", c.dir.appendingPathComponent("k.pem").path, "-noout"]
        try p.run(); p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    @Test func checkpointSignatureVerifiesWithOpenSSLAndProofsVerifyOffline() throws {
        let c = try CLI()
        try c.initStore()
        try Data((sampleLine + "\n").utf8).write(to: c.dir.appendingPathComponent("in.jsonl"))
        try c.run(["ingest", "in.jsonl", "--db", c.db])
        let cp = try c.run(["audit", "checkpoint", "--db", c.db])
        #expect(cp.status == 0, "\(cp.err)")
        try Data(try c.run(["key", "show", "--pem", "--db", c.db]).out.utf8).write(to: c.dir.appendingPathComponent("k.pem"))
        let proof = try c.run(["audit", "prove", "3", "--db", c.db]).out
        try Data(proof.utf8).write(to: c.dir.appendingPathComponent("p.tlog-proof"))
        try c.run(["audit", "show", "3", "--canonical", "--db", c.db]).out.data(using: .utf8)!.write(to: c.dir.appendingPathComponent("e.json"))
        let ok = try c.run(["audit", "verify-proof", "p.tlog-proof", "--key", "k.pem", "--entry", "e.json"])
        #expect(ok.status == 0 && ok.out.contains("OK"), "\(ok.err)")
        try Data("{}".utf8).write(to: c.dir.appendingPathComponent("e.json"))
        #expect(try c.run(["audit", "verify-proof", "p.tlog-proof", "--key", "k.pem", "--entry", "e.json"]).status != 0)
        // openssl checks the checkpoint's signature: the note text, and the 64 bytes after the 4-byte key id.
        let note = String(proof[proof.range(of: "\n\n")!.upperBound...])
        let text = String(note[..<note.range(of: "\n\n")!.lowerBound]) + "\n"
        let sigLine = note.split(separator: "\n").last!
        let blob = Data(base64Encoded: String(sigLine.split(separator: " ").last!))!
        try Data(text.utf8).write(to: c.dir.appendingPathComponent("note.txt"))
        try blob.dropFirst(4).write(to: c.dir.appendingPathComponent("note.sig"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.currentDirectoryURL = c.dir
        p.arguments = ["pkeyutl", "-verify", "-pubin", "-inkey", "k.pem", "-rawin", "-in", "note.txt", "-sigfile", "note.sig"]
        p.standardOutput = Pipe()
        try p.run(); p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    @Test func hostileTextIsEscapedOnTheTerminal() throws {
        let c = try CLI()
        try c.initStore()
        let line = sampleLine.replacingOccurrences(of: #""text":"hi""#, with: #""text":"\u202eevil\u001b[2J""#)
        try Data((line + "\n").utf8).write(to: c.dir.appendingPathComponent("in.jsonl"))
        try c.run(["ingest", "in.jsonl", "--db", c.db])
        let show = try c.run(["show", "f1", "--db", c.db])
        #expect(show.status == 0)
        #expect(!show.out.unicodeScalars.contains { $0.value == 0x202E || $0.value == 0x1B })
        #expect(show.out.contains("\\u{202e}evil\\u{1b}[2J"))
    }
}

@Suite struct Concurrency {
    @Test func eightProcessesClaimEveryFlagExactlyOnce() throws {
        let c = try CLI()
        try c.initStore()
        let gen = try c.run(["gen", "--flags", "300", "--messages", "2", "--seed", "7"])
        try Data(gen.out.utf8).write(to: c.dir.appendingPathComponent("gen.jsonl"))
        #expect(try c.run(["ingest", "gen.jsonl", "--db", c.db]).status == 0)
        for i in 0..<8 { #expect(try c.run(["user", "add", "m\(i)", "--role", "moderator", "--db", c.db]).status == 0) }
        // Each worker claims until the queue is empty.
        let script = "while out=$(\"$0\" claim --json --db \"$1\" --actor \"$2\" 2>/dev/null); do echo \"$out\"; done"
        var procs: [(Process, Pipe)] = []
        for i in 0..<8 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", script, CLI.binary.path, c.db, "m\(i)"]
            p.environment = ["USER": "tester", "PATH": "/usr/bin:/bin"]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            procs.append((p, out))
        }
        var claimed: [String] = []
        for (p, out) in procs {
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                claimed.append(try #require(JSONValue.parse(Data(line.utf8))["flag_id"]?.stringValue))
            }
        }
        #expect(claimed.count == 300)
        #expect(Set(claimed).count == 300)
        #expect(try c.run(["audit", "verify", "--db", c.db]).status == 0)
    }
}
