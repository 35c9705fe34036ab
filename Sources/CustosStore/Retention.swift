import CustosCore
import Foundation
import GRDB
import GRDBSQLite

extension Store {
    /// One conversation whose evidence may go (or went): its flags, its hash and why.
    public struct Erasure: Sendable {
        public let flags: [String]
        public let evidenceHash: String
        public let reason: String
    }

    /// `custos retention run`: the conversations every one of whose flags `RetentionRules`
    /// lets go, erased (unless `dryRun`) in one transaction each: the conversation's evidence
    /// document and its attachments' bytes deleted with SQLite's secure delete, a tombstone with
    /// the evidence hash, an `evidence.purge` entry per flag; then the WAL is checkpointed and
    /// truncated, so the erased bytes are in neither the database file nor its WAL.
    public func retention(dryRun: Bool) throws -> [Erasure] {
        let now = clock()
        let due = try write { db, log -> [(conversation: Int64, Erasure)] in
            try requireRole(db: db, log: log, .erase)
            return try erasable(now: now, db: db)
        }
        guard !dryRun else { return due.map(\.1) }
        if !due.isEmpty {
            try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA secure_delete = ON") }
            for (conversation, erasure) in due {
                try write { db, log in try purge(conversation: conversation, erasure, db: db, log: log) }
            }
        }
        // Every run wipes, so a run after one that could not (a reader held an older snapshot)
        // finishes what it left.
        if let pending = try wipeErased() {
            throw CustosError.storage(cause: "\(due.count) conversation\(due.count == 1 ? "" : "s") erased now; erased evidence is not yet wiped from the store's files: \(pending). Run `custos retention run` again once that reader ends (`serve` retries on its own)")
        }
        return due.map(\.1)
    }

    /// Copies the WAL into the database and truncates it, so erased bytes are in neither file
    /// (the purges deleted them with secure_delete). Nil when done (or nothing was ever erased);
    /// else why not: a reader holding a snapshot older than the erasure keeps the WAL, and the
    /// erased text in it, alive. Waits at most `patience` for readers.
    @discardableResult
    public func wipeErased(patience: Int = 5000) throws -> String? {
        try db.writeWithoutTransaction { db in
            guard try Int.fetchOne(db, sql: "SELECT count(*) FROM tombstones") ?? 0 > 0 else { return nil }
            try db.execute(sql: "PRAGMA busy_timeout = \(patience)")
            defer { try? db.execute(sql: "PRAGMA busy_timeout = \(Store.busySeconds * 1000)") }
            var frames: Int32 = -1, copied: Int32 = -1
            let code = sqlite3_wal_checkpoint_v2(db.sqliteConnection, nil, SQLITE_CHECKPOINT_TRUNCATE, &frames, &copied)
            if code == SQLITE_OK && frames == 0 { return nil }
            return code == SQLITE_BUSY ? "another connection is reading an older snapshot of the store"
                : "the WAL checkpoint stopped (SQLite code \(code), \(copied) of \(frames) frames copied)"
        }
    }

    /// How many conversations retention has erased (tombstones).
    public func erasedCount() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM tombstones") ?? 0 }
    }

    /// The backups the log recorded (`custos backup`) that were made before some evidence was
    /// erased, so still hold it: each with when it was made and how many erased conversations
    /// it holds. Retention cannot reach them; whoever keeps them must replace or destroy them.
    public func backupsHoldingErased() throws -> [(path: String, at: String, conversations: Int)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT json_extract(b.details, '$.destination') AS path, b.at,
                       (SELECT count(DISTINCT p.evidence_hash) FROM custody p WHERE p.action = ? AND p.seq > b.seq) AS erased
                FROM custody b WHERE b.action = ? ORDER BY b.seq
                """, arguments: [CustodyAction.evidencePurge.rawValue, CustodyAction.storeBackup.rawValue])
                .compactMap { r in
                    let n: Int = r["erased"]
                    return n > 0 ? (r["path"] as String? ?? "?", r["at"] as String, n) : nil
                }
        }
    }

    func erasable(now: Int64, db: Database) throws -> [(conversation: Int64, Erasure)] {
        let days = try settings(db).dismissedRetentionDays
        let holdUntil = try flagHoldEnds(db: db, currentCase: try currentCases(db: db))
        var byConversation: [Int64: (hash: String, flags: [String], reasons: [String], keep: Bool)] = [:]
        let rows = try Row.fetchCursor(db, sql: """
            SELECT f.detector, f.flag_id, f.conversation_id, c.evidence_hash, s.status, cf.case_id,
                   (SELECT max(d.at_ms) FROM decisions d WHERE d.flag = f.id AND d.final = 1) AS decided
            FROM flags f JOIN conversations c ON c.id = f.conversation_id JOIN flag_state s ON s.flag = f.id
            LEFT JOIN case_flags cf ON cf.flag = f.id
            WHERE NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.evidence_hash = c.evidence_hash)
            """)
        while let r = try rows.next() {
            let key = FlagKey.make(detector: r["detector"], flagID: r["flag_id"])
            let facts = RetentionRules.FlagFacts(key: key, status: FlagStatus(rawValue: r["status"]) ?? .open, decidedMillis: r["decided"],
                                                 inCase: (r["case_id"] as Int64?) != nil, holdUntilMillis: holdUntil[key])
            let reason = RetentionRules.erasable(facts, now: now, dismissedDays: days)
            let id: Int64 = r["conversation_id"]
            var entry = byConversation[id] ?? (r["evidence_hash"], [], [], false)
            entry.flags.append(key)
            if let reason { entry.reasons.append(reason) } else { entry.keep = true }
            byConversation[id] = entry
        }
        return byConversation.filter { !$0.value.keep }.sorted { $0.key < $1.key }.map { id, c in
            (id, Erasure(flags: c.flags.sorted(), evidenceHash: c.hash, reason: Array(Set(c.reasons)).sorted().joined(separator: "; ")))
        }
    }

    /// Erases one conversation's evidence inside the caller's transaction: the `purging`
    /// tables open the evidence triggers for exactly these rows, and are empty again at commit.
    func purge(conversation id: Int64, _ erasure: Erasure, db: Database, log: CustodyLog) throws {
        // Its attachments that no other (unerased) conversation also holds.
        var shas = Set<String>()
        if let (document, _) = try? evidenceDocument(conversation: id, db: db), let read = try? Evidence.read(document, materialize: false) {
            for placed in read.attachments { shas.insert(placed.attachment.sha256) }
        }
        var erasedBlobs: [String] = []
        for sha in shas.sorted() {
            // A digest is 64 hex digits: found in another document only where it is an attachment's.
            let elsewhere = try Bool.fetchOne(db, sql: "SELECT 1 FROM evidence WHERE conversation_id <> ? AND instr(document, ?) > 0 LIMIT 1",
                                              arguments: [id, sha]) ?? false
            if !elsewhere { erasedBlobs.append(sha) }
        }
        try db.execute(sql: "INSERT INTO purging(conversation_id) VALUES (?)", arguments: [id])
        for sha in erasedBlobs { try db.execute(sql: "INSERT INTO purging_blobs(sha256) VALUES (?)", arguments: [sha]) }
        try db.execute(sql: "DELETE FROM evidence WHERE conversation_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM flag_accounts WHERE flag IN (SELECT id FROM flags WHERE conversation_id = ?)", arguments: [id])
        try db.execute(sql: "DELETE FROM blobs WHERE sha256 IN (SELECT sha256 FROM purging_blobs)")
        // The detector's free text about the conversation goes with it; the entry records the
        // digest of each flag's row as it now is (`audit verify` checks the row against it).
        try db.execute(sql: "UPDATE flags SET signals = NULL, extra = NULL WHERE conversation_id = ?", arguments: [id])
        let columns = StoredTables.flagColumns.joined(separator: ", ")
        var digests: [String: String] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT detector, flag_id, \(columns) FROM flags WHERE conversation_id = ?", arguments: [id]) {
            digests[FlagKey.make(detector: r["detector"], flagID: r["flag_id"])] = StoredTables.flagDigest(Array(r.databaseValues.dropFirst(2)))
        }
        for flag in erasure.flags {
            // The projection keeps the tombstone (the conversation's hash) once.
            try log.record(.evidencePurge(.init(reason: erasure.reason, attachments: erasedBlobs, flagSHA256: digests[flag])),
                           subjectID: flag, evidenceHash: erasure.evidenceHash)
        }
        try db.execute(sql: "DELETE FROM purging")
        try db.execute(sql: "DELETE FROM purging_blobs")
    }

    /// `custos holds --extend`: a hold runs on to `until` (a law-enforcement request).
    public func extendHold(caseName: String, until: Int64, reason: String) throws {
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty, reason.utf8.count <= 1024 else {
            throw CustosError.invalidInput(field: "--reason", reason: "must be 1–1024 characters")
        }
        try write { db, log in
            try requireRole(db: db, log: log, .manageCases)
            let caseRow = try resolveCase(caseName, db: db)
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM referrals WHERE case_id = ?", arguments: [caseRow]) == true else {
                throw CustosError.invalidState(subject: "case \(CaseID.format(caseRow))", state: "not referred", reason: "only a referred case has a hold to extend")
            }
            guard until > log.millis else { throw CustosError.invalidInput(field: "--until", reason: "must be in the future") }
            let seq = try log.record(.holdExtend(.init(until: Timestamp.utcString(millis: until), reason: reason)), subjectID: CaseID.format(caseRow))
            try requestActions(.holdExtended, try actionSubject(caseRow: caseRow, db: db), cause: seq, db: db, log: log)
        }
    }
}
