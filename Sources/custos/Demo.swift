import ArgumentParser
import CustosCore
import CustosPackets
import CustosResources
import CustosStore
import Foundation

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the whole job on the built-in sample data in a throwaway store.")
    @Option(help: "Folder for the demo store (default: a new temporary folder).") var dir: String?

    func run() throws {
        try guarded {
            let fm = FileManager.default
            let root = URL(fileURLWithPath: dir ?? NSTemporaryDirectory() + "custos-demo-\(ProcessInfo.processInfo.processIdentifier)")
            try fm.createDirectory(at: root, withIntermediateDirectories: true)
            for name in EmbeddedResources.names(in: "samples") {
                try EmbeddedResources.data(name)!.write(to: root.appendingPathComponent(String(name.dropFirst("samples/".count))))
            }
            let db = root.appendingPathComponent("demo.db").path
            guard !fm.fileExists(atPath: db) else { throw CLIError("\(db) already exists; pass an empty --dir") }
            let me = Actor.current()
            func step(_ s: String) { print("\n$ custos \(s)") }
            func open(as name: String? = nil) throws -> Store { try Store.open(path: db, actor: Actor(name: name ?? me.osUser, osUser: me.osUser)) }

            step("init --org \"Example Platform Inc.\" --contact-email trust-safety@example.com --db \(db)")
            _ = try Store.create(path: db, keyPath: nil, org: "Example Platform Inc.", contactEmail: "trust-safety@example.com", actor: me)
            print("created store and Ed25519 signing key; \(me.osUser) is the first admin")

            step("ingest \(root.path)/sample-flags.jsonl")
            let ingestor = Ingestor(store: try open())
            ingestor.onReject = { print("  rejected \($0.location): \($0.reason)") }
            try ingestor.ingestJSONLines(FileHandle(forReadingAtPath: root.appendingPathComponent("sample-flags.jsonl").path)!,
                                         name: "sample-flags.jsonl", baseDirectory: root)
            print("ingested \(ingestor.summary.ingested), duplicate \(ingestor.summary.duplicate), rejected \(ingestor.summary.rejected)")

            step("flags")
            for f in try open().flags() { print("  \(pad(f.key, 30)) \(pad(f.score.map { String(format: "%.2f", $0) } ?? "-", 5)) \(pad(f.status, 8)) \(f.messageCount) msgs  \(f.evidenceHash.prefix(12))") }

            step("user add alice --role moderator; bob (moderator), lee (lead), cora (compliance)")
            let admin = try open()
            for (n, r) in [("alice", Role.moderator), ("bob", .moderator), ("lee", .lead), ("cora", .compliance)] {
                try admin.addUser(name: n, role: r)
            }

            step("queue --actor alice")
            for q in try open(as: "alice").queue(limit: 10) { print("  \(pad(q.key, 30)) \(q.score.map { String(format: "%.2f", $0) } ?? "unscored")") }

            let top = "artemis:artemis-2026-000127", first = "artemis:artemis-2026-000123", benign = "artemis:artemis-2026-000125"
            step("claim --actor alice  (takes the highest-scored flag)")
            let c1 = try open(as: "alice").claim(nil)
            print("  claimed \(c1.key) until \(c1.expiresAt)")
            step("show \(c1.key) --actor alice")
            print(Transcript.render(try open(as: "alice").readFlag(c1.key, purpose: "review"), terminal: true).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            step("decide \(top) --actor alice --outcome confirm --category grooming --reason \"meeting request and secrecy\" --urgent \"meeting planned this weekend\"")
            print("  " + (try open(as: "alice").decide(top, outcome: .confirm, reason: "age questions, secrecy, meeting request near school",
                                                         category: .grooming, urgent: "meeting planned this weekend", annotations: [])).note)
            step("claim \(top) --actor bob; decide --outcome confirm (second review)")
            _ = try open(as: "bob").claim(top)
            let r2 = try open(as: "bob").decide(top, outcome: .confirm, reason: "agree: enticement, meeting arranged", category: .grooming, urgent: nil, annotations: [])
            print("  \(r2.note) → case \(r2.caseID ?? "-")")

            step("claim \(first) --actor alice; confirm; bob dismisses (a disagreement)")
            _ = try open(as: "alice").claim(first)
            _ = try open(as: "alice").decide(first, outcome: .confirm, reason: "flattery, age question, secrecy, move to private app, gift", category: .grooming, urgent: nil, annotations: [])
            _ = try open(as: "bob").claim(first)
            print("  " + (try open(as: "bob").decide(first, outcome: .dismiss, reason: "could be a relative", category: nil, urgent: nil, annotations: [])).note)
            step("decide \(first) --actor lee --outcome confirm (lead resolves)")
            let r3 = try open(as: "lee").decide(first, outcome: .confirm, reason: "not a relative per account data; grooming pattern", category: .grooming, urgent: nil, annotations: [])
            print("  \(r3.note) → case \(r3.caseID ?? "-")")

            step("claim \(benign) --actor bob; decide --outcome dismiss")
            _ = try open(as: "bob").claim(benign)
            print("  " + (try open(as: "bob").decide(benign, outcome: .dismiss, reason: "homework chat between classmates", category: nil, urgent: nil, annotations: [])).note)

            step("case list")
            for c in try open().cases() {
                print("  \(c.caseID) \(c.state) \(c.reportedAccounts.joined(separator: ",")) → \(c.agencies.map(\.code).joined(separator: ", "))")
            }

            let store = try open()
            step("audit checkpoint")
            let cp = try store.makeCheckpoint(key: try store.signingKey())
            print(cp.note.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))
            step("audit prove 0")
            let proof = try store.inclusionProof(seq: 0, checkpoint: cp)
            try proof.text.write(to: root.appendingPathComponent("entry-0.tlog-proof"), atomically: true, encoding: .utf8)
            try store.custodyEntry(seq: 0).canonicalBytes.write(to: root.appendingPathComponent("entry-0.json"))
            try KeyEncoding.publicKeyPEM(try store.publicKey()).write(to: root.appendingPathComponent("custos-key.pem"), atomically: true, encoding: .utf8)
            _ = try proof.verify(entry: try store.custodyEntry(seq: 0).canonicalBytes, key: try store.publicKey())
            print("  wrote entry-0.tlog-proof; it verifies offline against custos-key.pem")

            step("export C-000001 --agency NCMEC --out \(root.path)/packet-C-000001-NCMEC --zip --actor cora")
            let packetDir = root.appendingPathComponent("packet-C-000001-NCMEC")
            let cora = try open(as: "cora")
            let exported = try export(store: cora, caseID: "C-000001", agency: "NCMEC", out: packetDir, zip: true, templates: nil, xsd: nil,
                                      key: try cora.signingKey())
            print("  packet \(exported.packetID): \(exported.directory.path) (and .zip)")

            step("verify-packet \(packetDir.path).zip --key \(root.path)/custos-key.pem   (no store needed)")
            let checks = try PacketVerifier(pinnedKeyPEM: KeyEncoding.publicKeyPEM(try store.publicKey()))
                .verify(path: packetDir.deletingLastPathComponent().appendingPathComponent(packetDir.lastPathComponent + ".zip"))
            for c in checks { print("  \(c.ok ? "PASS" : "FAIL") \(pad(c.name, 17)) \(c.detail)") }

            step("audit verify")
            let report = try store.verify()
            print("  custody entries \(report.entries), checkpoints \(report.checkpoints), conversations \(report.conversations): \(report.ok ? "OK" : report.problems.joined(separator: "; "))")
            print("\nDemo store: \(db)")
            print("Referral packet: \(packetDir.path)")
            print("Open the report in a browser: \(packetDir.appendingPathComponent("data/report.html").path)")
            let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
            print("Try: \(binary) --db \(db) case show C-000001")
            print("     \(binary) audit verify-proof \(root.path)/entry-0.tlog-proof --key \(root.path)/custos-key.pem --entry \(root.path)/entry-0.json")
            if !report.ok || checks.contains(where: { !$0.ok }) { throw ExitCode(1) }
        }
    }
}
