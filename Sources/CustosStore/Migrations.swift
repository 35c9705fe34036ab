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

    /// Reads the store's schema version without writing anything; a newer one is refused.
    static func refuseNewerSchema(path: String) throws {
        let version: Int
        do {
            let q = try DatabaseQueue(path: path, configuration: Store.configuration(readonly: true))
            defer { try? q.close() }
            version = try q.read { db in
                guard try db.tableExists("schema_migrations") else { return 0 }
                return try Int.fetchOne(db, sql: "SELECT max(version) FROM schema_migrations") ?? 0
            }
        } catch {
            throw StoreError("cannot read the store at \(path): \(Store.describe(error))")
        }
        if version > latest {
            throw StoreError("the store at \(path) has schema version \(version), newer than this custos understands (\(latest)); use a newer custos. Nothing was changed.")
        }
    }
}

extension Store {
    func migrate() throws {
        try db.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)
                    """)
                let applied = try Row.fetchAll(db, sql: "SELECT version, name, sha256 FROM schema_migrations")
                var done: [Int: String] = [:]
                for row in applied { done[row["version"]] = row["sha256"] }
                if let newest = done.keys.max(), newest > Migrations.latest {
                    throw StoreError("the store has schema version \(newest), newer than this custos understands (\(Migrations.latest))")
                }
                for m in Migrations.all {
                    let sum = SHA256Hex.of(m.sql)
                    if let recorded = done[m.version] {
                        if recorded != sum {
                            throw StoreError("migration \(m.name) differs from the one applied to this store; migrations are never edited once shipped")
                        }
                        continue
                    }
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
