import Crypto
import CustosCore
import Foundation
import Testing

/// The witness's rule (c2sp.org/tlog-witness) and cosignatures (tlog-cosignature), as pure
/// functions over small logs.
@Suite struct WitnessRuleTests {
    let logKey = Curve25519.Signing.PrivateKey()
    let origin = "custos/test/0123456789abcdef"

    func leaves(_ n: Int, salt: String = "") -> [Merkle.Hash] { (0..<n).map { Merkle.leafHash(Data("\(salt)entry \($0)".utf8)) } }

    func nodes(_ leaves: [Merkle.Hash]) -> Merkle.NodeSource {
        { level, index in
            let start = Int(index) << level, end = min(leaves.count, (Int(index) + 1) << level)
            return Merkle.root(leaves: Array(leaves[start..<end]))
        }
    }

    func note(_ leaves: [Merkle.Hash], key: Curve25519.Signing.PrivateKey? = nil) throws -> String {
        try SignedNote.sign(text: Checkpoint(origin: origin, size: Int64(leaves.count), root: Merkle.root(leaves: leaves)).text,
                            name: origin, key: key ?? logKey)
    }

    func request(_ old: Int64, _ leaves: [Merkle.Hash], key: Curve25519.Signing.PrivateKey? = nil) throws -> WitnessRules.Request {
        let proof = old == 0 ? [] : try Merkle.consistencyProof(size1: old, size2: Int64(leaves.count), nodes: nodes(leaves))
        return WitnessRules.Request(oldSize: old, proof: proof, note: try note(leaves, key: key))
    }

    func status(_ body: () throws -> Void) -> Int? {
        do { try body(); return nil } catch let r as WitnessRules.Refusal { return r.status } catch { return -1 }
    }

    var logs: [String: Curve25519.Signing.PublicKey] { [origin: logKey.publicKey] }

    @Test func aConsistentLogIsCosignedAndAForkOrARollbackIsRefused() throws {
        let log = leaves(9)
        var seen: [String: WitnessRules.Seen] = [:]
        // First sight: old size 0, no proof.
        let first = try WitnessRules.add(try request(0, Array(log.prefix(5))), logs: logs, seen: seen)
        seen[first.origin] = .init(size: first.checkpoint.size, root: Data(first.checkpoint.root).base64EncodedString())
        // Growth with a consistency proof from what the witness saw.
        let second = try WitnessRules.add(try request(5, log), logs: logs, seen: seen)
        #expect(second.checkpoint.size == 9)
        seen[origin] = .init(size: 9, root: Data(second.checkpoint.root).base64EncodedString())
        // A fork with the same key: history from entry 3 on rewritten, then grown.
        let fork = Array(log.prefix(3)) + leaves(8, salt: "fork ").suffix(8)
        #expect(status { _ = try WitnessRules.add(try request(9, fork), logs: logs, seen: seen) } == 422)
        // The same size with another root.
        #expect(status { _ = try WitnessRules.add(try request(9, Array(fork.prefix(9))), logs: logs, seen: seen) } == 409)
        // A rollback: an older checkpoint, offered from the size the log last had cosigned.
        #expect(status { _ = try WitnessRules.add(try request(5, Array(log.prefix(7))), logs: logs, seen: seen) } == 409)
        // Not signed by the log's key; an unknown log; a malformed body.
        #expect(status { _ = try WitnessRules.add(try request(9, log + leaves(2, salt: "x")), logs: logs, seen: seen) } == nil)
        #expect(status { _ = try WitnessRules.add(try request(9, log + leaves(1), key: .init()), logs: logs, seen: seen) } == 403)
        #expect(status { _ = try WitnessRules.add(try request(9, log + leaves(1)), logs: [:], seen: seen) } == 404)
        #expect(status { _ = try WitnessRules.Request(parsing: "old x\n\n") } == 400)
        #expect(status { _ = try WitnessRules.Request(parsing: "old 01\n\n") } == 400)
    }

    @Test func aRequestRoundTripsThroughItsBody() throws {
        let r = try request(4, leaves(11))
        let parsed = try WitnessRules.Request(parsing: r.body)
        #expect(parsed.oldSize == 4 && parsed.proof == r.proof && parsed.note == r.note)
    }

    @Test func aCosignatureVerifiesOnlyOverItsCheckpointAndWithItsKey() throws {
        let witness = Curve25519.Signing.PrivateKey()
        let n = try note(leaves(3))
        let body = String(n[..<n.index(after: n.range(of: "\n\n")!.lowerBound)])
        let line = try Cosignature.sign(body: body, name: "w.example/1", key: witness, timestamp: 1_795_000_000)
        #expect(try Cosignature.verify(note: n + line, name: "w.example/1", key: witness.publicKey) == 1_795_000_000)
        #expect(try Cosignature.verify(note: n + line, name: "w.example/1", key: Curve25519.Signing.PrivateKey().publicKey) == nil)
        let other = try note(leaves(4))
        #expect(throws: NoteError.self) { try Cosignature.verify(note: other + line, name: "w.example/1", key: witness.publicKey) }
        // The log's own signature is still valid with the cosignature appended.
        #expect(throws: Never.self) { try SignedNote.verify(note: n + line, name: origin, key: logKey.publicKey) }
    }

    @Test func verifierKeysRoundTripAndRefuseAMismatchedID() throws {
        let v = VerifierKey(name: "w.example/1", type: 0x04, key: Curve25519.Signing.PrivateKey().publicKey)
        #expect(try VerifierKey(parsing: v.description) == v)
        let parts = v.description.split(separator: "+", maxSplits: 2)
        #expect(throws: NoteError.self) { try VerifierKey(parsing: "w.example/2+\(parts[1])+\(parts[2])") }
        #expect(throws: CustosError.self) { try WitnessEndpoint.list("ftp://x \(v)") }
        #expect(try WitnessEndpoint.list("http://127.0.0.1:1 \(v)").first?.key == v)
        #expect(try WitnessEndpoint.list("none").isEmpty)
    }
}
