import CustosCore
import Foundation
import GRDB

extension Store {
    /// What a backup or restore wrote and found.
    public struct CopyReport: Sendable {
        public let path: String
        public let report: VerifyReport
    }

    /// `custos backup DEST`: a consistent online copy through SQLite's backup API (other
    /// processes keep writing meanwhile), verified as `audit verify` verifies before the command
    /// succeeds, then recorded in this store's log. The signing key is not copied.
    public func backup(to dest: String) throws -> CopyReport {
        try write { db, log in _ = try requireRole(db: db, log: log, .backup) }
        try Store.copy(from: db, to: dest)
        let copy = try Store.open(path: dest, actor: actor, access: .verify)
        let report = try copy.verify()
        guard report.ok else {
            Store.removeStoreFiles(dest)
            throw CustosError.storage(cause: "the copy at \(dest) does not verify (\(report.problems.first ?? "?")); it was removed")
        }
        let origin = try organisation().origin
        try write { _, log in
            try log.record(.storeBackup(.init([
                "destination": .string(URL(fileURLWithPath: dest).standardizedFileURL.path), "entries": .integer(report.entries),
                "checkpoints": .integer(Int64(report.checkpoints))])), subjectID: origin)
        }
        return CopyReport(path: dest, report: report)
    }

    /// `custos restore SRC --db DEST`: copies a backup to a new store file, verifies it and
    /// records the restore in the copy's log.
    public static func restore(from source: String, to dest: String, actor: Actor, keyPath: String? = nil) throws -> CopyReport {
        try checkStoreFile(source)
        let from = try Store.open(path: source, actor: actor, access: .verify)
        try copy(from: from.db, to: dest)
        let store = try Store.open(path: dest, actor: actor, access: .verify)
        let report = try store.verify()
        guard report.ok else {
            removeStoreFiles(dest)
            throw CustosError.invalidInput(field: source, reason: "the backup does not verify (\(report.problems.first ?? "?")); nothing was restored")
        }
        // The restorer need not be a user of the store: whoever can write the file restores it.
        try? store.db.close()
        let writer = Store(path: dest, actor: actor, db: try DatabaseQueue(path: dest, configuration: configuration()), headKey: HeadKey(path: keyPath))
        try writer.transaction { db, log in
            try log.record(.storeRestore(.init(["source": .string(URL(fileURLWithPath: source).standardizedFileURL.path), "entries": .integer(report.entries)])),
                           subjectID: try writer.logOrigin(db))
        }
        return CopyReport(path: dest, report: report)
    }

    /// A new file (0600: it holds evidence), filled by SQLite's online backup.
    static func copy(from source: any DatabaseReader, to dest: String) throws {
        try InputPath.requireRegularFile(dest, role: "destination", mayBeMissing: true)
        let fd = Glibc.open(dest, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw errno == EEXIST ? CustosError.conflict(subject: dest, reason: "already exists; refusing to overwrite it")
                : CustosError.storage(cause: "cannot create \(dest): \(String(cString: strerror(errno)))")
        }
        close(fd)
        do {
            let pageSize = try source.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") }
            let target = try DatabaseQueue(path: dest, configuration: configuration(pageSize: pageSize))
            try source.backup(to: target)
            try target.close()
        } catch {
            removeStoreFiles(dest)
            throw CustosError.storage(cause: "cannot copy the store to \(dest): \(describe(error))")
        }
    }

    static func removeStoreFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}
