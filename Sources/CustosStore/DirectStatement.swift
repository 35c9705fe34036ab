import CustosCore
import Foundation
import GRDB
import GRDBSQLite

/// A cached statement bound and stepped through SQLite's C interface. Ingest's writer runs
/// eight statements per record on its one thread, and the custody log's append runs on every
/// write; there, GRDB's argument arrays (a boxed value per argument, an array per call) cost
/// more than SQLite's own work. Everything else goes through GRDB.
///
/// Bind every parameter, in order, then `run()` (or `int64()`/`text()` for a one-value query);
/// each use starts from a reset statement. Values are copied by SQLite when bound, and text
/// is bound with its exact UTF-8 length. A failure is GRDB's `DatabaseError`, as GRDB would
/// throw it, so callers describe it the same way (a full disk, a read-only store).
struct DirectStatement {
    private let handle: OpaquePointer
    private var index: Int32 = 0
    /// The first binding SQLite refused (too big), reported by the step that follows.
    private var refused: Int32 = SQLITE_OK

    init(_ db: Database, _ sql: String) throws {
        handle = try db.cachedStatement(sql: sql).sqliteStatement
        sqlite3_reset(handle)
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private mutating func slot() -> Int32 { index += 1; return index }

    private mutating func check(_ code: Int32) { if code != SQLITE_OK && refused == SQLITE_OK { refused = code } }

    mutating func bind(_ value: String) {
        var value = value
        let i = slot()
        var code = SQLITE_OK
        value.withUTF8 { b in
            if let base = b.baseAddress {
                code = sqlite3_bind_text(handle, i, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), Int32(b.count), DirectStatement.transient)
            } else {
                // An empty buffer may have no address, and SQLite reads a NULL pointer as NULL, not "".
                code = sqlite3_bind_text(handle, i, "", 0, DirectStatement.transient)
            }
        }
        check(code)
    }

    mutating func bind(_ value: String?) {
        if let value { bind(value) } else { check(sqlite3_bind_null(handle, slot())) }
    }

    mutating func bind(_ value: Int64) { check(sqlite3_bind_int64(handle, slot(), value)) }
    mutating func bind(_ value: Int) { bind(Int64(value)) }

    mutating func bind(_ value: Double) { check(sqlite3_bind_double(handle, slot(), value)) }

    /// Bytes as a BLOB (`[UInt8]`, `Data`).
    mutating func bind(_ value: some ContiguousBytes) {
        let i = slot()
        check(value.withUnsafeBytes { b in
            sqlite3_bind_blob(handle, i, b.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(b.count), DirectStatement.transient)
        })
    }

    mutating func bind(_ value: DatabaseValue) {
        switch value.storage {
        case .null: check(sqlite3_bind_null(handle, slot()))
        case .int64(let v): bind(v)
        case .double(let v): bind(v)
        case .string(let v): bind(v)
        case .blob(let v): bind(v)
        }
    }

    /// Runs an INSERT that must add exactly one row. A trigger that silently skips it (a
    /// `RAISE(IGNORE)` nobody shipped) leaves SQLite's change count at 0: that is a failure.
    mutating func runInsertingOne(what: String) throws {
        let connection = sqlite3_db_handle(handle)
        try run()
        guard let connection, sqlite3_changes(connection) == 1 else {
            throw CustosError.storage(cause: "the \(what) was not stored (a trigger the migrations do not create dropped it?); nothing was written. Run `custos audit verify`")
        }
    }

    /// Runs the statement to its end (an INSERT, an UPDATE).
    mutating func run() throws {
        defer { finish() }
        guard refused == SQLITE_OK else { throw failure(refused) }
        var code = sqlite3_step(handle)
        while code == SQLITE_ROW { code = sqlite3_step(handle) }
        guard code == SQLITE_DONE else { throw failure(code) }
    }

    /// The first column of the first row, if there is a row.
    mutating func int64() throws -> Int64? {
        try first { h in sqlite3_column_type(h, 0) == SQLITE_NULL ? nil : sqlite3_column_int64(h, 0) }
    }

    /// The first two columns of the first row, as a double and an integer, if there is a row.
    mutating func doubleAndInt64() throws -> (Double, Int64)? {
        try first { h in (sqlite3_column_double(h, 0), sqlite3_column_int64(h, 1)) }
    }

    /// The first column of the first row as text, if there is a row and it is not NULL.
    mutating func text() throws -> String? {
        try first { h in
            guard let p = sqlite3_column_text(h, 0) else { return nil }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(h, 0))), as: UTF8.self)
        }
    }

    /// Every row: its first column's bytes and its second column as text (or nil).
    mutating func forEachRow(_ body: (UnsafeBufferPointer<UInt8>, String?) throws -> Void) throws {
        defer { finish() }
        guard refused == SQLITE_OK else { throw failure(refused) }
        var code = sqlite3_step(handle)
        while code == SQLITE_ROW {
            let first = UnsafeBufferPointer(start: sqlite3_column_text(handle, 0), count: Int(sqlite3_column_bytes(handle, 0)))
            let second = sqlite3_column_text(handle, 1).map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(sqlite3_column_bytes(handle, 1))), as: UTF8.self) }
            try body(first, second)
            code = sqlite3_step(handle)
        }
        guard code == SQLITE_DONE else { throw failure(code) }
    }

    private mutating func first<T>(_ read: (OpaquePointer) -> T?) throws -> T? {
        defer { finish() }
        guard refused == SQLITE_OK else { throw failure(refused) }
        let code = sqlite3_step(handle)
        if code == SQLITE_ROW { return read(handle) }
        guard code == SQLITE_DONE else { throw failure(code) }
        return nil
    }

    private mutating func finish() {
        sqlite3_reset(handle)
        index = 0
        refused = SQLITE_OK
    }

    private func failure(_ code: Int32) -> DatabaseError {
        let db = sqlite3_db_handle(handle)
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: db.map { String(cString: sqlite3_errmsg($0)) },
                             sql: sqlite3_sql(handle).map { String(cString: $0) })
    }
}
