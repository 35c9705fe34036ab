import CustosCore
import CustosResources
import Foundation
import GRDB

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

    /// Checks the applied migrations against this binary's; returns how many are applied.
    static func check(_ applied: [Row]) throws -> Int {
        var count = 0
        for row in applied {
            let version: Int = row["version"]
            guard let m = all.first(where: { $0.version == version }) else {
                if version > latest {
                    throw CustosError.invalidState(subject: "the store", state: "newer", reason: "it has schema version \(version), newer than this custos understands (\(latest)); use a newer custos. Nothing was changed.")
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
        try db.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)
                    """)
                let applied = try Row.fetchAll(db, sql: "SELECT version, name, sha256 FROM schema_migrations")
                _ = try Migrations.check(applied)
                let done = Set(applied.map { $0["version"] as Int })
                for m in Migrations.all where !done.contains(m.version) {
                    let sum = SHA256Hex.of(m.sql)
                    try db.execute(sql: m.sql)
                    try afterMigration(m.version, db)
                    try db.execute(sql: "INSERT INTO schema_migrations(version, name, sha256, applied_at) VALUES (?, ?, ?, ?)",
                                   arguments: [m.version, m.name, sum, Timestamp.utcString(millis: clock())])
                }
                return .commit
            }
        }
    }

    /// Data steps that SQL cannot do. Version 2 builds the Merkle nodes over the custody
    /// entries that already exist, from their stored leaf hashes: no entry is rewritten.
    private func afterMigration(_ version: Int, _ db: Database) throws {
        if version == 2 {
            var builder = Merkle.FrontierBuilder()
            let cursor = try Data.fetchCursor(db, sql: "SELECT leaf_hash FROM custody ORDER BY seq")
            while let leaf = try cursor.next() {
                for node in builder.append(Array(leaf)) {
                    try db.execute(sql: "INSERT INTO merkle_nodes(level, idx, hash) VALUES (?, ?, ?)",
                                   arguments: [node.level, node.index, Data(node.hash)])
                }
            }
        }
    }
}
