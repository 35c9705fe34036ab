import CustosCore
import Crypto
import Foundation
import GRDB

/// The signing key the writes of one open store sign the log's head with: read from its file
/// at the first write (a command that only reads never needs it), then kept.
final class HeadKey: @unchecked Sendable {
    /// The key file given (`--key`, `$CUSTOS_KEY`); nil: the file `init` wrote.
    let path: String?
    private var key: Curve25519.Signing.PrivateKey?
    private let lock = NSLock()
    /// The last head this process signed, with the tree's frontier at it: while the stored head
    /// is still that note, the next write extends the frontier in memory instead of checking
    /// the stored head's signature and re-reading the tree (a head another process signed, or a
    /// transaction that rolled back, takes the full check).
    private var last: (note: String, frontier: Merkle.FrontierBuilder)?

    var lastSigned: (note: String, frontier: Merkle.FrontierBuilder)? {
        get { lock.withLock { last } }
        set { lock.withLock { last = newValue } }
    }

    init(path: String?, key: Curve25519.Signing.PrivateKey? = nil) {
        self.path = path
        self.key = key
    }

    func get(load: (String?) throws -> Curve25519.Signing.PrivateKey) throws -> Curve25519.Signing.PrivateKey {
        try lock.withLock {
            if let key { return key }
            let loaded = try load(path)
            key = loaded
            return loaded
        }
    }
}

extension Store {
    /// The key this process signs every write's tree head with. A process that cannot read it
    /// writes nothing: an entry no signature covers could be rewritten, with its Merkle nodes
    /// re-hashed, by anyone who can write the file.
    func signingKeyForWrites() throws -> Curve25519.Signing.PrivateKey {
        try headKey.get { path in
            do {
                return try signingKey(path: path)
            } catch let e as CustosError {
                throw CustosError.storage(cause: "this process cannot use the store's signing key (\(e.description)); every write signs the custody log's head with it, so nothing was written. Run custos as the account that owns the key, or pass --key PATH or $CUSTOS_KEY")
            }
        }
    }

    /// Inside a write transaction that appended entries: signs the new head over every entry
    /// (`signedTree`) and keeps it, replacing the one before.
    func signHead(_ db: Database, _ log: CustodyLog, key: Curve25519.Signing.PrivateKey, firstHead: Bool = false) throws {
        guard log.sizeBefore != nil else { return }
        let origin = try logOrigin(db)
        let frontier = try signedTree(db, log, key: key, origin: origin, firstHead: firstHead)
        let note = try SignedNote.sign(text: Checkpoint(origin: origin, size: frontier.size, root: frontier.root).text, name: origin, key: key)
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO signed_head(id, size, root, note, signed_at) VALUES (1, ?, ?, ?, ?)").execute(arguments: [frontier.size, Data(frontier.root), note, log.now])
        guard db.changesCount == 1 else {
            throw CustosError.storage(cause: "the log's signed head was not stored (a trigger the migrations do not create dropped it?); nothing was written. Run `custos audit verify`")
        }
        // Kept for the next write only once this one commits (a rollback leaves the stored head
        // unchanged, which then no longer matches, and the next write takes the full check).
        let signed = (note: note, frontier: frontier)
        db.afterNextTransaction { [headKey] _ in headKey.lastSigned = signed }
    }

    func logOrigin(_ db: Database) throws -> String {
        guard let origin = try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM store_meta WHERE key = 'log_origin'")) else {
            throw CustosError.storage(cause: "the store has no log origin; was it made by `custos init`?")
        }
        return origin
    }

    /// The tree a signature may cover in this transaction: the log as the transaction found it,
    /// checked against its signed head, extended by the entries appended so far. The check: the
    /// stored head verifies with the key and covers exactly the log as found, with the root the
    /// stored tree gives; a log changed behind Custos's back is refused here, never signed
    /// over (by a head or a checkpoint). While the stored head is the one this process signed
    /// last, its tree is extended in memory instead (entries rewritten behind the log's back
    /// since are still not signed over: the root comes from the tree that was signed, and
    /// `audit verify` finds the stored entries no longer hash to it). `firstHead`: the
    /// transaction that brings the store to schema 11, where an existing log has no head yet.
    func signedTree(_ db: Database, _ log: CustodyLog, key: Curve25519.Signing.PrivateKey, origin: String,
                    firstHead: Bool = false) throws -> Merkle.FrontierBuilder {
        let before = try log.sizeBefore ?? (Int64.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM custody")) ?? 0)
        var frontier: Merkle.FrontierBuilder
        let head = try Row.fetchOne(db.cachedStatement(sql: "SELECT size, root, note FROM signed_head WHERE id = 1"))
        if let head, let last = headKey.lastSigned, last.note == head["note"], last.frontier.size == before {
            frontier = last.frontier
        } else if let head {
            let size: Int64 = head["size"], root = Array(head["root"] as Data)
            frontier = try Merkle.FrontierBuilder(size: min(size, before), nodes: MerkleNodes.source(db))
            let stored = frontier
            if let problem = SignedHeadCheck.problem(note: head["note"], size: size, root: root, origin: origin, key: key.publicKey,
                                                     logSize: before, treeRoot: { stored.root }) {
                throw CustosError.invalidState(subject: "the custody log", state: "not covered by its signed head",
                                               reason: "\(problem). Nothing was written; run `custos audit verify`")
            }
        } else if before > 0 && !firstHead {
            throw CustosError.invalidState(subject: "the custody log", state: "without a signed head",
                                           reason: "its \(before) entries have no signed head (the row was deleted behind the log's back). Nothing was written; run `custos audit verify`")
        } else {
            frontier = try Merkle.FrontierBuilder(size: before, nodes: MerkleNodes.source(db))
        }
        for leaf in log.appendedLeaves { frontier.append(leaf) }
        return frontier
    }
}

/// What is wrong with a signed head against a log, or nil: one rule for the writer (before it
/// extends the log) and for `audit verify`.
enum SignedHeadCheck {
    static func problem(note: String, size: Int64, root: [UInt8], origin: String, key: Curve25519.Signing.PublicKey,
                        logSize: Int64, treeRoot: () throws -> Merkle.Hash) -> String? {
        guard let text = try? SignedNote.verify(note: note, name: origin, key: key), let signed = try? Checkpoint(text: text),
              signed.origin == origin, signed.size == size, signed.root == root else {
            return "the log's signed head is not a note signed by the store's key for its size and root"
        }
        if size > logSize {
            return "the log's signed head covers \(size) entries but the log has \(logSize): entries were deleted behind the log's back"
        }
        if size < logSize {
            return "the log's signed head covers \(size) entries but the log has \(logSize): entries \(size)–\(logSize - 1) were written without the signing key"
        }
        guard let recomputed = try? treeRoot(), recomputed == root else {
            return "the log's entries no longer hash to its signed head (size \(size)): entries were changed and re-hashed without the signing key"
        }
        return nil
    }
}
