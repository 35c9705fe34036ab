import CustosCore
import Foundation
import GRDB

/// `flag_accounts`: the platform accounts each flag's conversation names. Evidence-derived (not
/// the projection's): ingest writes it, migration 14 and `audit rebuild` fill it from the
/// documents, a purge removes a conversation's rows with its evidence, and `audit verify`
/// compares it with the documents row for row.
enum AccountIndex {
    /// The rows the evidence documents give (SQLite reads the participants; no message is
    /// materialised). A document that is not JSON (edited behind the log's back: the evidence
    /// step names it) gives none, rather than stopping the check.
    static let derived = """
        SELECT c.platform AS platform, json_extract(p.value, '$.user_id') AS user_id, f.id AS flag, json_extract(p.value, '$.role_hint') AS role_hint
        FROM flags f JOIN conversations c ON c.id = f.conversation_id JOIN evidence e ON e.conversation_id = c.id,
             json_each(CASE WHEN json_valid(e.document) THEN e.document ELSE '{}' END, '$.conversation.participants') p
        """

    static func fill(_ db: Database) throws {
        guard try db.tableExists("flag_accounts") else { return }
        try db.execute(sql: "INSERT OR IGNORE INTO flag_accounts(platform, user_id, flag, role_hint) " + derived)
    }

    /// Rows the documents give that the table lacks, and rows it holds that no document gives.
    /// One pass over the documents, each row looked up by its key; the table's other rows are
    /// looked for only when the counts differ.
    static func problems(_ db: Database, limit: Int = 5) throws -> [String] {
        guard try db.tableExists("flag_accounts") else { return [] }
        func describe(_ r: Row) -> String {
            "flag row \(r["flag"] as Int64? ?? -1) account \(quoted(r["user_id"] as String? ?? "")) on \(quoted(r["platform"] as String? ?? ""))"
        }
        let absent = """
            NOT EXISTS (SELECT 1 FROM flag_accounts a WHERE a.platform = d.platform AND a.user_id = d.user_id AND a.flag = d.flag AND a.role_hint IS d.role_hint)
            """
        let lacking = "SELECT d.platform, d.user_id, d.flag FROM (\(derived)) d WHERE \(absent)"
        // One pass over the documents: how many rows they give, and how many of those the table lacks.
        guard let counts = try Row.fetchOne(db, sql: """
            SELECT count(*) AS n, coalesce(sum(\(absent)), 0) AS lacking, (SELECT count(*) FROM flag_accounts) AS stored
            FROM (\(derived)) d
            """) else { return [] }
        var out: [String] = []
        if (counts["lacking"] as Int) > 0 {
            out = try Row.fetchAll(db, sql: lacking + " LIMIT \(limit)").map {
                "flag_accounts lacks \(describe($0)), which its evidence names (or names with another role): changed behind the log's back"
            }
        }
        if !out.isEmpty || (counts["stored"] as Int) != (counts["n"] as Int) {
            out += try Row.fetchAll(db, sql: """
                SELECT platform, user_id, flag FROM flag_accounts EXCEPT SELECT platform, user_id, flag FROM (\(derived)) LIMIT \(limit)
                """).map { "flag_accounts holds \(describe($0)), which no evidence names: changed behind the log's back" }
            if out.isEmpty { out.append("flag_accounts holds \(counts["stored"] as Int) rows; the evidence names \(counts["n"] as Int): changed behind the log's back") }
        }
        return out
    }
}

/// The earlier flags that name one of a flag's accounts: what a reviewer needs beside the
/// conversation (repeat contact is the strongest signal there is).
public struct AccountHistory: Sendable {
    /// As JSON (`show --json`).
    public var json: JSONValue {
        .object([("platform", .string(platform)), ("user_id", .string(userID)), ("role_hint", roleHint.map(JSONValue.string)),
                 ("other_flags", .integer(Int64(total))), ("flags", .array(flags.map { f in .object([
                    ("flag", .string(f.key)), ("detected_at", .string(f.detectedAt)), ("outcome", .string(f.outcome)),
                    ("decided_at", f.decidedAt.map(JSONValue.string)), ("category", f.category.map(JSONValue.string)),
                    ("case", f.caseID.map(JSONValue.string)), ("case_state", f.caseState.map(JSONValue.string)),
                    ("referrals", .array(f.referrals.map(JSONValue.string))), ("reports", .array(f.reports.map(JSONValue.string))),
                    ("platform_actions", .array(f.actions.map(JSONValue.string))),
                 ]) }))])
    }

    public struct Flag: Sendable {
        public let key: String
        public let detectedAt: String
        /// `confirmed` or `dismissed` (settled), else `in review`: another round's interim
        /// decisions are not shown.
        public let outcome: String
        public let decidedAt: String?
        public let category: String?
        public let caseID: String?
        public let caseState: String?
        /// "NCMEC packet C-000001-NCMEC-1", "NCMEC report 1234", "suspend-account acknowledged": words.
        public let referrals: [String]
        public let reports: [String]
        public let actions: [String]
    }
    public let platform: String
    public let userID: String
    public let roleHint: String?
    /// How many other flags name the account; `flags` holds the latest of them.
    public let total: Int
    public let flags: [Flag]
}

extension Store {
    /// Each account the flag names, with the other flags that name it (latest first, at most
    /// `limit`). Reads no evidence text: not an evidence read.
    public func accountHistory(flag name: String, limit: Int = 20) throws -> [AccountHistory] {
        try requirePermission(.read)
        return try read { db in try accountHistory(flagRow: try resolveFlag(name, db: db).rowID, limit: limit, db: db) }
    }

    func accountHistory(flagRow: Int64, limit: Int = 20, db: Database) throws -> [AccountHistory] {
        guard try db.tableExists("flag_accounts") else { return [] }
        let hasActions = try db.tableExists("action_requests")
        // The flag's own accounts from its document, as the index derives them (SQLite looks
        // up the one flag; the index is keyed by account).
        return try Row.fetchAll(db, sql: """
            SELECT platform, user_id, role_hint FROM (\(AccountIndex.derived)) WHERE flag = ? ORDER BY role_hint = 'suspected_adult' DESC, user_id
            """, arguments: [flagRow]).map { a in
            let platform: String = a["platform"], user: String = a["user_id"]
            let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM flag_accounts WHERE platform = ? AND user_id = ? AND flag <> ?",
                                         arguments: [platform, user, flagRow]) ?? 0
            let flags = try Row.fetchAll(db, sql: """
                SELECT f.id, f.detector, f.flag_id, f.detected_at, s.status, s.category, cf.case_id, c.state AS case_state,
                       (SELECT max(d.at) FROM decisions d WHERE d.flag = f.id AND d.final = 1) AS decided_at
                FROM flag_accounts a JOIN flags f ON f.id = a.flag JOIN flag_state s ON s.flag = f.id
                LEFT JOIN case_flags cf ON cf.flag = f.id LEFT JOIN cases c ON c.id = cf.case_id
                WHERE a.platform = ? AND a.user_id = ? AND a.flag <> ? ORDER BY f.detected_ms DESC, f.id DESC LIMIT ?
                """, arguments: [platform, user, flagRow, limit]).map { r -> AccountHistory.Flag in
                let status: String = r["status"]
                let settled = status == FlagStatus.confirmed.rawValue || status == FlagStatus.dismissed.rawValue
                let caseRow: Int64? = r["case_id"]
                var referrals: [String] = [], reports: [String] = [], actions: [String] = []
                if let caseRow {
                    referrals = try Row.fetchAll(db, sql: "SELECT agency, packet_id FROM referrals WHERE case_id = ? ORDER BY created_ms", arguments: [caseRow])
                        .map { "\($0["agency"] as String) packet \($0["packet_id"] as String)" }
                    reports = try String.fetchAll(db, sql: "SELECT report_id FROM submissions WHERE case_id = ? AND state = 'finished' AND report_id IS NOT NULL ORDER BY id",
                                                  arguments: [caseRow]).map { "NCMEC report \($0)" }
                }
                if hasActions {
                    actions = try String.fetchAll(db, sql: """
                        SELECT kind || ' ' || state FROM action_requests WHERE flag = ? AND state IN ('acknowledged', 'delivered') ORDER BY requested_seq
                        """, arguments: [r["id"] as Int64])
                }
                return AccountHistory.Flag(key: FlagKey.make(detector: r["detector"], flagID: r["flag_id"]), detectedAt: r["detected_at"],
                                           outcome: settled ? status : "in review", decidedAt: settled ? r["decided_at"] : nil,
                                           category: settled ? r["category"] : nil, caseID: caseRow.map(CaseID.format), caseState: r["case_state"],
                                           referrals: referrals, reports: reports, actions: actions)
            }
            return AccountHistory(platform: platform, userID: user, roleHint: a["role_hint"], total: total, flags: flags)
        }
    }
}

extension Store {
    /// `custos history --measure N`: the history of N flags spread over the store, each timed
    /// (milliseconds, sorted). For scripts/bench.
    public func measureAccountHistory(samples n: Int) throws -> [Double] {
        try requirePermission(.read)
        return try read { db in
            let count = try Int64.fetchOne(db, sql: "SELECT max(id) FROM flags") ?? 0
            let step = max(1, count / Int64(max(n, 1)))
            let rows = try Int64.fetchAll(db, sql: "SELECT id FROM flags WHERE id % ? = 0 LIMIT ?", arguments: [step, n])
            let clock = ContinuousClock()
            return try rows.map { row in
                let start = clock.now
                _ = try accountHistory(flagRow: row, db: db)
                let d = (clock.now - start).components
                return Double(d.seconds) * 1000 + Double(d.attoseconds) / 1e15
            }.sorted()
        }
    }
}
