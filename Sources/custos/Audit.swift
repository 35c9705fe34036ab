import ArgumentParser
import Crypto
import CustosCore
import CustosStore
import Foundation

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The custody log: verify, timeline, signed checkpoints and proofs.",
        subcommands: [AuditVerify.self, AuditLog.self, AuditCheckpoint.self, AuditCheckpoints.self, AuditProve.self,
                      AuditShow.self, AuditConsistency.self, AuditVerifyProof.self, AuditRebuild.self])
}

struct AuditRebuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Build a new store from this one's custody log and evidence alone, verify it, and report.",
        discussion: """
            The log, its signed head and the evidence are copied; the Merkle tree is recomputed from the leaves; every \
            workflow table (users, decisions, flag states, cases, referrals, …) is the replay of the log through the one \
            projection. Login secrets and signed checkpoint notes are taken from this store only where they match the \
            digests the log recorded. The new store must pass `audit verify`; one that does not is removed.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The new store file (must not exist).") var out: String
    func run() throws {
        let started = Date()
        let r = try global.open(.read).rebuild(to: out)
        print("rebuilt \(terminalSafe(r.path)): \(r.entries) custody entries replayed, \(r.flags) flags, in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        for step in r.verify.steps { print("PASS \(pad(step.name, 16))") }
        print("OK: the rebuilt store verifies")
    }
}

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Recompute the whole log, every checkpoint and every evidence hash; exit 1 naming the first discrepancy.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("log-only"), help: "Check only the custody log and its checkpoints, not the evidence.") var logOnly = false
    @Option(name: .customLong("checkpoint"), help: "A signed checkpoint kept outside the store (repeatable); the store's log must extend it.")
    var checkpoints: [String] = []
    @Option(help: "The organisation's public key (PEM) the outside checkpoints are checked with.") var key: String?
    func run() throws {
        let notes = try checkpoints.map { file -> String in
            guard let text = String(data: try readInput(file, limit: 1 << 20), encoding: .utf8) else {
                throw CustosError.invalidInput(field: file, reason: "not UTF-8 text")
            }
            return text
        }
        let pinned = try key.map { k -> Curve25519.Signing.PublicKey in
            guard let pem = String(data: try readInput(k, limit: 1 << 16), encoding: .utf8) else {
                throw CustosError.invalidInput(field: "--key", reason: "\(k) is not UTF-8 text")
            }
            return try KeyEncoding.publicKey(pem: pem)
        }
        if !notes.isEmpty && pinned == nil { throw CustosError.invalidInput(field: "--key", reason: "--checkpoint needs the public key to check it with") }
        let r = try global.open(.verify).verify(evidence: !logOnly, anchors: notes, anchorKey: pinned)
        print("custody entries \(r.entries), checkpoints \(r.checkpoints), conversations \(r.conversations), attachments \(r.blobs)")
        for step in r.steps {
            print("\(step.ok ? "PASS" : "FAIL") \(pad(step.name, 16)) " + (step.ok ? "" : step.problems.map(terminalSafe).joined(separator: "; ")))
        }
        for n in r.notes { print("NOTE: \(terminalSafe(n))") }
        if r.ok { print("OK: the custody log, its checkpoints\(logOnly ? "" : " and all evidence") verify"); return }
        for p in r.problems { print("FAIL: \(terminalSafe(p))") }
        throw ExitCode(1)
    }
}

struct AuditLog: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "log", abstract: "Print the custody timeline.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only entries about this subject (a flag detector:flag_id, a case C-000001, a user…).") var subject: String?
    @Flag(help: "JSON Lines: each line is the entry's canonical bytes.") var json = false
    func run() throws {
        for e in try global.open(subject == nil ? .read : .write).readCustodyLog(subjects: subject.map { [$0] }) {
            if json { writeExact(e.canonicalBytes + Data([0x0A])); continue }
            print("#\(e.seq) \(e.at) \(terminalSafe(e.actor))\(e.establishedBy.isEmpty ? "" : " (\(terminalSafe(e.establishedBy)))") \(e.action) \(e.subjectType) \(terminalSafe(e.subjectID)) \(terminalSafe(e.details))\(e.evidenceHash.map { " evidence " + $0.prefix(16) } ?? "")")
        }
    }
}

struct AuditCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checkpoint", abstract: "Sign the current tree head as a C2SP checkpoint and store it.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The signing key file (default: the one init wrote, or $CUSTOS_KEY).") var key: String?
    @Option(help: "Also write the signed checkpoint into this folder, as a new file (a write-once place, a mail outbox, another machine).")
    var out: String?
    func run() throws {
        var outDir: ObjCBool = false
        if let out, !(FileManager.default.fileExists(atPath: out, isDirectory: &outDir) && outDir.boolValue) {
            throw CustosError.invalidInput(field: "--out", reason: "\(out) is not a folder")
        }
        let store = try global.open(key: key)
        let cp = try store.makeCheckpoint(key: try store.signingKey(path: global.keyPath(key)))
        for w in try store.collectCosignatures(checkpointID: cp.id) {
            print("witness \(terminalSafe(w.witness)): \(terminalSafe(w.detail))")
        }
        let note = try store.cosignedNote(cp.note)
        if let out {
            let file = URL(fileURLWithPath: out).appendingPathComponent("checkpoint-\(String(format: "%012lld", cp.size)).txt")
            do { try Data(note.utf8).write(to: file, options: .withoutOverwriting) } catch {
                throw CustosError.storage(cause: "cannot write \(file.path): \(error.localizedDescription)")
            }
            print("wrote \(file.path)")
        }
        print("checkpoint \(cp.id): \(cp.size) entries")
        print(note, terminator: "")
    }
}

struct AuditCheckpoints: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checkpoints", abstract: "List stored checkpoints.")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false
    func run() throws {
        let list = try global.open(.read).checkpoints()
        if json {
            printJSON(.array(list.map { .object(["id": .integer($0.id), "size": .integer($0.size), "root": .string(Data($0.root).base64EncodedString()),
                                                 "created_at": .string($0.createdAt), "note": .string($0.note)]) }))
            return
        }
        for c in list { print("\(c.id)\t\(c.size)\t\(Data(c.root).base64EncodedString())\t\(c.createdAt)") }
    }
}

struct AuditProve: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prove", abstract: "Print a C2SP tlog-proof@v1 for entry N (latest checkpoint by default).")
    @OptionGroup var global: GlobalOptions
    @Argument var n: Int64
    @Option var checkpoint: Int64?
    func run() throws {
        let store = try global.open(.read)
        print(try store.inclusionProof(seq: n, checkpoint: try store.checkpoint(id: checkpoint)).text, terminator: "")
    }
}

struct AuditShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show entry N; --canonical writes its exact leaf bytes.")
    @OptionGroup var global: GlobalOptions
    @Argument var n: Int64
    @Flag var canonical = false
    func run() throws {
        let e = try global.open(.read).custodyEntry(seq: n)
        if canonical { writeExact(e.canonicalBytes); return }
        print(terminalSafe(String(decoding: e.canonicalBytes, as: UTF8.self)))
        print("leaf hash \(Hex.encode(e.leafHash))")
    }
}

struct AuditConsistency: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "consistency", abstract: "Print an RFC 9162 consistency proof between checkpoints K1 and K2.")
    @OptionGroup var global: GlobalOptions
    @Argument var k1: Int64
    @Argument var k2: Int64
    func run() throws {
        let store = try global.open(.read)
        let a = try store.checkpoint(id: k1), b = try store.checkpoint(id: k2)
        let proof = try store.consistencyProof(from: a, to: b)
        print("size1 \(a.size)")
        print("size2 \(b.size)")
        print("root1 \(Data(a.root).base64EncodedString())")
        print("root2 \(Data(b.root).base64EncodedString())")
        for h in proof { print(Data(h).base64EncodedString()) }
    }
}

struct AuditVerifyProof: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify-proof", abstract: "Check a tlog-proof offline, with no store: signature, then inclusion of the entry.")
    @Argument(help: "The .tlog-proof file.") var proof: String
    @Option(help: "The organisation's public key (PEM).") var key: String
    @Option(help: "The entry's canonical bytes (from `custos audit show N --canonical`).") var entry: String
    func run() throws {
        guard let proofText = String(data: try readInput(proof), encoding: .utf8) else { throw CustosError.invalidInput(field: proof, reason: "not UTF-8 text") }
        guard let pem = String(data: try readInput(key), encoding: .utf8) else { throw CustosError.invalidInput(field: key, reason: "not UTF-8 text") }
        let bytes = try readInput(entry)
        do {
            let p = try TlogProof(text: proofText)
            let cp = try p.verify(entry: bytes, key: try KeyEncoding.publicKey(pem: pem))
            print("OK: entry \(p.index) is in the log \(cp.origin) at size \(cp.size), signed by the given key")
        } catch {
            throw CLIError("proof does not verify: \(error)")
        }
    }
}
