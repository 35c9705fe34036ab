import CustosCore
import CustosResources
import Crypto
import Foundation
import GRDB
import Synchronization

/// Numbered SQL files from `migrations/`, compiled into the binary, applied in order and
/// recorded in `schema_migrations` with their SHA-256.
enum Migrations {
    struct Migration {
        let version: Int
        let name: String
        let sql: String
    }

    static let all: [Migration] = EmbeddedResources.names(in: "migrations").compactMap { name in
        let file = String(name.dropFirst("migrations/".count))
        guard file.hasSuffix(".sql"), let version = Int(file.prefix(while: \.isNumber)),
              let sql = EmbeddedResources.text(name) else { return nil }
        return Migration(version: version, name: file, sql: sql)
    }.sorted { $0.version < $1.version }

    static var latest: Int { all.last?.version ?? 0 }

    /// The table that lists the applied migrations (created before the first).
    static let ledger = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)
        """

    /// What `sqlite_master` holds once `versions` are applied, and nothing else: each table,
    /// index, view and trigger by type and name, with its SQL. `audit verify` compares a
    /// store's schema with it, so a trigger, view or index added or dropped behind Custos's
    /// back (one that hides inserts, or lifts append-only) is named.
    static func schema(versions: Set<Int>) throws -> [String: String] {
        let key = versions.sorted().map(String.init).joined(separator: ",")
        if let cached = schemaCache.withLock({ $0[key] }) { return cached }
        let scratch = try DatabaseQueue()
        let schema = try scratch.writeWithoutTransaction { db -> [String: String] in
            try db.execute(sql: ledger)
            for m in all where versions.contains(m.version) { try db.execute(sql: m.sql) }
            return try Migrations.schema(db)
        }
        schemaCache.withLock { $0[key] = schema }
        return schema
    }

    /// A database's schema as `schema(versions:)` gives it (SQLite's statistics tables aside).
    static func schema(_ db: Database) throws -> [String: String] {
        var schema: [String: String] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%'") {
            schema["\(r["type"] as String) \(r["name"] as String)"] = "\(r["tbl_name"] as String? ?? ""): \(r["sql"] as String? ?? "")"
        }
        return schema
    }

    private static let schemaCache = Mutex<[String: [String: String]]>([:])

    /// The applied migrations (or only `versions`) as a custody entry records them:
    /// `{"<version>": [name, sha256, applied_at]}`.
    static func applied(_ db: Database, versions: Set<Int>? = nil) throws -> JSONValue {
        var applied: [String: JSONValue] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT version, name, sha256, applied_at FROM schema_migrations") {
            let version: Int = r["version"]
            if let versions, !versions.contains(version) { continue }
            applied[String(version)] = .array([.string(r["name"]), .string(r["sha256"]), .string(r["applied_at"])])
        }
        return .object(applied)
    }

    /// The schema versions the log's store.init and store.migrate entries record as applied.
    static func logged(_ db: Database) throws -> Set<Int> {
        guard try db.tableExists("custody") else { return [] }
        var versions = Set<Int>()
        for details in try String.fetchAll(db, sql: "SELECT details FROM custody WHERE subject_type = ? AND action IN (?, ?)",
                                           arguments: [SubjectType.store.rawValue, CustodyAction.storeInit.rawValue, CustodyAction.storeMigrate.rawValue]) {
            guard case .object(let d)? = try? JSONValue.parse(Array(details.utf8)) else { continue }
            for key in ["schema", "migrations"] { versions.formUnion(d[key]?.objectValue?.keys.compactMap { Int($0) } ?? []) }
        }
        return versions
    }

    /// The version from which every custody entry carries the full facts of its change.
    static let fullFacts = 6

    /// Checks the applied migrations against this binary's; returns how many are applied.
    static func check(_ applied: [Row]) throws -> Int {
        var count = 0
        for row in applied {
            let version: Int = row["version"]
            guard let m = all.first(where: { $0.version == version }) else {
                if version > latest {
                    throw CustosError.invalidState(subject: "the store", state: "newer", reason: "its schema_migrations lists migration \(version), newer than this custos understands (\(latest)); use a newer custos (if none wrote this store, the row was added behind the log's back). Nothing was changed.")
                }
                throw CustosError.invalidState(subject: "the store", state: "unknown", reason: "it has a migration \(version) this custos does not know")
            }
            if SHA256Hex.of(m.sql) != (row["sha256"] as String) {
                throw CustosError.invalidState(subject: "migration \(m.name)", state: "edited", reason: "it differs from the one applied to this store; migrations are never edited once shipped")
            }
            count += 1
        }
        return count
    }

}

extension Store {
    /// Checks the applied migrations against this binary's without writing; true when the
    /// store is up to date. A read-only open of an older store is refused (it needs a write).
    @discardableResult
    func checkMigrations(requireCurrent: Bool = false) throws -> Bool {
        let upToDate: Bool = try read { db in
            guard try db.tableExists("schema_migrations") else { return false }
            let applied = try Row.fetchAll(db, sql: "SELECT version, name, sha256 FROM schema_migrations")
            return try Migrations.check(applied) == Migrations.all.count
        }
        if !upToDate && requireCurrent {
            throw CustosError.invalidState(subject: "the store", state: "older than this custos",
                                           reason: "a command that writes (any but the read-only ones) upgrades it")
        }
        return upToDate
    }

    /// Applies the migrations this binary carries that the store lacks. A store from a newer
    /// Custos, or one whose applied migrations differ from this binary's, is refused before
    /// anything is written; an up-to-date store is only read.
    func migrate() throws {
        if try checkMigrations() { return }
        // An existing log's upgrade is an entry, and every entry is signed.
        let hasEntries = try read { db in try db.tableExists("custody") && (try Int64.fetchOne(db, sql: "SELECT count(*) FROM custody") ?? 0) > 0 }
        let key = hasEntries ? try signingKeyForWrites() : nil
        try db.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                try db.execute(sql: Migrations.ledger)
                let applied = try Row.fetchAll(db, sql: "SELECT version, name, sha256 FROM schema_migrations")
                _ = try Migrations.check(applied)
                let done = Set(applied.map { $0["version"] as Int })
                // A migration the log records as applied is never applied again: its row was deleted.
                if let missing = try Migrations.logged(db).subtracting(done).min() {
                    throw CustosError.invalidState(subject: "the store", state: "edited",
                                                   reason: "schema_migrations lacks migration \(missing), which the custody log records as applied: deleted behind the log's back. Nothing was changed.")
                }
                let log = CustodyLog(db: db, actor: actor, millis: clock())
                var now: Set<Int> = []
                for m in Migrations.all where !done.contains(m.version) {
                    let sum = SHA256Hex.of(m.sql)
                    try db.execute(sql: m.sql)
                    try afterMigration(m.version, db)
                    try db.execute(sql: "INSERT INTO schema_migrations(version, name, sha256, applied_at) VALUES (?, ?, ?, ?)",
                                   arguments: [m.version, m.name, sum, log.now])
                    now.insert(m.version)
                }
                // An existing store records its upgrade in its log (a new one records its schema in store.init).
                if try Int64.fetchOne(db, sql: "SELECT count(*) FROM custody") ?? 0 > 0 {
                    var details: [String: JSONValue] = ["migrations": try Migrations.applied(db, versions: now)]
                    if now.contains(Migrations.fullFacts) {
                        details.merge(try factsOlderEntriesLack(db), uniquingKeysWith: { a, _ in a })
                    }
                    try log.record(try CustodyEvent(action: .storeMigrate, details: details), subjectID: try String.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'log_origin'") ?? "store")
                }
                if let key { try signHead(db, log, key: key, firstHead: !done.contains(11)) }
                return .commit
            }
        }
    }

    /// Data steps that SQL cannot do. Version 2 builds the Merkle nodes over the custody
    /// entries that already exist, from their stored leaf hashes: no entry is rewritten.
    /// Version 9 writes each conversation's evidence document from its schema-8 rows. Version 14
    /// indexes the accounts the documents name.
    private func afterMigration(_ version: Int, _ db: Database) throws {
        if version == 9 { try Schema8Evidence.convert(db) }
        if version == 2 { try Store.buildMerkleNodes(db) }
        if version == 14 { try AccountIndex.fill(db) }
    }

    /// Once, when a store reaches schema 6: what older entries did not record, re-derived from
    /// the rows. The snapshot of the tables whose facts older entries lack (cases, their
    /// accounts, flags and routes, referrals, receipts, packet ids, the store's metadata and
    /// schema); the decisions whose millisecond time was read from a second clock; a digest over
    /// the flags ingested so far (their entries carry no per-flag digest); the flag keys two
    /// flags share; and how many problems the
    /// entries so far replay with (older custos enforced older rules), so that number cannot
    /// change later unnoticed.
    private func factsOlderEntriesLack(_ db: Database) throws -> [String: JSONValue] {
        func rows(_ table: String) throws -> JSONValue {
            .object(try StoredTables.read(table, db).mapValues { .array($0.map { $0.map(JSONValue.string) ?? .null }) })
        }
        var tables: [String: JSONValue] = [:]
        for table in StoredTables.snapshotTables { tables[table] = try rows(table) }
        var atMs: [String: JSONValue] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT id, at, at_ms FROM decisions") where Timestamp.parse(r["at"])?.epochMillis != r["at_ms"] {
            atMs[String(r["id"] as Int64)] = .integer(r["at_ms"])
        }
        var digest = SHA256()
        let columns = StoredTables.flagColumns.joined(separator: ", ")
        let flags = try Row.fetchCursor(db, sql: "SELECT id, \(columns) FROM flags ORDER BY id")
        var maxID: Int64 = 0
        while let f = try flags.next() {
            maxID = f["id"]
            digest.update(data: Data(StoredTables.flagDigest(Array(f.databaseValues.dropFirst())).utf8))
        }
        // Keys two flags share (a detector name with ':' before schema 6; any such pair has a ':'
        // in each): named here, refused when used (Store.ambiguous).
        let ambiguous = try String.fetchAll(db, sql: """
            SELECT k FROM (SELECT detector || ':' || flag_id AS k FROM flags WHERE instr(detector || flag_id, ':') > 0)
            GROUP BY k HAVING count(*) > 1 ORDER BY k
            """)
        let replay = try LogReplay.run(source: db)
        return ["tables": .object(tables), "decisions_at_ms": .object(atMs), "flags_before": .integer(maxID),
                "flags_sha256": .string(Hex.encode(Array(digest.finalize()))), "ambiguous_flag_keys": .array(ambiguous.map { .string($0) }),
                "replay_problems": .integer(Int64(replay.problems.count)),
                "first_problems": .array(replay.problems.prefix(20).map { .string($0) })]
    }
}
