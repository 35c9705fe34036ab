import CustosCore
import CustosMedia
import Foundation
import GRDB

/// What happened to one record offered for ingest.
public enum IngestResult: Equatable, Sendable {
    case ingested(evidenceHash: String)
    case duplicate
    /// Same (detector, flag_id) with different content: rejected, the stored record untouched.
    case conflict(storedRecordHash: String)
}

/// A stored flag as listed by `custos flags`.
public struct FlagSummary: Sendable {
    public let key: String
    public let flagID: String
    public let detector: String
    public let score: Double?
    public let status: FlagStatus
    public let platform: String
    public let messageCount: Int
    public let evidenceHash: String
    public let detectedAt: String
    public let urgent: Bool
}

/// A stored flag with its conversation, for reading and export.
public struct StoredFlag: Sendable {
    public let rowID: Int64
    public let key: String
    public let flagID: String
    public let detector: String
    public let modelVersion: String?
    public let score: Double?
    public let detectedAt: String
    public let detectedMillis: Int64
    public let platform: String
    public let surface: String?
    public let signals: [String]
    public let evidenceHash: String
    public let conversation: Conversation
    public let canonicalConversation: Data
}


/// One record as the writer binds it, computed on the parsing thread: the flags columns, the
/// evidence document as text and the ingest entry's canonical details.
struct IngestRow: Sendable {
    let record: CanonicalFlag
    let blobs: [String: Data]
    /// The flags columns in `StoredTables.flagColumns` order.
    let columns: [DatabaseValue]
    let document: String
    let details: String
    /// `detector:flag_id`.
    let key: String

    init(record: CanonicalFlag, blobs: [String: Data], source: String) {
        self.record = record
        self.blobs = blobs
        key = record.key
        // The header itself, not `record.x`: a key path resolved at run time per member, on
        // the parsing threads' path.
        let h = record.header
        let signals: String? = h.signals.isEmpty ? nil : JSONValue.array(h.signals.map { .string($0) }).canonicalString
        columns = [h.modelVersion.databaseValue, h.score.databaseValue, h.detectedAt.text.databaseValue,
                   h.detectedAt.epochMillis.databaseValue, h.platform.databaseValue, h.surface.databaseValue,
                   signals.databaseValue, Store.json(h.extra).databaseValue]
        document = String(decoding: record.evidence, as: UTF8.self)
        details = JSONValue.object([
            ("detector", .string(h.detector)), ("flag_id", .string(h.flagID)),
            ("model_version", h.modelVersion.map { .string($0) }),
            ("record_sha256", .string(record.recordHash)), ("flag_sha256", .string(StoredTables.flagDigest(columns))),
            ("source", .string(source)),
            ("platform", .string(h.platform)), ("conversation_id", .string(h.conversationID)),
            ("messages", .integer(Int64(record.messageCount))),
            ("attachments", blobs.isEmpty ? nil : .array(blobs.keys.sorted().map { .string($0) })),
        ]).canonicalString
    }
}

extension Store {
    /// Stores one validated record (with the attachment bytes the caller read and checked)
    /// inside the caller's transaction, appending its custody entry. Bound through SQLite's C
    /// interface: this runs once per ingested record on the one writer thread.
    func insert(_ row: IngestRow, db: Database, log: CustodyLog) throws -> IngestResult {
        let record = row.record
        var stored = try DirectStatement(db, "SELECT record_hash FROM flags WHERE detector = ? AND flag_id = ?")
        stored.bind(record.header.detector); stored.bind(record.header.flagID)
        if let existing = try stored.text() {
            return existing == record.recordHash ? .duplicate : .conflict(storedRecordHash: existing)
        }
        let evidenceHash = record.evidenceHash
        var known = try DirectStatement(db, "SELECT id FROM conversations WHERE evidence_hash = ?")
        known.bind(evidenceHash)
        let conversationID: Int64
        if let id = try known.int64() {
            conversationID = id
        } else {
            var conversation = try DirectStatement(db, """
                INSERT INTO conversations(platform, external_id, evidence_hash, message_count, first_ms, last_ms) VALUES (?, ?, ?, ?, ?, ?)
                """)
            conversation.bind(record.header.platform); conversation.bind(record.header.conversationID); conversation.bind(evidenceHash)
            conversation.bind(record.messageCount); conversation.bind(record.firstMillis); conversation.bind(record.lastMillis)
            try conversation.run()
            conversationID = db.lastInsertedRowID
            var evidence = try DirectStatement(db, "INSERT INTO evidence(conversation_id, document) VALUES (?, ?)")
            evidence.bind(conversationID); evidence.bind(row.document)
            try evidence.run()
        }
        for (sha, bytes) in row.blobs {
            var blob = try DirectStatement(db, "INSERT OR IGNORE INTO blobs(sha256, size, bytes) VALUES (?, ?, ?)")
            blob.bind(sha); blob.bind(bytes.count); blob.bind(bytes)
            try blob.run()
        }
        var flag = try DirectStatement(db, """
            INSERT INTO flags(detector, flag_id, model_version, score, detected_at, detected_ms, platform, surface, signals,
                extra, conversation_id, record_hash, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        flag.bind(record.header.detector); flag.bind(record.header.flagID)
        for column in row.columns { flag.bind(column) }
        flag.bind(conversationID); flag.bind(record.recordHash); flag.bind(log.now)
        try flag.run()
        let flagRow = db.lastInsertedRowID
        // The accounts it names, for account history (AccountIndex).
        for p in record.participants {
            var account = try DirectStatement(db, "INSERT OR IGNORE INTO flag_accounts(platform, user_id, flag, role_hint) VALUES (?, ?, ?, ?)")
            account.bind(record.header.platform); account.bind(p.userID); account.bind(flagRow); account.bind(p.roleHint?.rawValue)
            try account.run()
        }
        try log.record(.flagIngest(.init([:])), subjectID: row.key, canonicalDetails: row.details, evidenceHash: evidenceHash,
                       side: SideFacts(flagRow: flagRow))
        try matchAtIngest(row, flagRow: flagRow, db: db, log: log)
        return .ingested(evidenceHash: evidenceHash)
    }

    static func json(_ members: [String: JSONValue]) -> String? {
        members.isEmpty ? nil : JSONValue.object(members).canonicalString
    }

    // MARK: reading

    /// Resolves a flag named as `detector:flag_id` or as a bare flag_id that is unique.
    public func resolveFlag(_ name: String, db: Database) throws -> (rowID: Int64, key: String) {
        let keyed = try Store.flagRows(key: name, db: db)
        if keyed.count > 1 { throw Store.ambiguous(name) }
        if let row = keyed.first { return (row, name) }
        let rows = try Row.fetchAll(db, sql: "SELECT id, detector, flag_id FROM flags WHERE flag_id = ? LIMIT 5", arguments: [name])
        if rows.count == 1 { return (rows[0]["id"], FlagKey.make(detector: rows[0]["detector"], flagID: rows[0]["flag_id"])) }
        if rows.isEmpty { throw CustosError.notFound(kind: "flag", name: name) }
        let keys = rows.map { FlagKey.make(detector: $0["detector"], flagID: $0["flag_id"]) }
        throw CustosError.invalidInput(field: "FLAG", reason: "flag id \(quoted(name)) is used by several detectors; name one of: \(keys.map(quoted).joined(separator: ", "))")
    }

    /// The flags whose key `detector:flag_id` is `key`, by the unique index: one per place the
    /// key could split. Since schema 6 a detector cannot contain `:`, so there is at most one;
    /// an older store may hold two flags with one key (`a` + `b:c`, `a:b` + `c`).
    static func flagRows(key: String, db: Database) throws -> [Int64] {
        var rows: [Int64] = []
        var i = key.startIndex
        while let colon = key[i...].firstIndex(of: ":") {
            var find = try DirectStatement(db, "SELECT id FROM flags WHERE detector = ? AND flag_id = ?")
            find.bind(String(key[..<colon])); find.bind(String(key[key.index(after: colon)...]))
            if let id = try find.int64() { rows.append(id) }
            i = key.index(after: colon)
        }
        return rows
    }

    static func ambiguous(_ key: String) -> CustosError {
        .conflict(subject: "flag key \(quoted(key))", reason: "two flags stored by an older custos share it (a detector name with ':'); their custody entries cannot be told apart, so custos will not act on either by this key")
    }

    public func flags(limit: Int? = nil) throws -> [FlagSummary] {
        try requirePermission(.read)
        return try read { db in
            var sql = """
                SELECT f.detector, f.flag_id, f.score, f.platform, f.detected_at, c.message_count, c.evidence_hash,
                       coalesce(s.status, ?) AS status, coalesce(s.urgent, 0) AS urgent
                FROM flags f JOIN conversations c ON c.id = f.conversation_id
                LEFT JOIN flag_state s ON s.flag = f.id
                ORDER BY f.id
                """
            var arguments: StatementArguments = [FlagStatus.open.rawValue]
            if let limit { sql += " LIMIT ?"; arguments += [max(0, limit)] }
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { r in
                try FlagSummary(key: FlagKey.make(detector: r["detector"], flagID: r["flag_id"]), flagID: r["flag_id"],
                            detector: r["detector"], score: r["score"], status: storedWord(r["status"], "flag_state.status"), platform: r["platform"],
                            messageCount: r["message_count"], evidenceHash: r["evidence_hash"], detectedAt: r["detected_at"],
                            urgent: (r["urgent"] as Int64) != 0)
            }
        }
    }

    /// Reads a flag's evidence and logs the read (who saw evidence is part of the chain of
    /// custody), in one transaction.
    public func readFlag(_ name: String, purpose: String) throws -> StoredFlag {
        try write { db, log in
            let (rowID, key) = try resolveFlag(name, db: db)
            try requireReader(db: db, log: log)
            let flag = try loadFlag(rowID: rowID, db: db)
            try log.record(.evidenceView(.init(purpose: purpose)), subjectID: key, evidenceHash: flag.evidenceHash)
            return flag
        }
    }

    func loadFlag(rowID: Int64, db: Database) throws -> StoredFlag {
        guard let f = try Row.fetchOne(db, sql: "SELECT * FROM flags WHERE id = ?", arguments: [rowID]) else {
            throw CustosError.storage(cause: "no flag with row id \(rowID)")
        }
        let conversationID: Int64 = f["conversation_id"]
        if let t = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT t.evidence_hash, t.purged_at, t.reason FROM tombstones t JOIN conversations c ON c.evidence_hash = t.evidence_hash WHERE c.id = ?
            """), arguments: [conversationID]) {
            throw CustosError.invalidState(subject: "flag \(quoted(FlagKey.make(detector: f["detector"], flagID: f["flag_id"])))", state: "erased",
                                           reason: "its evidence was erased on \(t["purged_at"] as String) (\(t["reason"] as String)); its evidence hash \(t["evidence_hash"] as String) and custody remain")
        }
        let (document, hash) = try evidenceDocument(conversation: conversationID, db: db)
        let conversation: Conversation
        do { conversation = try Evidence.read(document).conversation } catch {
            throw CustosError.storage(cause: "the stored evidence of conversation row \(conversationID) does not read back (\(error)): changed behind the log's back; run `custos audit verify`")
        }
        let signals = try (f["signals"] as String?).map { try JSONValue.parse(Data($0.utf8)).arrayValue?.compactMap(\.stringValue) ?? [] } ?? []
        return StoredFlag(rowID: rowID, key: FlagKey.make(detector: f["detector"], flagID: f["flag_id"]),
                          flagID: f["flag_id"], detector: f["detector"], modelVersion: f["model_version"], score: f["score"],
                          detectedAt: f["detected_at"], detectedMillis: f["detected_ms"], platform: f["platform"],
                          surface: f["surface"], signals: signals, evidenceHash: hash, conversation: conversation,
                          canonicalConversation: Data(document))
    }

    /// A conversation's stored evidence document (its canonical bytes) and the evidence hash
    /// it was stored under.
    func evidenceDocument(conversation id: Int64, db: Database) throws -> ([UInt8], String) {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT c.evidence_hash, e.document FROM conversations c LEFT JOIN evidence e ON e.conversation_id = c.id WHERE c.id = ?
            """), arguments: [id]) else {
            throw CustosError.storage(cause: "conversation \(id) is missing")
        }
        guard let document = Store.documentBytes(row["document"]) else {
            throw CustosError.storage(cause: "the evidence document of conversation row \(id) is missing: deleted behind the log's back; run `custos audit verify`")
        }
        return (document, StoredTables.text(row["evidence_hash"]) ?? "")
    }

    /// An attachment's bytes, unlogged: for Custos's own checks only (a person's read goes
    /// through `readAttachment`, which logs it).
    func blob(sha256: String) throws -> Data? {
        try read { db in try Store.blobBytes(sha256, db: db) }
    }

    /// An attachment's stored bytes, inside the caller's transaction (nil: not stored).
    static func blobBytes(_ sha256: String, db: Database) throws -> Data? {
        try Data.fetchOne(db.cachedStatement(sql: "SELECT bytes FROM blobs WHERE sha256 = ?"), arguments: [sha256])
    }

    /// The hashes of a flag's stored attachments, inside a logged read of the flag.
    func attachmentHashes(_ flag: StoredFlag, db: Database) throws -> [String: MediaHashes] {
        var out: [String: MediaHashes] = [:]
        for a in flag.conversation.messages.flatMap(\.attachments) where out[a.sha256] == nil {
            guard let bytes = try Store.blobBytes(a.sha256, db: db) else { continue }
            out[a.sha256] = Media.hashes(of: bytes, mediaType: a.mediaType)
        }
        return out
    }
}

extension Store {
    /// One attachment's bytes as part of reading `flag` (the console shows it blurred, or
    /// revealed): refused unless the flag's conversation carries it; logged as an evidence view
    /// with `purpose` in the same transaction.
    /// An attachment that matched a hash list is known material: its bytes go only to a person
    /// allowed to reveal it (a lead), and only unblurred, as a logged reveal; no one is shown it
    /// blurred in passing.
    public func readAttachment(flag name: String, sha256: String, purpose: String) throws -> (bytes: Data, mediaType: String?) {
        try write { db, log in
            let (rowID, key) = try resolveFlag(name, db: db)
            let me = try requireRole(db: db, log: log, .read)
            if try db.tableExists("matches"), try Bool.fetchOne(db, sql: "SELECT 1 FROM matches WHERE attachment = ? LIMIT 1", arguments: [sha256]) == true {
                try Permission.revealKnownMaterial.require(me)
                guard AttachmentViews.unblurredPurposes.contains(purpose) else {
                    throw CustosError.invalidInput(field: "attachment \(sha256.prefix(16))…", reason: "it matches a hash list of known material: it is shown only when a lead reveals it")
                }
            }
            let flag = try loadFlag(rowID: rowID, db: db)
            guard let attachment = flag.conversation.messages.lazy.flatMap(\.attachments).first(where: { $0.sha256 == sha256 }) else {
                throw CustosError.notFound(kind: "attachment", name: sha256, hint: "flag \(quoted(key)) carries no such attachment")
            }
            guard let bytes = try Store.blobBytes(sha256, db: db) else {
                throw CustosError.notFound(kind: "attachment", name: sha256, hint: "its bytes were not stored")
            }
            try log.record(.evidenceView(.init(purpose: purpose, attachment: sha256)), subjectID: key, evidenceHash: flag.evidenceHash)
            return (bytes, attachment.mediaType)
        }
    }
}
