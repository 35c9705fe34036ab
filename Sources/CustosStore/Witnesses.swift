import CustosCore
import Crypto
import Foundation
import GRDB

/// How a process reaches a witness: one HTTP POST of `body` to `url`, answering (status,
/// body), or (0, why) when there was no answer. The store does no networking itself;
/// `CustosAgencies.WitnessClient.post` is the one implementation.
public typealias WitnessPost = @Sendable (_ url: String, _ body: String, _ timeout: TimeInterval) -> (Int, String)

extension Store {
    /// What one witness said about one checkpoint.
    public struct WitnessOutcome: Sendable {
        public let witness: String
        public let cosigned: Bool
        public let detail: String
    }

    /// Offers a checkpoint to every configured witness (c2sp.org/tlog-witness add-checkpoint,
    /// with a consistency proof from the last size that witness cosigned) and records each
    /// cosignature that verifies against the witness's key, with its custody entry. Network
    /// calls happen outside any transaction; a witness that is down or refuses is reported, and
    /// the checkpoint stands without it.
    @discardableResult
    public func collectCosignatures(checkpointID: Int64, timeout: TimeInterval = 10) throws -> [WitnessOutcome] {
        let (checkpoint, witnesses) = try read { db in
            (try StoredCheckpoint.fetchOne(db, sql: "SELECT * FROM checkpoints WHERE id = ?", arguments: [checkpointID]),
             try WitnessEndpoint.list(try settings(db).witnesses))
        }
        guard let checkpoint else { throw CustosError.notFound(kind: "checkpoint", name: String(checkpointID)) }
        var outcomes: [WitnessOutcome] = []
        for w in witnesses {
            let name = w.key.name
            if try read({ db in try Bool.fetchOne(db, sql: "SELECT 1 FROM cosignatures WHERE checkpoint_id = ? AND witness = ?", arguments: [checkpointID, name]) }) == true {
                outcomes.append(.init(witness: name, cosigned: true, detail: "already cosigned")); continue
            }
            var old = try read { db in
                try Int64.fetchOne(db, sql: """
                    SELECT max(c.size) FROM cosignatures s JOIN checkpoints c ON c.id = s.checkpoint_id WHERE s.witness = ? AND c.size <= ?
                    """, arguments: [name, checkpoint.size]) ?? 0
            }
            var outcome = WitnessOutcome(witness: name, cosigned: false, detail: "no answer")
            // At most one retry, from the size the witness says it last cosigned (409).
            for _ in 0..<2 {
                let proof = old == 0 ? [] : try read { db in try Merkle.consistencyProof(size1: old, size2: checkpoint.size, nodes: MerkleNodes.source(db)) }
                let body = WitnessRules.Request(oldSize: old, proof: proof, note: checkpoint.note).body
                let (status, text) = witnessPost(w.url.hasSuffix("/") ? w.url + "add-checkpoint" : w.url + "/add-checkpoint", body, timeout)
                if status == 409, let size = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)), size != old, size <= checkpoint.size, size > 0 {
                    old = size; continue
                }
                guard status == 200 else {
                    outcome = .init(witness: name, cosigned: false, detail: status == 0 ? text : "refused with HTTP \(status): \(text.prefix(200))")
                    break
                }
                // Keep only the line that verifies against this witness's key.
                let lines = text.split(separator: "\n").map { String($0) + "\n" }
                guard let line = lines.first(where: { l in (try? Cosignature.verify(note: checkpoint.note + l, name: name, key: w.key.key)) != nil }) else {
                    outcome = .init(witness: name, cosigned: false, detail: "its answer carries no cosignature that verifies with its key")
                    break
                }
                try write { _, log in
                    try log.record(.auditCosign(.init(witness: name, signature: line)), subjectID: String(checkpointID))
                }
                outcome = .init(witness: name, cosigned: true, detail: "cosigned")
                break
            }
            outcomes.append(outcome)
        }
        return outcomes
    }

    /// A checkpoint's note with every cosignature the store holds for it appended.
    public func cosignedNote(_ note: String) throws -> String {
        try read { db in
            let lines = try String.fetchAll(db, sql: """
                SELECT s.signature FROM cosignatures s JOIN checkpoints c ON c.id = s.checkpoint_id WHERE c.note = ? ORDER BY s.witness
                """, arguments: [note])
            return note + lines.joined()
        }
    }

    public func checkpointID(note: String) throws -> Int64? {
        try read { db in try Int64.fetchOne(db, sql: "SELECT id FROM checkpoints WHERE note = ?", arguments: [note]) }
    }

    /// Signs a checkpoint when the last one is older than `checkpoint-minutes` and entries
    /// were added since, then offers it to the witnesses. Returns nil when none was due.
    public func checkpointIfDue(key: Curve25519.Signing.PrivateKey) throws -> (StoredCheckpoint, [WitnessOutcome])? {
        guard try checkpointDue() else { return nil }
        let cp = try signCheckpointNow(key: key)
        return (cp, try collectCosignatures(checkpointID: cp.id))
    }

    /// Whether `checkpoint-minutes` have passed since the last checkpoint (or since the store
    /// began) and entries were added since. Indexed lookups only: it runs after every CLI write.
    func checkpointDue() throws -> Bool {
        try read { db -> Bool in
            let minutes = try settings(db).checkpointMinutes
            guard minutes > 0 else { return false }
            // The last checkpoint's own entry follows the size it signed.
            let last = try Row.fetchOne(db, sql: "SELECT size + 1 AS size, created_at FROM checkpoints ORDER BY id DESC LIMIT 1")
                ?? Row.fetchOne(db, sql: "SELECT 0 AS size, at AS created_at FROM custody WHERE seq = 0")
            guard let last, let at = Timestamp.parse(last["created_at"])?.epochMillis, clock() - at >= minutes * 60_000 else { return false }
            let size = try Int64.fetchOne(db, sql: "SELECT coalesce(max(seq) + 1, 0) FROM custody") ?? 0
            return size > (last["size"] as Int64)
        }
    }
}
