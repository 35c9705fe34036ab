import Foundation
import Testing

/// A witness run as a second party would run it (`custos witness serve`, over real HTTP on
/// loopback), cosigning a store's checkpoints, and refusing a fork of the store signed with the
/// same key.
@Suite(.serialized) struct WitnessServe {
    /// Starts a witness for `logKey` on a free loopback port; returns it and its URL.
    func startWitness(_ c: CLI, logKey: String, state: String) throws -> (Process, String, String) {
        let vkey = try c.run(["witness", "key", "--name", "witness.test/w1", "--out", c.dir.appendingPathComponent("w.key").path])
        #expect(vkey.status == 0, "\(vkey.err)")
        for _ in 0..<20 {
            let port = Int.random(in: 20000...60000)
            let p = Process()
            p.executableURL = CLI.binary
            p.arguments = ["witness", "serve", "--name", "witness.test/w1", "--key", c.dir.appendingPathComponent("w.key").path,
                           "--log", logKey, "--state", state, "--listen", "127.0.0.1:\(port)"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            // Serving once it accepts connections; a port someone else holds makes it exit.
            for _ in 0..<200 where p.isRunning {
                if canConnect(port) { return (p, "http://127.0.0.1:\(port)", vkey.out.trimmingCharacters(in: .whitespacesAndNewlines)) }
                usleep(50_000)
            }
            if p.isRunning { p.terminate() }
        }
        throw CancellationError()
    }

    func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }

    @Test func aWitnessCosignsTheStoreAndRefusesASameKeyFork() throws {
        let c = try CLI()
        try c.initStore()
        let logKey = try #require(c.run(["key", "show", "--db", c.db]).out.split(separator: "\n").first { $0.hasPrefix("vkey") }?.split(separator: " ").last.map(String.init))
        let (witness, url, witnessKey) = try startWitness(c, logKey: logKey, state: c.dir.appendingPathComponent("witness-state.json").path)
        defer { witness.terminate(); witness.waitUntilExit() }
        #expect(try c.run(["settings", "set", "witnesses", "\(url) \(witnessKey)", "--db", c.db]).status == 0)

        // Cosigned, and the cosignature checks with an independent implementation of the spec.
        let outDir = c.dir.appendingPathComponent("anchors")
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        let first = try c.run(["audit", "checkpoint", "--out", outDir.path, "--db", c.db])
        #expect(first.status == 0 && first.out.contains("witness witness.test/w1: cosigned"), "\(first.out)\(first.err)")
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: outDir.path).first)
        let checker = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/check-cosignature").path
        let independent = try c.run(["python3", checker, outDir.appendingPathComponent(file).path, witnessKey], binary: URL(fileURLWithPath: "/usr/bin/env"))
        #expect(independent.status == 0, "\(independent.out)")

        // A copy of the store taken now, then both go their own ways with the same key.
        let fork = c.dir.appendingPathComponent("fork.db").path
        try FileManager.default.copyItem(atPath: c.db, toPath: fork)
        #expect(try c.run(["user", "add", "alice", "--role", "moderator", "--db", c.db]).status == 0)
        let second = try c.run(["audit", "checkpoint", "--db", c.db])
        #expect(second.out.contains("witness witness.test/w1: cosigned"), "\(second.out)\(second.err)")
        #expect(try c.run(["user", "add", "mallory", "--role", "admin", "--db", fork]).status == 0)
        let forked = try c.run(["audit", "checkpoint", "--key", c.dir.appendingPathComponent("c.signing.key").path, "--db", fork])
        #expect(forked.status == 0)
        #expect(forked.out.contains("witness witness.test/w1: refused with HTTP 409") || forked.out.contains("witness witness.test/w1: refused with HTTP 422"),
                "\(forked.out)")

        // Verification names the witnesses: the store's latest checkpoint is cosigned, the fork's is not.
        let v = try c.run(["audit", "verify", "--db", c.db])
        #expect(v.status == 0 && v.out.contains("checkpoint 2") && v.out.contains("cosigned by 1 witness: witness.test/w1"), "\(v.out)")
        let fv = try c.run(["audit", "verify", "--db", fork])
        #expect(fv.out.contains("checkpoint 1 ") && fv.out.contains("cosigned by 1 witness"), "\(fv.out)")
        #expect(!fv.out.contains("checkpoint 2 "), "\(fv.out)")
    }
}
