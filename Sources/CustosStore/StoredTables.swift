import CustosCore
import Foundation
import GRDB

/// The workflow tables as `audit verify` compares them: each row's compared columns as text, by
/// row key. Verify compares the store's with those the projection rebuilds from the log; a
/// migration entry snapshots some of them.
enum StoredTables {
    /// The compared columns of each workflow table (the key is not a column here). Composite
    /// keys join their parts with `|` (the first part is always an integer or has no `|`).
    static let columns: [String: [String]] = [
        "store_meta": ["value"],
        "schema_migrations": ["name", "sha256", "applied_at"],
        "users": ["role", "disabled", "created_at"],
        "settings": ["value"],
        "agencies": ["name", "jurisdictions", "profile", "route", "retention_days", "public_key"],
        "decisions": ["flag", "reviewer", "stage", "outcome", "reason", "category", "annotations", "urgent_reason", "at", "at_ms", "final"],
        "checkpoints": ["size", "root", "created_at"],
        "cases": ["platform", "state", "merged_into", "created_at"],
        "case_accounts": [],
        "case_flags": ["case_id"],
        "case_agencies": ["reason", "served"],
        "referrals": ["case_id", "agency", "supplements", "tagmanifest_sha256", "created_at", "created_ms", "created_by", "hold_until_ms"],
        "receipts": ["case_id", "agency", "reference", "recorded_at", "recorded_by"],
        "packet_ids": ["case_id", "agency", "number", "allocated_at"],
        "cosignatures": ["signature", "cosigned_at"],
        "tombstones": ["purged_at", "reason"],
        "hold_extensions": ["case_id", "until_ms", "reason", "extended_at", "extended_by"],
        // Secrets are compared by their SHA-256 (the entries record no secret).
        "credentials": ["password_sha256", "totp_sha256"],
        "tokens": ["user", "token_sha256", "created_at", "revoked_at"],
        "preferences": ["blur", "grayscale"],
        "submissions": ["case_id", "agency", "packet_id", "endpoint", "report_id", "state", "last_error", "created_at", "updated_at"],
        "submission_files": ["name", "path", "sha256", "md5", "upload_sent", "file_id", "details_sent"],
        "hash_lists": ["kind", "source", "category", "threshold", "min_quality", "file_sha256", "entries_sha256", "count", "created_at", "created_by", "removed_at"],
        "matches": ["hash", "distance", "label", "matched_at"],
        "action_endpoints": ["url", "kind", "triggers", "categories", "secret", "previous_secret", "previous_until_ms", "disabled", "disabled_reason",
                             "created_at", "created_by"],
        "action_requests": ["endpoint", "kind", "trigger", "flag", "case_id", "body", "requested_seq", "requested_at", "requested_ms", "state", "attempts",
                            "next_attempt_ms", "lease_until_ms", "leased_by", "last_status", "last_error", "reference", "disabled_at", "user_notified",
                            "user_notified_at", "acknowledged_at", "updated_at"],
        "action_attempts": ["started_at", "deliverer", "ended_at", "status", "duration_ms", "answer_sha256", "error", "state"],
        // Rows only while a purge transaction runs: never in a committed store.
        "purging": [],
        "purging_blobs": [],
    ]

    /// The tables a migration entry snapshots (their facts were not all in older entries).
    static let snapshotTables = ["store_meta", "schema_migrations", "cases", "case_accounts", "case_flags", "case_agencies", "referrals", "receipts", "packet_ids"]

    /// Each table's rows: the key first, then `columns[table]` in order.
    static let queries: [String: String] = [
        "store_meta": "SELECT key, value FROM store_meta",
        "schema_migrations": "SELECT version, name, sha256, applied_at FROM schema_migrations",
        "users": "SELECT name, role, disabled, created_at FROM users",
        "settings": "SELECT key, value FROM settings",
        "agencies": "SELECT code, name, jurisdictions, profile, route, retention_days, public_key FROM agencies",
        "decisions": """
            SELECT d.id, f.detector || ':' || f.flag_id, d.reviewer, d.stage, d.outcome, d.reason, d.category, d.annotations,
                   d.urgent_reason, d.at, d.at_ms, d.final
            FROM decisions d LEFT JOIN flags f ON f.id = d.flag
            """,
        "checkpoints": "SELECT id, size, root, created_at FROM checkpoints",
        "cases": "SELECT id, platform, state, merged_into, created_at FROM cases",
        "case_accounts": "SELECT case_id || '|' || user_id FROM case_accounts",
        "case_flags": "SELECT f.detector || ':' || f.flag_id, cf.case_id FROM case_flags cf LEFT JOIN flags f ON f.id = cf.flag",
        "case_agencies": "SELECT case_id || '|' || agency, reason, served FROM case_agencies",
        "referrals": """
            SELECT packet_id, case_id, agency, supplements, tagmanifest_sha256, created_at, created_ms, created_by, hold_until_ms
            FROM referrals
            """,
        "receipts": "SELECT id, case_id, agency, reference, recorded_at, recorded_by FROM receipts",
        "packet_ids": "SELECT packet_id, case_id, agency, number, allocated_at FROM packet_ids",
        "cosignatures": "SELECT checkpoint_id || '|' || witness, signature, cosigned_at FROM cosignatures",
        "tombstones": "SELECT evidence_hash, purged_at, reason FROM tombstones",
        "hold_extensions": "SELECT id, case_id, until_ms, reason, extended_at, extended_by FROM hold_extensions",
        "credentials": "SELECT user, password_hash, totp_secret FROM credentials",
        "tokens": "SELECT id, user, token_sha256, created_at, revoked_at FROM tokens",
        "preferences": "SELECT user, blur, grayscale FROM preferences",
        "submissions": "SELECT id, case_id, agency, packet_id, endpoint, report_id, state, last_error, created_at, updated_at FROM submissions",
        "submission_files": "SELECT submission_id || '|' || seq, name, path, sha256, md5, upload_sent, file_id, details_sent FROM submission_files",
        "hash_lists": """
            SELECT name, kind, source, category, threshold, min_quality, file_sha256, entries_sha256, count, created_at, created_by, removed_at
            FROM hash_lists
            """,
        "matches": """
            SELECT f.detector || ':' || f.flag_id || '|' || m.attachment || '|' || m.list || '|' || m.kind, m.hash, m.distance, m.label, m.matched_at
            FROM matches m LEFT JOIN flags f ON f.id = m.flag
            """,
        "action_endpoints": """
            SELECT name, url, kind, triggers, categories, secret, previous_secret, previous_until_ms, disabled, disabled_reason, created_at, created_by
            FROM action_endpoints
            """,
        "action_requests": """
            SELECT r.id, r.endpoint, r.kind, r.trigger, f.detector || ':' || f.flag_id, r.case_id, r.body, r.requested_seq, r.requested_at, r.requested_ms,
                   r.state, r.attempts, r.next_attempt_ms, r.lease_until_ms, r.leased_by, r.last_status, r.last_error, r.reference, r.disabled_at,
                   r.user_notified, r.user_notified_at, r.acknowledged_at, r.updated_at
            FROM action_requests r LEFT JOIN flags f ON f.id = r.flag
            """,
        "action_attempts": """
            SELECT request || '|' || attempt, started_at, deliverer, ended_at, status, duration_ms, answer_sha256, error, state FROM action_attempts
            """,
        "purging": "SELECT conversation_id FROM purging",
        "purging_blobs": "SELECT sha256 FROM purging_blobs",
    ]

    /// Columns (0 = the first after the key) stored as secrets and compared by their SHA-256.
    static let secretColumns: [String: Set<Int>] = ["credentials": [0, 1], "action_endpoints": [4, 5]]

    /// One table's rows. A key that occurs twice (a row whose key columns were blanked) is
    /// kept under a name that says so, so it is reported rather than silently merged.
    static func read(_ table: String, _ db: Database) throws -> [String: [String?]] {
        guard let sql = queries[table] else { return [:] }
        var rows: [String: [String?]] = [:]
        let cursor = try Row.fetchCursor(db, sql: sql)
        while let row = try cursor.next() {
            let values = row.databaseValues.map(text)
            var key = values.first.flatMap { $0 } ?? "(null)"
            if rows[key] != nil { key += " (again)" }
            var columns = Array(values.dropFirst())
            for i in secretColumns[table] ?? [] where i < columns.count { columns[i] = columns[i].map(SHA256Hex.of) }
            rows[key] = columns
        }
        return rows
    }

    /// A stored value as the compared rows show it: integers in decimal, blobs in base64, NULL as nil.
    static func text(_ value: DatabaseValue) -> String? {
        switch value.storage {
        case .null: nil
        case .int64(let i): String(i)
        case .double(let d): String(d)
        case .string(let s): s
        case .blob(let b): b.base64EncodedString()
        }
    }

    /// The columns of a `flags` row that no other check covers (its conversation is covered by
    /// the evidence hash, its record hash and ingest time by its ingest entry), hashed: the
    /// ingest entry records it, `audit verify` recomputes it.
    static let flagColumns = ["model_version", "score", "detected_at", "detected_ms", "platform", "surface", "signals", "extra"]

    static func flagDigest(_ values: [DatabaseValue]) -> String {
        SHA256Hex.of(JSONValue.array(values.map { text($0).map(JSONValue.string) ?? .null }).canonicalString)
    }
}

