import CustosCore
import Crypto
import Foundation
import GRDB

/// The custody log bound to one open write transaction: entries appended here commit or
/// roll back together with the change they record.
public final class CustodyLog {
    let db: Database
    public let actor: Actor
    /// The transaction's time, UTC RFC 3339 with milliseconds, and as milliseconds since 1970:
    /// every entry and row the transaction writes carries this one time.
    public let now: String
    public let millis: Int64
    private var tail: (seq: Int64, chain: [UInt8])?
    /// The log's size before this transaction's first entry; nil until one is appended.
    private(set) var sizeBefore: Int64?
    /// The log's size with this transaction's entries.
    var size: Int64 { (tail?.seq ?? -1) + 1 }
    /// The leaf hashes this transaction appended, in order (the signed head extends the tree by them).
    private(set) var appendedLeaves: [Merkle.Hash] = []
    /// The newest Merkle node of each level this transaction wrote (level 0: leaves).
    private var newest: [Int: (index: Int64, hash: Merkle.Hash)] = [:]

    init(db: Database, actor: Actor, millis: Int64) {
        self.db = db
        self.actor = actor
        self.millis = millis
        self.now = Timestamp.utcString(millis: millis)
    }

    /// The one projection, applying this transaction's events to the workflow tables.
    private var projection = Projection(replaying: false)

    /// Records one event: appends its entry and applies it to the workflow tables, in this
    /// transaction. The only way state changes.
    @discardableResult
    func record(_ event: CustodyEvent, subjectID: String, evidenceHash: String? = nil, side: SideFacts = SideFacts()) throws -> Int64 {
        try record(event, subjectID: subjectID, canonicalDetails: event.details.canonicalString, evidenceHash: evidenceHash, side: side)
    }

    /// Records an event whose details are already canonical JSON text (ingest builds them on
    /// the parsing threads).
    @discardableResult
    func record(_ event: CustodyEvent, subjectID: String, canonicalDetails: String, evidenceHash: String?, side: SideFacts = SideFacts()) throws -> Int64 {
        let entry = try append(event.action, subjectID: subjectID, canonicalDetails: canonicalDetails, evidenceHash: evidenceHash)
        try projection.apply(entry, event, side: side, db: db)
        if let problem = projection.problems.first {
            throw CustosError.storage(cause: "the change cannot be applied: \(problem)")
        }
        return entry.seq
    }

    /// Appends one entry: its leaf, its chain link and the Merkle nodes it completes.
    private func append(_ action: CustodyAction, subjectID: String, canonicalDetails: String, evidenceHash: String?) throws -> CustodyEntry {
        let subjectType = action.subjectType.rawValue
        // SQLite hands TEXT back only up to a NUL: an entry holding one would no longer match
        // its own leaf hash. Nothing that reaches here may carry one (details are JSON-escaped).
        guard !subjectID.utf8.contains(0), !actor.name.utf8.contains(0), !actor.osUser.utf8.contains(0) else {
            throw CustosError.invalidInput(field: "subject", reason: "a custody entry's subject or actor cannot contain a NUL character")
        }
        if tail == nil {
            if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, chain_hash FROM custody ORDER BY seq DESC LIMIT 1")) {
                tail = (row["seq"], Array(row["chain_hash"] as Data))
            } else {
                tail = (-1, CustodyEntry.genesisChain)
            }
            sizeBefore = tail!.seq + 1
        }
        let seq = tail!.seq + 1
        let entry = CustodyEntry(seq: seq, at: now, actor: actor.name, osUser: actor.osUser, action: action.rawValue,
                                 subjectType: subjectType, subjectID: subjectID, details: canonicalDetails,
                                 evidenceHash: evidenceHash, auth: actor.auth.rawValue)
        let leaf = entry.leafHash
        let chain = CustodyEntry.chain(previous: tail!.chain, leaf: leaf)
        var insert = try DirectStatement(db, """
            INSERT INTO custody(seq, at, actor, os_user, action, subject_type, subject_id, details, evidence_hash, leaf_hash, chain_hash, auth)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        insert.bind(seq); insert.bind(entry.at); insert.bind(entry.actor); insert.bind(entry.osUser); insert.bind(entry.action)
        insert.bind(subjectType); insert.bind(subjectID); insert.bind(entry.details); insert.bind(evidenceHash)
        insert.bind(leaf); insert.bind(chain); insert.bind(entry.auth)
        // A trigger added behind Custos's back (`RAISE(IGNORE)`) can drop an insert without an
        // error: the entry must really be there, or the transaction fails.
        try insert.runInsertingOne(what: "custody entry \(seq)")
        // Store the perfect subtrees this leaf closes (amortised O(1), at most log n). A sibling
        // is the newest node of its level: this transaction's, kept in `newest`, or the store's.
        for node in try Merkle.completed(by: leaf, at: seq, sibling: { level, index in
            if let n = newest[level], n.index == index { return n.hash }
            return try MerkleNodes.node(db, level: level, index: index)
        }) {
            var insert = try DirectStatement(db, "INSERT INTO merkle_nodes(level, idx, hash) VALUES (?, ?, ?)")
            insert.bind(node.level); insert.bind(node.index); insert.bind(node.hash)
            try insert.runInsertingOne(what: "merkle node (level \(node.level), index \(node.index))")
            newest[node.level] = (node.index, node.hash)
        }
        newest[0] = (seq, leaf)
        tail = (seq, chain)
        appendedLeaves.append(leaf)
        return entry
    }
}

enum MerkleNodes {
    static func node(_ db: Database, level: Int, index: Int64) throws -> Merkle.Hash {
        let data: Data?
        if level == 0 {
            data = try Data.fetchOne(try db.cachedStatement(sql: "SELECT leaf_hash FROM custody WHERE seq = ?"), arguments: [index])
        } else {
            data = try Data.fetchOne(try db.cachedStatement(sql: "SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?"), arguments: [level, index])
        }
        guard let data, data.count == 32 else { throw CustosError.storage(cause: "merkle node (level \(level), index \(index)) is missing") }
        return Array(data)
    }

    static func source(_ db: Database) -> Merkle.NodeSource {
        { level, index in try node(db, level: level, index: index) }
    }
}

/// A stored custody entry as read back.
public struct StoredCustodyEntry: Sendable {
    public let entry: CustodyEntry
    public var seq: Int64 { entry.seq }
}

public struct StoredCheckpoint: Sendable {
    public let id: Int64
    public let size: Int64
    public let root: [UInt8]
    public let note: String
    public let createdAt: String
}

extension Store {
    /// The timeline, optionally only the entries whose subject id is one of `subjects`.
    public func custodyEntries(subjects: [String]? = nil, limit: Int? = nil) throws -> [CustodyEntry] {
        try read { db in
            var sql: SQL = "SELECT * FROM custody"
            if let subjects { sql += " WHERE subject_id IN \(subjects)" }
            sql += " ORDER BY seq"
            if let limit { sql += " LIMIT \(max(0, limit))" }
            return try CustodyEntry.fetchAll(db, SQLRequest<CustodyEntry>(literal: sql))
        }
    }

    public func custodyEntry(seq: Int64) throws -> CustodyEntry {
        try read { db in
            guard let entry = try CustodyEntry.fetchOne(db.cachedStatement(sql: "SELECT * FROM custody WHERE seq = ?"), arguments: [seq]) else {
                throw CustosError.notFound(kind: "custody entry", name: String(seq))
            }
            return entry
        }
    }

    public func custodySize() throws -> Int64 {
        try read { db in try Int64.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM custody")) ?? 0 }
    }

    // MARK: checkpoints and proofs

    /// Signs the current tree head as a C2SP checkpoint, stores it and logs it (compliance, admin).
    @discardableResult
    public func makeCheckpoint(key: Curve25519.Signing.PrivateKey) throws -> StoredCheckpoint {
        try requirePermission(.checkpoint)
        return try signCheckpointNow(key: key)
    }

    /// A checkpoint signed by whoever writes when one is due (`checkpointIfDue`).
    func signCheckpointNow(key: Curve25519.Signing.PrivateKey) throws -> StoredCheckpoint {
        let origin = try organisation().origin
        return try write { db, log in try signCheckpoint(origin: origin, key: key, db: db, log: log) }
    }

    /// Inside a write: signs the tree head over every entry so far, stores the note and logs it
    /// (the log entry comes after the signed size, so it is not covered by this checkpoint).
    func signCheckpoint(origin: String, key: Curve25519.Signing.PrivateKey, db: Database, log: CustodyLog,
                        packet: (id: String, caseID: String, agency: String, number: Int64)? = nil) throws -> StoredCheckpoint {
        // The tree as signed (checked against the signed head), never the stored nodes alone:
        // a checkpoint must not sign over a log changed behind Custos's back.
        let tree = try signedTree(db, log, key: key, origin: origin)
        let size = tree.size, root = tree.root
        let note = try SignedNote.sign(text: Checkpoint(origin: origin, size: size, root: root).text, name: origin, key: key)
        let id = (try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(id) FROM checkpoints")) ?? 0) + 1
        try log.record(.auditCheckpoint(.init(size: size, root: Data(root).base64EncodedString(), packet: packet?.id, caseID: packet?.caseID,
                                              agency: packet?.agency, number: packet?.number)),
                       subjectID: String(id), side: SideFacts(note: note))
        return StoredCheckpoint(id: id, size: size, root: root, note: note, createdAt: log.now)
    }

    public func checkpoints() throws -> [StoredCheckpoint] {
        try read { db in
            try StoredCheckpoint.fetchAll(db.cachedStatement(sql: "SELECT * FROM checkpoints ORDER BY id"))
        }
    }

    public func checkpoint(id: Int64?) throws -> StoredCheckpoint {
        try read { db in
            let checkpoint = try id.map { try StoredCheckpoint.fetchOne(db.cachedStatement(sql: "SELECT * FROM checkpoints WHERE id = ?"), arguments: [$0]) }
                ?? StoredCheckpoint.fetchOne(db.cachedStatement(sql: "SELECT * FROM checkpoints ORDER BY id DESC LIMIT 1"))
            guard let checkpoint else {
                throw id.map { CustosError.notFound(kind: "checkpoint", name: String($0)) } ?? CustosError.notFound(kind: "checkpoint", name: "latest", hint: "no checkpoint yet: run `custos audit checkpoint`")
            }
            return checkpoint
        }
    }

    /// A C2SP tlog-proof for entry `seq` against a stored checkpoint.
    public func inclusionProof(seq: Int64, checkpoint: StoredCheckpoint) throws -> TlogProof {
        try requirePermission(.read)
        guard seq >= 0, seq < checkpoint.size else {
            throw CustosError.invalidInput(field: "entry", reason: "\(seq) is not covered by checkpoint \(checkpoint.id) (size \(checkpoint.size))")
        }
        let path = try read { db in try Merkle.inclusionProof(index: seq, size: checkpoint.size, nodes: MerkleNodes.source(db)) }
        return TlogProof(index: seq, path: path, checkpointNote: checkpoint.note)
    }

    public func consistencyProof(from a: StoredCheckpoint, to b: StoredCheckpoint) throws -> [Merkle.Hash] {
        try requirePermission(.read)
        guard a.size > 0, a.size <= b.size else {
            throw CustosError.invalidInput(field: "checkpoints", reason: "a consistency proof needs 0 < size1 ≤ size2 (checkpoint \(a.id) has \(a.size), \(b.id) has \(b.size))")
        }
        if a.size == b.size { return [] }
        return try read { db in try Merkle.consistencyProof(size1: a.size, size2: b.size, nodes: MerkleNodes.source(db)) }
    }
}
