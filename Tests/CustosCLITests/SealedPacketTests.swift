import Foundation
import Testing

/// Packets sealed to an agency's X25519 key (HPKE, docs/sealed-packet.md), opened by custos
/// and by pyhpke, an independent implementation.
@Suite struct SealedPackets {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func tool(_ c: CLI, _ args: [String]) throws -> CLI.Result { try c.run(args, binary: URL(fileURLWithPath: "/usr/bin/env")) }

    /// The demo's store, and an agency key pair made with openssl and recorded for NCMEC.
    func setUp() throws -> (CLI, String) {
        let c = try CLI()
        let demo = c.dir.appendingPathComponent("demo")
        #expect(try c.run(["demo", "--dir", demo.path]).status == 0)
        let db = demo.appendingPathComponent("demo.db").path
        for args in [["openssl", "genpkey", "-algorithm", "X25519", "-out", "agency.key"], ["openssl", "pkey", "-in", "agency.key", "-pubout", "-out", "agency.pub"],
                     ["openssl", "genpkey", "-algorithm", "X25519", "-out", "other.key"]] {
            #expect(try tool(c, args).status == 0)
        }
        #expect(try c.run(["agency", "set", "NCMEC", "--public-key", "agency.pub", "--db", db, "--actor", "cora"]).status == 0)
        return (c, db)
    }

    @Test func aSealedPacketHoldsNoPlaintextAndOpensOnlyWithTheAgencysKey() throws {
        let (c, db) = try setUp()
        let e = try c.run(["export", "C-000001", "--agency", "NCMEC", "--out", "sealed", "--seal", "--db", db, "--actor", "cora"])
        #expect(e.status == 0, "\(e.err)")
        let sealedPath = c.dir.appendingPathComponent("sealed.zip.hpke")
        let sealed = try Data(contentsOf: sealedPath)
        // Nothing readable: no message text, no packet folder or zip left beside it.
        for plain in ["homework", "secrecy", "bagit.txt", "report.json"] { #expect(sealed.firstRange(of: Data(plain.utf8)) == nil, "\(plain)") }
        let left = try FileManager.default.contentsOfDirectory(atPath: c.dir.path)
        #expect(!left.contains("sealed") && !left.contains("sealed.zip") && !left.contains { $0.hasPrefix(".custos-seal") }, "\(left)")
        // Custos opens it, and the packet inside verifies.
        #expect(try c.run(["open-packet", sealedPath.path, "--key", "agency.key", "--out", "opened"]).status == 0)
        // What it decrypted is its owner's alone (finding 20 of issue 23: custos runs with umask
        // 077, so its temporary zip, had the command been killed, would be too).
        for file in ["opened/data/report.json", "opened/bagit.txt"] {
            var info = stat()
            #expect(stat(c.dir.appendingPathComponent(file).path, &info) == 0 && info.st_mode & 0o077 == 0, "\(file): \(String(info.st_mode & 0o777, radix: 8))")
        }
        let pem = c.dir.appendingPathComponent("demo/custos-key.pem").path
        let v = try c.run(["verify-packet", "opened", "--key", pem])
        #expect(v.status == 0, "\(v.out)")
        // pyhpke opens it too, and the zip verifies.
        let py = try tool(c, ["python3", root.appendingPathComponent("scripts/open-sealed-packet").path, sealedPath.path, "agency.key", "py.zip"])
        #expect(py.status == 0, "\(py.out)\(py.err)")
        #expect(try c.run(["verify-packet", "py.zip", "--key", pem]).status == 0)
        // Another key: neither opens it.
        let wrong = try c.run(["open-packet", sealedPath.path, "--key", "other.key", "--out", "wrong"])
        #expect(wrong.status == 65 && wrong.err.contains("sealed to another key"), "\(wrong.err)")
        #expect(try tool(c, ["python3", root.appendingPathComponent("scripts/open-sealed-packet").path, sealedPath.path, "other.key", "py2.zip"]).status == 1)
        // One changed byte, in the ciphertext or in the header: it does not open, and says so.
        for offset in [sealed.count - 100, 30] {
            var bad = sealed
            bad[offset] ^= 0x01
            let file = c.dir.appendingPathComponent("bad-\(offset).zip.hpke")
            try bad.write(to: file)
            let r = try c.run(["open-packet", file.path, "--key", "agency.key", "--out", "bad-\(offset)"])
            #expect(r.status == 65, "\(r.err)")
            #expect(!FileManager.default.fileExists(atPath: c.dir.appendingPathComponent("bad-\(offset)").path))
        }
    }

    @Test func sealingNeedsTheAgencysX25519Key() throws {
        let (c, db) = try setUp()
        // An Ed25519 key (the organisation's) is not an agreement key.
        let org = c.dir.appendingPathComponent("demo/custos-key.pem").path
        let r = try c.run(["agency", "set", "NCA", "--public-key", org, "--db", db, "--actor", "cora"])
        #expect(r.status == 65 && r.err.contains("X25519"), "\(r.err)")
        // An agency without a key: refused before anything is written.
        let before = try c.run(["audit", "log", "--db", db, "--json", "--actor", "cora"]).out.split(separator: "\n").count
        let e = try c.run(["export", "C-000001", "--agency", "NCA", "--out", "nca", "--seal", "--db", db, "--actor", "cora"])
        #expect(e.status == 69 && e.err.contains("public key"), "\(e.err)")
        #expect(!FileManager.default.fileExists(atPath: c.dir.appendingPathComponent("nca.zip.hpke").path))
        let after = try c.run(["audit", "log", "--db", db, "--json", "--actor", "cora"]).out.split(separator: "\n").count
        #expect(after == before + 1)  // the refusal, and nothing else
    }
}
