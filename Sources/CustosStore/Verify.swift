import CustosCore
import Crypto
import Foundation
import GRDB

/// The result of `custos audit verify`: counts, and the first discrepancy of each kind.
public struct VerifyReport: Sendable {
    public var entries: Int64 = 0
    public var conversations = 0
    public var blobs = 0
    public var checkpoints = 0
    public var problems: [String] = []
    public var ok: Bool { problems.isEmpty }
}

extension Store {
    /// Recomputes the whole custody log (leaves, chain, Merkle nodes), checks every stored
    /// checkpoint's signature and root and the consistency of each with the next, and
    /// recomputes every conversation's evidence hash and every attachment's SHA-256.
    public func verify(evidence: Bool = true) throws -> VerifyReport {
        var report = VerifyReport()
        let key = try? publicKey()
        let origin = try? organisation().origin
        try read { db in
            // 1. Entries: contiguous seq, leaf hash from the canonical bytes, chain link.
            var chain = CustodyEntry.genesisChain
            var leaves = [UInt8]()
            leaves.reserveCapacity(Int(try Int64.fetchOne(db, sql: "SELECT count(*) FROM custody") ?? 0) * 32)
            let rows = try Row.fetchCursor(db, sql: """
                SELECT seq, at, actor, os_user, action, subject_type, subject_id, details, evidence_hash, leaf_hash, chain_hash
                FROM custody ORDER BY seq
                """)
            var expected: Int64 = 0
            var firstBad: String?
            while let row = try rows.next() {
                let entry = CustodyEntry(seq: row[0], at: row[1], actor: row[2], osUser: row[3], action: row[4], subjectType: row[5],
                                         subjectID: row[6], details: row[7], evidenceHash: row[8])
                if entry.seq != expected {
                    firstBad = firstBad ?? "custody entry \(expected) is missing (next stored entry is \(entry.seq)): entries were deleted or renumbered"
                }
                let leaf = entry.leafHash
                let storedLeaf = Array(row[9] as Data)
                if leaf != storedLeaf {
                    firstBad = firstBad ?? "custody entry \(entry.seq) (\(entry.action) \(entry.subjectID)): its contents do not match its recorded leaf hash; the entry was edited"
                }
                chain = CustodyEntry.chain(previous: chain, leaf: storedLeaf)
                if chain != Array(row[10] as Data) {
                    firstBad = firstBad ?? "custody entry \(entry.seq): chain hash does not link to the entries before it (inserted, removed or reordered entries)"
                }
                leaves.append(contentsOf: leaf)
                expected = entry.seq + 1
                report.entries += 1
            }
            if let firstBad { report.problems.append(firstBad) }

            // 2. Merkle nodes, level by level from the recomputed leaves.
            let n = leaves.count / 32
            var levels: [[UInt8]] = [leaves]
            while levels.last!.count / 32 >= 2 {
                let below = levels.last!
                var above = [UInt8]()
                above.reserveCapacity(below.count / 2)
                var i = 0
                while i + 64 <= below.count {
                    above.append(contentsOf: Merkle.nodeHash(Array(below[i..<i + 32]), Array(below[i + 32..<i + 64])))
                    i += 64
                }
                levels.append(above)
            }
            let nodes = try Row.fetchCursor(db, sql: "SELECT level, idx, hash FROM merkle_nodes ORDER BY level, idx")
            var nodeCount = 0
            var nodeProblem: String?
            while let r = try nodes.next() {
                nodeCount += 1
                let level: Int = r["level"], idx: Int = r["idx"]
                let hash = Array(r["hash"] as Data)
                guard level < levels.count, (idx + 1) * 32 <= levels[level].count else {
                    nodeProblem = nodeProblem ?? "merkle node (level \(level), index \(idx)) covers entries that do not exist: the log was truncated"
                    continue
                }
                if Array(levels[level][idx * 32..<(idx + 1) * 32]) != hash {
                    nodeProblem = nodeProblem ?? "merkle node (level \(level), index \(idx)) does not match the entries it covers (entries \(idx << level)–\(((idx + 1) << level) - 1))"
                }
            }
            let expectedNodes = levels.dropFirst().reduce(0) { $0 + $1.count / 32 }
            if nodeProblem == nil && nodeCount != expectedNodes {
                nodeProblem = "the Merkle tree has \(nodeCount) stored nodes; \(n) entries need \(expectedNodes)"
            }
            if let nodeProblem { report.problems.append(nodeProblem) }

            // 3. Checkpoints: signature, root over the recomputed leaves, consistency.
            let source: Merkle.NodeSource = { level, index in
                Array(levels[level][Int(index) * 32..<(Int(index) + 1) * 32])
            }
            var previous: (size: Int64, root: Merkle.Hash, id: Int64)?
            for cp in try Row.fetchAll(db, sql: "SELECT * FROM checkpoints ORDER BY id").map(Store.checkpoint(from:)) {
                report.checkpoints += 1
                guard let key, let origin else {
                    report.problems.append("checkpoint \(cp.id): the store has no public key to check it with")
                    continue
                }
                let signedText: String
                do { signedText = try SignedNote.verify(note: cp.note, name: origin, key: key) } catch {
                    report.problems.append("checkpoint \(cp.id): \(error)")
                    continue
                }
                guard let body = try? Checkpoint(text: signedText), body.size == cp.size, body.root == cp.root else {
                    report.problems.append("checkpoint \(cp.id): the signed note does not match the stored size and root")
                    continue
                }
                if cp.size > Int64(n) {
                    report.problems.append("checkpoint \(cp.id) signed \(cp.size) entries but the log has only \(n): the log was truncated")
                    continue
                }
                let root = try Merkle.root(size: cp.size, nodes: source)
                if root != cp.root {
                    report.problems.append("checkpoint \(cp.id) (size \(cp.size)): the log's entries no longer hash to the signed root; history was rewritten")
                    continue
                }
                if let p = previous, p.size > 0 {
                    let proof = p.size == cp.size ? [] : try Merkle.consistencyProof(size1: p.size, size2: cp.size, nodes: source)
                    if !(p.size == cp.size ? p.root == root : Merkle.verifyConsistency(size1: p.size, size2: cp.size, root1: p.root, root2: root, proof: proof)) {
                        report.problems.append("checkpoint \(cp.id) is not consistent with checkpoint \(p.id)")
                    }
                }
                previous = (cp.size, root, cp.id)
            }

            // 4. Evidence: every conversation's hash from its rows, every blob's SHA-256,
            //    every flag's ingest entry naming its conversation.
            guard evidence else { return }
            if let bad = try firstChangedConversation(db: db, report: &report) { report.problems.append(bad) }
            let missing = try Row.fetchAll(db, sql: """
                SELECT f.detector, f.flag_id FROM flags f JOIN conversations c ON c.id = f.conversation_id
                WHERE NOT EXISTS (SELECT 1 FROM custody e WHERE e.subject_type = 'flag' AND e.action = 'flag.ingest'
                                  AND e.subject_id = f.detector || ':' || f.flag_id AND e.evidence_hash = c.evidence_hash)
                LIMIT 1
                """)
            if let m = missing.first {
                report.problems.append("flag \(FlagKey.make(detector: m["detector"], flagID: m["flag_id"])): no ingest entry in the custody log records its evidence hash (added or changed behind the log's back)")
            }
            let blobs = try Row.fetchCursor(db, sql: "SELECT sha256, size, bytes FROM blobs")
            while let b = try blobs.next() {
                report.blobs += 1
                let bytes: Data = b["bytes"]
                if SHA256Hex.of(bytes) != (b["sha256"] as String) || bytes.count != (b["size"] as Int) {
                    report.problems.append("attachment \(b["sha256"] as String): its bytes no longer match their SHA-256")
                    break
                }
            }
        }
        return report
    }
}

extension Store {
    /// Streams conversations, participants and messages in key order (three cursors, one
    /// pass) and recomputes each evidence hash; names the first that no longer matches.
    func firstChangedConversation(db: Database, report: inout VerifyReport) throws -> String? {
        let conversations = try Row.fetchCursor(db, sql: "SELECT * FROM conversations ORDER BY id")
        let participants = try Row.fetchCursor(db, sql: "SELECT * FROM participants ORDER BY conversation_id, seq")
        let messages = try Row.fetchCursor(db, sql: "SELECT * FROM messages ORDER BY conversation_id, seq")
        var nextParticipant: (Int64, JSONValue)?
        var nextMessage: (Int64, JSONValue)?
        func advanceParticipant() throws {
            nextParticipant = try participants.next().map { r in (r["conversation_id"], try ConversationRows.participant(r, conversation: r["conversation_id"])) }
        }
        func advanceMessage() throws {
            nextMessage = try messages.next().map { r in (r["conversation_id"], try ConversationRows.message(r, conversation: r["conversation_id"])) }
        }
        try advanceParticipant()
        try advanceMessage()
        while let c = try conversations.next() {
            let id: Int64 = c["id"]
            var ps: [JSONValue] = [], ms: [JSONValue] = []
            while let (cid, p) = nextParticipant, cid <= id {
                if cid == id { ps.append(p) }
                try advanceParticipant()
            }
            while let (cid, m) = nextMessage, cid <= id {
                if cid == id { ms.append(m) }
                try advanceMessage()
            }
            report.conversations += 1
            let doc = try ConversationRows.document(c, participants: ps, messages: ms)
            let stored: String = c["evidence_hash"]
            let actual = SHA256Hex.of(doc.canonicalBytes)
            if actual != stored {
                let flags = try Row.fetchAll(db, sql: "SELECT detector, flag_id FROM flags WHERE conversation_id = ?", arguments: [id])
                    .map { FlagKey.make(detector: $0["detector"], flagID: $0["flag_id"]) }
                return "flag \(flags.joined(separator: ", ")): conversation \(quoted(c["external_id"])) no longer hashes to its evidence hash \(stored.prefix(16))… (now \(actual.prefix(16))…): evidence was changed"
            }
        }
        return nil
    }
}
