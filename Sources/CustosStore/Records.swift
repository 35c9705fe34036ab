import CustosCore
import Foundation
import GRDB

// Rows as values: each table the store reads is mapped here, once, straight into the value the
// rest of the code uses (Core's types where there is one).

extension Agency: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "agencies"
    public enum Columns {
        public static let code = Column("code"), name = Column("name"), jurisdictions = Column("jurisdictions")
        public static let profile = Column("profile"), route = Column("route"), retentionDays = Column("retention_days")
        public static let publicKey = Column("public_key")
    }

    public init(row: Row) throws {
        guard let profile = AgencyProfile(rawValue: row[Columns.profile]), let route = AgencyRoute(rawValue: row[Columns.route]) else {
            throw CustosError.storage(cause: "agency \(quoted(row[Columns.code])) has an unknown profile or route")
        }
        self.init(code: row[Columns.code], name: row[Columns.name],
                  jurisdictions: (row[Columns.jurisdictions] as String).split(separator: ",").map(String.init),
                  profile: profile, route: route, retentionDays: row[Columns.retentionDays], publicKey: row[Columns.publicKey])
    }

    public func encode(to container: inout PersistenceContainer) {
        container[Columns.code] = code
        container[Columns.name] = name
        container[Columns.jurisdictions] = jurisdictions.joined(separator: ",")
        container[Columns.profile] = profile.rawValue
        container[Columns.route] = route.rawValue
        container[Columns.retentionDays] = retentionDays
        container[Columns.publicKey] = publicKey
    }
}

extension CustodyEntry: FetchableRecord {
    public init(row: Row) {
        self.init(seq: row["seq"], at: row["at"], actor: row["actor"], osUser: row["os_user"], action: row["action"],
                  subjectType: row["subject_type"], subjectID: row["subject_id"], details: row["details"],
                  evidenceHash: row["evidence_hash"], auth: row.hasColumn("auth") ? row["auth"] : nil)
    }
}

extension FlagReview: FetchableRecord {
    /// A `flag_state` row.
    public init(row: Row) throws {
        guard let status = FlagStatus(rawValue: row["status"]) else { throw CustosError.storage(cause: "flag row \(row["flag"] as Int64? ?? -1) has an unknown status") }
        let annotations = (row["annotations"] as String?).flatMap { try? JSONValue.parse(Array($0.utf8)) }?.arrayValue?.compactMap(\.stringValue) ?? []
        self.init(status: status, holder: row["claimed_by"], leaseExpiresMillis: row["claim_expires_ms"], firstReviewer: row["first_reviewer"],
                  category: row["category"], annotations: annotations, urgentReason: row["urgent_reason"])
    }
}

extension UserRecord: FetchableRecord {
    public init(row: Row) throws {
        guard let role = Role(rawValue: row["role"]) else { throw CustosError.storage(cause: "user \(quoted(row["name"])) has an unknown role") }
        self.init(name: row["name"], role: role, disabled: (row["disabled"] as Int64) != 0, createdAt: row["created_at"])
    }
}

extension StoredCheckpoint: FetchableRecord {
    public init(row: Row) {
        self.init(id: row["id"], size: row["size"], root: Array(row["root"] as Data), note: row["note"], createdAt: row["created_at"])
    }
}

extension Store.DecisionRecord: FetchableRecord {
    /// A `decisions` row joined with its flag's `detector` and `flag_id`.
    public init(row r: Row) throws {
        let annotations = (r["annotations"] as String?).flatMap { try? JSONValue.parse(Array($0.utf8)) }?.arrayValue?.compactMap(\.stringValue) ?? []
        self.init(flagKey: FlagKey.make(detector: r["detector"], flagID: r["flag_id"]), reviewer: r["reviewer"],
                  stage: try storedWord(r["stage"], "decisions.stage"), outcome: try storedWord(r["outcome"], "decisions.outcome"), reason: r["reason"],
                  category: try (r["category"] as String?).map { try storedWord($0, "decisions.category") },
                  annotations: annotations, urgentReason: r["urgent_reason"], at: r["at"], final: (r["final"] as Int64) != 0)
    }
}

// Read-side records of workflow tables (only the projection writes them). Column names are the
// properties in snake_case.

/// A record whose columns are its properties in snake_case.
protocol SnakeCaseRecord: Codable, TableRecord, EncodableRecord {}

extension SnakeCaseRecord {
    static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }
}

extension FetchableRecord where Self: SnakeCaseRecord {
    static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
}

/// A `referrals` row: a packet sent, and the preservation hold it starts.
struct ReferralRow: SnakeCaseRecord, FetchableRecord {
    static let databaseTableName = "referrals"
    var packetId: String
    var caseId: Int64
    var agency: String
    var supplements: String?
    var tagmanifestSha256: String
    var createdAt: String
    var createdMs: Int64
    var createdBy: String
    var holdUntilMs: Int64

    func hold(at now: Int64) -> Hold {
        Hold(packetID: packetId, caseID: CaseID.format(caseId), agency: agency, referredAt: createdAt,
             holdUntil: Timestamp.utcString(millis: holdUntilMs), active: holdUntilMs > now)
    }
}

/// A `receipts` row: an agency's acknowledgement of a referral.
struct ReceiptRow: SnakeCaseRecord, FetchableRecord {
    static let databaseTableName = "receipts"
    var caseId: Int64
    var agency: String
    var reference: String
    var recordedAt: String
    var recordedBy: String
}

/// A `cases` row.
struct CaseRow: SnakeCaseRecord, FetchableRecord {
    static let databaseTableName = "cases"
    var id: Int64?
    var platform: String
    var state: String
    var mergedInto: Int64?
    var createdAt: String
}

/// A `case_agencies` row: an agency a case is routed to, why, and whether it was served.
struct CaseAgencyRow: SnakeCaseRecord, FetchableRecord {
    static let databaseTableName = "case_agencies"
    var caseId: Int64
    var agency: String
    var reason: String
    var served: Bool
}
