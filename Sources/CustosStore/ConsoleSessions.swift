import CustosCore
import Foundation
import GRDB

/// A console session as the store keeps it across restarts: by the SHA-256 of its id.
public struct StoredSession: Sendable {
    public let idSHA256: String
    public let user: String
    public let role: Role
    public let auth: AuthMethod
    public let stamp: String
    public let startedMillis: Int64
    public let lastSeenMillis: Int64
}

/// Console sessions and the sign-in throttle, kept so that a restart of `serve` signs nobody
/// out and forgets no wait. A session's start and end are custody entries (session.login, which
/// records the SHA-256 of the session's id, and session.logout) written in the same transaction
/// as its row; the rest (when it was last seen, the throttle's counters) is not workflow state
/// and is written without an entry. No cookie is stored, and none is logged.
extension Store {
    /// Records a sign-in and keeps its session (in the login entry's transaction).
    public func openSession(idSHA256: String, user: String, auth: AuthMethod, stamp: String, details: [String: JSONValue]) throws {
        try write { db, log in
            var d = details
            d["session_sha256"] = .string(idSHA256)
            let seq = try log.record(.sessionLogin(.init(d)), subjectID: String(user.prefix(64)))
            // Sessions past their absolute lifetime go (a restart may have left them).
            try db.execute(sql: "DELETE FROM console_sessions WHERE started_ms < ?", arguments: [log.millis - Store.sessionLifetimeMillis])
            try db.execute(sql: """
                INSERT OR REPLACE INTO console_sessions(id_sha256, user, auth, stamp, started_ms, last_seen_ms, login_seq) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [idSHA256, user, auth.rawValue, stamp, log.millis, log.millis, seq])
        }
    }

    /// Records a session's end and forgets it (in the logout entry's transaction).
    public func closeSession(idSHA256: String?, user: String, reason: String) throws {
        try write { db, log in
            try log.record(.sessionLogout(.init(["reason": .string(reason)])), subjectID: String(user.prefix(64)))
            if let idSHA256 { try db.execute(sql: "DELETE FROM console_sessions WHERE id_sha256 = ?", arguments: [idSHA256]) }
        }
    }

    /// Forgets every session of `user` (disabled, or their credentials changed by an admin).
    public func forgetSessions(user: String) throws {
        try plainWrite { db in try db.execute(sql: "DELETE FROM console_sessions WHERE user = ?", arguments: [user]) }
    }

    /// A kept session, if its login entry records it for this user (a row added behind the log's
    /// back opens nothing). The role is the user's now.
    public func storedSession(idSHA256: String) throws -> StoredSession? {
        try read { db in
            guard try db.tableExists("console_sessions"),
                  let r = try Row.fetchOne(db, sql: """
                    SELECT s.*, u.role FROM console_sessions s JOIN users u ON u.name = s.user
                    JOIN custody c ON c.seq = s.login_seq AND c.action = 'session.login' AND c.subject_id = s.user
                    WHERE s.id_sha256 = ? AND json_extract(c.details, '$.session_sha256') = s.id_sha256
                    """, arguments: [idSHA256]),
                  let role = Role(rawValue: r["role"]), let auth = AuthMethod(rawValue: r["auth"]) else { return nil }
            return StoredSession(idSHA256: idSHA256, user: r["user"], role: role, auth: auth, stamp: r["stamp"],
                                 startedMillis: r["started_ms"], lastSeenMillis: r["last_seen_ms"])
        }
    }

    /// Remembers when a session was last seen (the console calls this at most once a minute).
    public func touchSession(idSHA256: String, at millis: Int64) throws {
        try plainWrite { db in
            try db.execute(sql: "UPDATE console_sessions SET last_seen_ms = max(last_seen_ms, ?) WHERE id_sha256 = ?", arguments: [millis, idSHA256])
        }
    }

    /// The throttle's counters, as kept.
    public func throttleCounters() throws -> [(key: String, failures: Int, untilMillis: Int64)] {
        try read { db in
            guard try db.tableExists("login_throttle") else { return [] }
            return try Row.fetchAll(db, sql: "SELECT key, failures, until_ms FROM login_throttle").map { ($0["key"], $0["failures"], $0["until_ms"]) }
        }
    }

    /// Keeps (or, with nil, forgets) one throttle counter.
    public func saveThrottleCounter(key: String, failures: Int?, untilMillis: Int64) throws {
        try plainWrite { db in
            if let failures {
                try db.execute(sql: "INSERT OR REPLACE INTO login_throttle(key, failures, until_ms) VALUES (?, ?, ?)", arguments: [key, failures, untilMillis])
            } else {
                try db.execute(sql: "DELETE FROM login_throttle WHERE key = ?", arguments: [key])
            }
        }
    }

    /// 12 hours: no session outlives it.
    public static let sessionLifetimeMillis: Int64 = 12 * 3_600_000

    /// A write of operational state that is not workflow state (no custody entry, no head to
    /// sign): sessions' last sight and the throttle. Committed at synchronous=NORMAL.
    func plainWrite(_ body: (Database) throws -> Void) throws {
        do {
            try db.writeWithoutTransaction { db in
                guard try db.tableExists("console_sessions") else { return }
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
                try db.inTransaction { try body(db); return .commit }
            }
        } catch {
            throw CustosError.storage(cause: Store.describe(error))
        }
    }
}
