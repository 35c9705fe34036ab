import CustosCore
import Foundation
import GRDB
import GRDBSQLite

/// A store's custody log replayed through the one projection into another database: what
/// `audit verify` compares the workflow tables with, and what `audit rebuild` writes out.
enum LogReplay {
    /// The evidence tables: copied as they are (their rows are checked against the ingest entries
    /// and the evidence hashes, not derived from the log).
    static let evidenceTables = ["conversations", "participants", "messages", "evidence", "blobs", "flags"]

    /// A new database with the schema of `versions` and no triggers yet: a replay may restore a
    /// legacy snapshot over append-only tables. Returns the triggers' SQL, to put back.
    static func prepare(_ db: Database, versions: Set<Int>) throws -> [String] {
        try db.execute(sql: Migrations.ledger)
        for m in Migrations.all where versions.contains(m.version) { try db.execute(sql: m.sql) }
        let triggers = try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
        for t in triggers { try db.execute(sql: "DROP TRIGGER \(quotedIdentifier(t["name"]))") }
        return triggers.map { $0["sql"] }
    }

    /// The projection of `source`'s whole log into a scratch database (in memory), for the
    /// counts a migration records.
    static func run(source: Database) throws -> Projection {
        let scratch = try DatabaseQueue()
        return try scratch.writeWithoutTransaction { target in
            try target.execute(sql: "PRAGMA foreign_keys = OFF")
            _ = try prepare(target, versions: Set(Migrations.all.map(\.version)))
            try copy(["flags"], from: source, to: target)
            return try replay(source: source, into: target)
        }
    }

    /// Copies tables row for row (those both sides have, the columns as the source has them),
    /// value by value through SQLite's C interface: a million flags need no boxed row each.
    static func copy(_ tables: [String], from source: Database, to target: Database) throws {
        for table in tables where try source.tableExists(table) && target.tableExists(table) {
            let names = try Row.fetchAll(source, sql: "PRAGMA table_info(\(quotedIdentifier(table)))").map { quotedIdentifier($0["name"]) }
            let list = names.joined(separator: ", ")
            // The statements own their SQLite handles: they live until the copy is done.
            let reader = try source.makeStatement(sql: "SELECT \(list) FROM \(quotedIdentifier(table))")
            let writer = try target.makeStatement(sql: "INSERT INTO \(quotedIdentifier(table))(\(list)) VALUES (\(names.map { _ in "?" }.joined(separator: ", ")))")
            try withExtendedLifetime((reader, writer)) {
                let read = reader.sqliteStatement, write = writer.sqliteStatement
                sqlite3_reset(read)
                defer { sqlite3_reset(read) }
                var code = sqlite3_step(read)
                while code == SQLITE_ROW {
                    for i in 0..<Int32(names.count) { sqlite3_bind_value(write, i + 1, sqlite3_column_value(read, i)) }
                    let written = sqlite3_step(write)
                    sqlite3_reset(write)
                    guard written == SQLITE_DONE else { throw DatabaseError(resultCode: ResultCode(rawValue: written), message: "copying \(table)") }
                    code = sqlite3_step(read)
                }
                guard code == SQLITE_DONE else { throw DatabaseError(resultCode: ResultCode(rawValue: code), message: "reading \(table)") }
            }
        }
    }

    /// Applies every entry of `source`'s log, in order, to `target` (which holds the flags).
    /// What an entry lacks (a secret, a checkpoint's signed note) is taken from `source` where it
    /// matches the entry.
    static func replay(source: Database, into target: Database) throws -> Projection {
        var projection = Projection(replaying: true)
        let hasCredentials = try source.tableExists("credentials")
        let entries = try CustodyEntry.fetchCursor(source, sql: "SELECT * FROM custody ORDER BY seq")
        while let e = try entries.next() {
            var side = SideFacts()
            switch e.action {
            case CustodyAction.userPassword.rawValue where hasCredentials:
                side.secret = try String.fetchOne(source, sql: "SELECT password_hash FROM credentials WHERE user = ?", arguments: [e.subjectID])
            case CustodyAction.userTOTP.rawValue where hasCredentials:
                side.secret = try String.fetchOne(source, sql: "SELECT totp_secret FROM credentials WHERE user = ?", arguments: [e.subjectID])
            case CustodyAction.auditCheckpoint.rawValue:
                side.note = try String.fetchOne(source, sql: "SELECT note FROM checkpoints WHERE id = ?", arguments: [Int64(e.subjectID)])
            case CustodyAction.actionAdd.rawValue, CustodyAction.actionSet.rawValue:
                if try source.tableExists("action_endpoints") {
                    if let r = try Row.fetchOne(source, sql: "SELECT secret, previous_secret FROM action_endpoints WHERE name = ?", arguments: [e.subjectID]) {
                        side.secretCandidates = [r["secret"], r["previous_secret"]].compactMap { $0 }
                    }
                }
            case CustodyAction.hashlistImport.rawValue:
                side.hashEntries = try HashLists.entries(of: e.subjectID, source)
            default: break
            }
            try projection.apply(e, side: side, db: target)
        }
        return projection
    }
}

/// The entries of the hash lists as stored: what a hashlist.import entry's digest binds, and
/// what `audit verify` compares list by list (a million entries are compared by digest, not row by row).
enum HashLists {
    static func entries(of list: String, _ db: Database) throws -> [HashListEntry] {
        guard try db.tableExists("hash_entries") else { return [] }
        return try Row.fetchAll(db, sql: "SELECT kind, hash, label FROM hash_entries WHERE list = ? ORDER BY kind, hash", arguments: [list]).map(entry)
    }

    /// A stored row as an entry. The kind column is CHECK-constrained; a row that still held
    /// another word would count as sha256 and so change its list's digest, never vanish from it.
    static func entry(_ r: Row) -> HashListEntry {
        HashListEntry(kind: HashKind(rawValue: r["kind"]) ?? .sha256, hash: r["hash"], label: r["label"])
    }

    /// Each list's entry count and digest, streamed.
    static func digests(_ db: Database) throws -> [String: (count: Int, digest: String)] {
        guard try db.tableExists("hash_entries") else { return [:] }
        var out: [String: (count: Int, digest: String)] = [:]
        var current: String?, batch: [HashListEntry] = []
        func flush() { if let c = current { out[c] = (batch.count, HashListFile.digest(batch)) }; batch.removeAll(keepingCapacity: true) }
        let cursor = try Row.fetchCursor(db, sql: "SELECT list, kind, hash, label FROM hash_entries ORDER BY list, kind, hash")
        while let r = try cursor.next() {
            let list: String = r["list"]
            if list != current { flush(); current = list }
            batch.append(entry(r))
        }
        flush()
        return out
    }
}

private func quotedIdentifier(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

/// What `custos audit rebuild` wrote.
public struct RebuildReport: Sendable {
    public let path: String
    public let entries: Int64
    public let flags: Int
    public let verify: VerifyReport
}

extension Store {
    /// `custos audit rebuild --out NEW`: a new store from this one's custody log and evidence
    /// alone. The log, its signed head, and the evidence are copied; the Merkle tree is
    /// recomputed from the leaves; every workflow table is the projection of the log, with the
    /// secrets and signed checkpoint notes taken from this store only where they match what
    /// the log recorded. The new store is verified; one that does not verify is removed.
    public func rebuild(to dest: String) throws -> RebuildReport {
        try requirePermission(.backup)
        try InputPath.requireRegularFile(dest, role: "--out", mayBeMissing: true)
        guard !FileManager.default.fileExists(atPath: dest) else { throw CustosError.conflict(subject: dest, reason: "already exists; refusing to overwrite it") }
        let created = Glibc.open(dest, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard created >= 0 else { throw CustosError.storage(cause: "cannot create \(dest): \(String(cString: strerror(errno)))") }
        close(created)
        var entries: Int64 = 0, flags = 0
        do {
            let target = try DatabaseQueue(path: dest, configuration: Store.configuration())
            try read { source in
                let versions = Set(try Int.fetchAll(source, sql: "SELECT version FROM schema_migrations"))
                try target.writeWithoutTransaction { db in
                    try db.execute(sql: "PRAGMA foreign_keys = OFF")
                    try db.inTransaction {
                        let triggers = try LogReplay.prepare(db, versions: versions)
                        try LogReplay.copy(LogReplay.evidenceTables + ["custody", "signed_head"], from: source, to: db)
                        try Store.buildMerkleNodes(db)
                        try AccountIndex.fill(db)
                        let projection = try LogReplay.replay(source: source, into: db)
                        if let problem = projection.problems.first {
                            throw CustosError.invalidState(subject: "the custody log", state: "not replayable", reason: problem)
                        }
                        if let user = try Projection.usersMissingTheirSecret(db).first {
                            throw CustosError.invalidState(subject: "user \(quoted(user))'s password or one-time-code secret", state: "not the one the log recorded",
                                                           reason: "the store's secret does not hash to the SHA-256 its custody entry holds (changed behind the log's back); set it again (custos user set-password \(user), or user totp) and rebuild. Nothing was written")
                        }
                        for sql in triggers { try db.execute(sql: sql) }
                        entries = try Int64.fetchOne(db, sql: "SELECT count(*) FROM custody") ?? 0
                        flags = try Int.fetchOne(db, sql: "SELECT count(*) FROM flags") ?? 0
                        return .commit
                    }
                    try db.execute(sql: "PRAGMA foreign_keys = ON")
                }
            }
            try target.close()
            let report = try Store.open(path: dest, actor: actor, access: .verify).verify()
            guard report.ok else {
                throw CustosError.storage(cause: "the rebuilt store does not verify (\(report.problems.first ?? "?"))")
            }
            return RebuildReport(path: dest, entries: entries, flags: flags, verify: report)
        } catch {
            Store.removeStoreFiles(dest)
            throw error
        }
    }

    /// The Merkle tree's stored nodes, computed from the stored leaves (as migration 2 did).
    static func buildMerkleNodes(_ db: Database) throws {
        var builder = Merkle.FrontierBuilder()
        let cursor = try Data.fetchCursor(db, sql: "SELECT leaf_hash FROM custody ORDER BY seq")
        let insert = try db.makeStatement(sql: "INSERT INTO merkle_nodes(level, idx, hash) VALUES (?, ?, ?)")
        while let leaf = try cursor.next() {
            for node in builder.append(Array(leaf)) { try insert.execute(arguments: [node.level, node.index, Data(node.hash)]) }
        }
    }
}
