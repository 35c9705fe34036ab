import ArgumentParser
import CustosCore
import CustosResources
import CustosStore
import Foundation

/// The whole job on the built-in samples: each step is the real command, run in this process
/// exactly as typed after `$ custos`, so the demo shows (and tests) what a user would run.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the whole job on the built-in sample data in a throwaway store.")
    @Option(help: "Folder for the demo store (default: a new temporary folder).") var dir: String?

    func run() throws {
        let fm = FileManager.default
        let root = URL(fileURLWithPath: dir ?? NSTemporaryDirectory() + "custos-demo-\(ProcessInfo.processInfo.processIdentifier)")
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        let db = root.appendingPathComponent("demo.db").path
        guard !fm.fileExists(atPath: db) else { throw CustosError.conflict(subject: db, reason: "already exists; pass an empty --dir") }
        for name in EmbeddedResources.names(in: "samples") {
            guard let bytes = EmbeddedResources.data(name) else { throw CustosError.storage(cause: "the built-in sample \(name) is missing") }
            try bytes.write(to: root.appendingPathComponent(String(name.dropFirst("samples/".count))))
        }
        let packet = root.appendingPathComponent("packet-C-000001-NCMEC").path
        let top = "artemis:artemis-2026-000127", first = "artemis:artemis-2026-000123", benign = "artemis:artemis-2026-000125"
        // Its photo is a resized, recompressed copy of the image sample-hashlist.csv lists.
        let known = "artemis:artemis-2026-000129", knownPacket = root.appendingPathComponent("packet-C-000003-NCMEC").path
        // The platform's action receiver (a loopback stand-in that verifies every signature).
        let secrets = ["restrict", "suspend"].map { root.appendingPathComponent("\($0).whsec").path }
        let hook = "http://127.0.0.1:\(try DemoReceiver.start(secretFiles: secrets))/hook"
        let script: [[String]] = [
            ["init", "--org", "Example Platform Inc.", "--contact-email", "trust-safety@example.com"],
            ["ingest", root.appendingPathComponent("sample-flags.jsonl").path],
            ["flags"],
            // What the platform is told to do: restrict at once when a flag is marked urgent, suspend once confirmed.
            ["action", "add", "restrict", "--url", hook, "--kind", "restrict-account", "--on", "flag.urgent", "--secret-out", secrets[0]],
            ["action", "add", "suspend", "--url", hook, "--kind", "suspend-account", "--on", "flag.confirmed", "--secret-out", secrets[1]],
            ["user", "add", "alice", "--role", "moderator"],
            ["user", "add", "bob", "--role", "moderator"],
            ["user", "add", "lee", "--role", "lead"],
            ["user", "add", "cora", "--role", "compliance"],
            ["queue", "--actor", "alice"],
            ["claim", "--actor", "alice"],
            ["show", top, "--actor", "alice"],
            ["decide", top, "--actor", "alice", "--outcome", "confirm", "--category", "grooming",
             "--reason", "age questions, secrecy, meeting request near school", "--urgent", "meeting planned this weekend"],
            // Urgent: the restriction goes out now, before any second review.
            ["actions", "deliver"],
            ["actions"],
            ["claim", top, "--actor", "bob"],
            ["decide", top, "--actor", "bob", "--outcome", "confirm", "--category", "grooming", "--reason", "agree: enticement, meeting arranged"],
            ["actions", "deliver"],
            ["actions", "--case", "C-000001"],
            ["claim", first, "--actor", "alice"],
            ["decide", first, "--actor", "alice", "--outcome", "confirm", "--category", "grooming",
             "--reason", "flattery, age question, secrecy, move to private app, gift"],
            ["claim", first, "--actor", "bob"],
            ["decide", first, "--actor", "bob", "--outcome", "dismiss", "--reason", "could be a relative"],
            ["decide", first, "--actor", "lee", "--outcome", "confirm", "--category", "grooming",
             "--reason", "not a relative per account data; grooming pattern"],
            ["claim", benign, "--actor", "bob"],
            ["decide", benign, "--actor", "bob", "--outcome", "dismiss", "--reason", "homework chat between classmates"],
            // Known material: a list (here one PDQ hash, standing in for an industry list), then a flag whose
            // attachment matches it: urgent at ingest, and never shown to a moderator.
            ["hashlist", "import", root.appendingPathComponent("sample-hashlist.csv").path, "--name", "demo-known", "--kind", "pdq",
             "--source", "demo list standing in for an industry hash list", "--category", "csam", "--actor", "cora"],
            ["ingest", root.appendingPathComponent("sample-known.jsonl").path],
            ["queue", "--actor", "alice"],
            ["claim", known, "--actor", "alice"],
            ["decide", known, "--actor", "alice", "--outcome", "confirm", "--category", "csam",
             "--reason", "attachment matches demo-known (pdq distance 16); adult asks a 12-year-old to keep it secret"],
            ["claim", known, "--actor", "bob"],
            ["decide", known, "--actor", "bob", "--outcome", "confirm", "--category", "csam", "--reason", "agree: listed material sent to a child"],
            ["hashlist", "list"],
            ["case", "list"],
            ["audit", "checkpoint"],
            ["audit", "prove", "0"],
            ["export", "C-000001", "--agency", "NCMEC", "--out", packet, "--zip", "--actor", "cora"],
            ["key", "show", "--pem", "--out", root.appendingPathComponent("custos-key.pem").path],
            ["verify-packet", packet + ".zip", "--key", root.appendingPathComponent("custos-key.pem").path],
            ["export", "C-000003", "--agency", "NCMEC", "--out", knownPacket, "--actor", "cora"],
            ["verify-packet", knownPacket, "--key", root.appendingPathComponent("custos-key.pem").path],
            ["audit", "verify"],
        ]
        for args in script {
            print("\n$ custos " + args.map(Demo.shellQuoted).joined(separator: " "))
            // verify-packet needs no store; every other step names the demo's.
            var command = try Custos.parseAsRoot(args.first == "verify-packet" ? args : args + ["--db", db])
            try command.run()
        }
        // Console sign-ins for the demo's people (what `user set-password` and `user totp` do).
        let os = GlobalOptions.osLogin()
        let admin = try Store.open(path: db, actor: Actor(name: os, osUser: os, auth: .osLogin))
        for (user, _) in Demo.people { try admin.setPassword(user: user, password: Demo.password(user)) }
        let coraTOTP = try admin.enrolTOTP(user: "cora")
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        print("\nDemo store: \(db)")
        print("Referral packet: \(packet) (and .zip)")
        print("Open the report in a browser: \(packet)/data/report.html")
        print("Platform actions: `custos actions`; the CyberTipline XML's accountTemporarilyDisabled is the platform's acknowledgement")
        print("Known material: \(knownPacket)/data/report.html and data/cybertipline-report.xml carry the match and each file's MD5")
        print("Try: \(binary) --db \(db) case show C-000001")
        print("     \(binary) --db \(db) audit log --subject C-000001")
        print("\nOpen the demo store in the console:")
        print("  \(binary) serve --db \(db)")
        print("  then http://127.0.0.1:8080/ and sign in as:")
        for (user, role) in Demo.people { print("    \(pad(user, 6)) \(pad(role, 11)) password \(Demo.password(user))") }
        print("  cora (compliance) also needs a one-time code: add this to an authenticator app:")
        print("    \(coraTOTP)")
    }

    static let people = [("alice", "moderator"), ("bob", "moderator"), ("lee", "lead"), ("cora", "compliance")]
    static func password(_ user: String) -> String { "demo-\(user)-password" }

    static func shellQuoted(_ s: String) -> String {
        s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./:=@".contains($0) }) ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
