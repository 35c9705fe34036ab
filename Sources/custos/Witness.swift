import ArgumentParser
@preconcurrency import Crypto
import CustosCore
import CustosStore
import Foundation
import Hummingbird

struct WitnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "witness",
        abstract: "A witness for other parties' Custos logs (c2sp.org/tlog-witness): it keeps the last checkpoint it cosigned per log and cosigns a new one only with a valid consistency proof.",
        subcommands: [WitnessKey.self, WitnessServe.self])
}

struct WitnessKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Create the witness's signing key (if FILE does not exist) and print its verifier key, which a store's `witnesses` setting names.")
    @Option(help: "The witness's name, a schema-less URL such as witness.example.org/w1.") var name: String
    @Option(help: "The witness's private key file (created 0600 when missing).") var out: String

    func run() throws {
        let key = try loadOrCreateWitnessKey(out)
        print(VerifierKey(name: try witnessName(name), type: 0x04, key: key.publicKey))
    }
}

struct WitnessServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve POST /add-checkpoint for the logs named with --log, until interrupted.",
        discussion: """
            Answers as c2sp.org/tlog-witness prescribes: 200 with a cosignature line, 409 (text/x.tlog.size) when the old \
            size is not the last one it cosigned, 422 when the consistency proof fails, 403 when the log's signature does not \
            verify, 404 for an unknown log, 400 for a malformed request. The last cosigned checkpoint of each log is written \
            to --state (atomically, before answering).
            """)
    @Option(help: "Address to listen on (loopback by default).") var listen = "127.0.0.1:7380"
    @Option(help: "The witness's name, as given to `custos witness key`.") var name: String
    @Option(help: "The witness's private key file.") var key: String
    @Option(help: "A log to witness: its verifier key, as `custos key show` prints it (repeatable).") var log: [String] = []
    @Option(help: "The witness's state file (JSON; created when missing).") var state: String

    func run() throws {
        let name = try witnessName(name)
        let signing = try readWitnessKey(key, field: "--key", else: "\(key) is not an Ed25519 private key (create one with `custos witness key`)")
        var logs: [String: Curve25519.Signing.PublicKey] = [:]
        for l in log {
            let v: VerifierKey
            do { v = try VerifierKey(parsing: l) } catch { throw CustosError.invalidInput(field: "--log", reason: "\(error)") }
            guard v.type == 0x01 else { throw CustosError.invalidInput(field: "--log", reason: "\(v.name) is not a log (Ed25519 note) key") }
            logs[v.name] = v.key
        }
        guard !logs.isEmpty else { throw CustosError.invalidInput(field: "--log", reason: "name at least one log to witness") }
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else {
            throw CustosError.invalidInput(field: "--listen", reason: "\(quoted(listen)) is not HOST:PORT")
        }
        let followed = logs.keys.sorted().joined(separator: ", ")
        let witnessKey = VerifierKey(name: name, type: 0x04, key: signing.publicKey)
        let witness = try WitnessState(file: state, name: name, key: signing, logs: logs)
        let router = Router()
        router.post("add-checkpoint") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 64 * 1024)
            let (status, contentType, text) = await witness.add(String(buffer: body))
            return Response(status: .init(code: status), headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname(String(parts[0]), port: port), serverName: "custos-witness"))
        // Unbuffered, so a supervisor sees it at once.
        for line in ["witness \(name) for \(followed) on http://\(listen)/add-checkpoint", "\(witnessKey)"] {
            FileHandle.standardOutput.write(Data((terminalSafe(line) + "\n").utf8))
        }
        final class Failure: @unchecked Sendable { var error: Error? }
        let failure = Failure()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await app.runService() } catch { failure.error = error }
            done.signal()
        }
        done.wait()
        if let e = failure.error { throw CustosError.storage(cause: "the witness stopped: \(e)") }
    }
}

/// The witness's one piece of state, the last checkpoint it cosigned per log, checked and
/// persisted under one lock (an actor) so two requests cannot roll it back.
actor WitnessState {
    let file: String
    let name: String
    let key: Curve25519.Signing.PrivateKey
    let logs: [String: Curve25519.Signing.PublicKey]
    var seen: [String: WitnessRules.Seen]
    /// Held for as long as this witness runs: a second witness on the same state file would
    /// cosign from a state the first has moved past (a fork one of them refused).
    let lock: FileLock

    init(file: String, name: String, key: Curve25519.Signing.PrivateKey, logs: [String: Curve25519.Signing.PublicKey]) throws {
        self.file = file; self.name = name; self.key = key; self.logs = logs
        switch try FileLock.take(file + ".lock", holder: "witness \(name) (process \(getpid()))") {
        case .success(let lock): self.lock = lock
        case .failure(let held):
            throw CustosError.conflict(subject: "the state file \(file)", reason: "is in use by another witness: \(held.description); one state file serves one witness at a time")
        }
        if let data = FileManager.default.contents(atPath: file) {
            do { seen = try JSONDecoder().decode([String: WitnessRules.Seen].self, from: data) } catch {
                throw CustosError.invalidInput(field: "--state", reason: "\(file) is not a witness state file: \(error)")
            }
        } else {
            seen = [:]
        }
    }

    /// (HTTP status, content type, body) for one add-checkpoint request.
    func add(_ body: String) -> (Int, String, String) {
        do {
            let request = try WitnessRules.Request(parsing: body)
            let (origin, checkpoint) = try WitnessRules.add(request, logs: logs, seen: seen)
            var next = seen
            next[origin] = .init(size: checkpoint.size, root: Data(checkpoint.root).base64EncodedString())
            try persist(next)
            seen = next
            let line = try Cosignature.sign(body: checkpoint.text, name: name, key: key, timestamp: UInt64(Date().timeIntervalSince1970))
            return (200, "text/plain; charset=utf-8", line)
        } catch let r as WitnessRules.Refusal {
            return (r.status, r.status == 409 ? "text/x.tlog.size" : "text/plain; charset=utf-8", r.body.hasSuffix("\n") ? r.body : r.body + "\n")
        } catch {
            return (500, "text/plain; charset=utf-8", "the witness could not record the checkpoint\n")
        }
    }

    /// Write-then-rename, with fsync, so a crash leaves the old state or the new, never half.
    private func persist(_ next: [String: WitnessRules.Seen]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = try encoder.encode(next)
        let temp = file + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw CustosError.storage(cause: "cannot write \(temp)") }
        let ok = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == data.count && fsync(fd) == 0
        close(fd)
        guard ok, rename(temp, file) == 0 else { throw CustosError.storage(cause: "cannot write \(file)") }
    }
}

private func witnessName(_ name: String) throws -> String {
    guard !name.isEmpty, name.utf8.count <= 256, !name.contains(where: { $0.isWhitespace || $0 == "+" }),
          !name.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) else {
        throw CustosError.invalidInput(field: "--name", reason: "\(quoted(name)) must be non-empty, without spaces, '+' or control characters")
    }
    return name
}

private func loadOrCreateWitnessKey(_ path: String) throws -> Curve25519.Signing.PrivateKey {
    if FileManager.default.fileExists(atPath: path) {
        return try readWitnessKey(path, field: "--out", else: "\(path) exists and is not an Ed25519 private key")
    }
    let key = Curve25519.Signing.PrivateKey()
    try Store.writeSecret(KeyEncoding.privateKeyPEM(key), to: path)
    return key
}

/// The witness's Ed25519 key from a PEM file; a file that cannot be read says why, one that
/// holds no such key says `problem`.
private func readWitnessKey(_ path: String, field: String, else problem: String) throws -> Curve25519.Signing.PrivateKey {
    let text = String(decoding: try readInput(path, limit: 1 << 16), as: UTF8.self)
    guard let key = try? KeyEncoding.privateKey(pem: text) else { throw CustosError.invalidInput(field: field, reason: problem) }
    return key
}
