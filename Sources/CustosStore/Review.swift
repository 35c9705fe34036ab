import CustosCore
import CustosMedia
import Foundation
import GRDB

public struct UserRecord: Sendable {
    public let name: String
    public let role: Role
    public let disabled: Bool
    public let createdAt: String
}

public struct QueueItem: Sendable {
    public let key: String
    public let status: FlagStatus
    public let urgent: Bool
    public let urgentReason: String?
    public let score: Double?
    public let detectedAt: String
    public let platform: String
}

public struct Claim: Sendable {
    public let key: String
    public let holder: String
    public let expiresAt: String
    public let status: FlagStatus
}

public struct DecisionResult: Sendable {
    public let key: String
    public let status: FlagStatus
    public let note: String
    public let caseID: String?
}

extension Store {
    // MARK: users and permissions

    /// The acting user as a reviewer, refused (and the refusal logged by `write`) unless their
    /// role carries `permission`.
    @discardableResult
    func requireRole(db: Database, log: CustodyLog, _ permission: Permission) throws -> Reviewer {
        let me = try currentReviewer(db: db)
        try permission.require(me)
        return me
    }

    func requireReader(db: Database, log: CustodyLog) throws { try requireRole(db: db, log: log, .read) }

    func currentReviewer(db: Database) throws -> Reviewer {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT role, disabled FROM users WHERE name = ?"), arguments: [actor.name]) else {
            throw CustosError.unauthenticated(actor: actor.name, reason: "unknown user \(quoted(actor.name)): an admin adds users with `custos user add NAME --role ROLE`")
        }
        guard (row["disabled"] as Int64) == 0 else { throw CustosError.unauthenticated(actor: actor.name, reason: "user \(quoted(actor.name)) is disabled") }
        guard let role = Role(rawValue: row["role"]) else { throw CustosError.storage(cause: "user \(quoted(actor.name)) has an unknown role") }
        if actor.auth == .asserted, try !settings(db).cliActors {
            throw CustosError.unauthenticated(actor: actor.name, reason: "--actor is switched off on this store (cli-actors off): the CLI acts only as your OS login \(quoted(actor.osUser)); sign in to the console to act as another user")
        }
        guard actor.auth != .none else { throw CustosError.unauthenticated(actor: actor.name, reason: "not signed in") }
        return Reviewer(name: actor.name, role: role)
    }

    /// A user (enabled) by name, for reassignment.
    func reviewer(named name: String, db: Database) throws -> Reviewer? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT role, disabled FROM users WHERE name = ?"), arguments: [name]),
              (row["disabled"] as Int64) == 0, let role = Role(rawValue: row["role"]) else { return nil }
        return Reviewer(name: name, role: role)
    }

    public func addUser(name: String, role: Role) throws {
        try UserName.validate(name)
        try write { db, log in
            try requireRole(db: db, log: log, .manageUsers)
            let skeleton = UserName.skeleton(name)
            for existing in try String.fetchAll(db.cachedStatement(sql: "SELECT name FROM users")) where UserName.skeleton(existing) == skeleton {
                throw CustosError.conflict(subject: "user \(quoted(name))",
                                           reason: existing == name ? "already exists" : "looks like the existing user \(quoted(existing)); choose a distinct name")
            }
            try log.record(.userAdd(.init(role: role)), subjectID: name)
        }
    }

    public func disableUser(name: String) throws {
        try write { db, log in
            try requireRole(db: db, log: log, .manageUsers)
            guard let disabled = try Int64.fetchOne(db.cachedStatement(sql: "SELECT disabled FROM users WHERE name = ?"), arguments: [name]) else {
                throw CustosError.notFound(kind: "user", name: name)
            }
            if disabled != 0 { throw CustosError.invalidState(subject: "user \(quoted(name))", state: "disabled", reason: "already") }
            // The projection also returns the user's claims to the queue.
            try log.record(.userDisable(.init()), subjectID: name)
        }
    }

    /// The users (an admin's read, like `tokens` and `settings`: anyone else is refused, logged).
    public func users() throws -> [UserRecord] {
        try requirePermission(.manageUsers)
        return try read { db in
            try UserRecord.fetchAll(db.cachedStatement(sql: "SELECT * FROM users ORDER BY name"))
        }
    }

    // MARK: settings

    public func setSetting(_ key: String, _ value: String) throws {
        guard let setting = Setting(rawValue: key) else {
            throw CustosError.invalidInput(field: "setting", reason: "unknown setting \(quoted(key)); known: \(Setting.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try setting.validate(value)
        try write { db, log in
            try requireRole(db: db, log: log, .manageSettings)
            let old = try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM settings WHERE key = ?"), arguments: [key])
            try log.record(.settingsSet(.init(value: value, previous: old)), subjectID: key)
        }
    }

    public func settings() throws -> [(String, String)] {
        try requirePermission(.manageSettings)
        return try read { db in try Row.fetchAll(db.cachedStatement(sql: "SELECT key, value FROM settings ORDER BY key")).map { ($0["key"], $0["value"]) } }
    }

    /// The settings, read once as one typed value.
    public func typedSettings() throws -> Settings { try read { db in try settings(db) } }

    func settings(_ db: Database) throws -> Settings { try Store.settings(in: db) }

    /// The settings rows as one typed value (a write's rules and the projection's replay read them alike).
    static func settings(in db: Database) throws -> Settings {
        Settings(Dictionary(try Row.fetchAll(db.cachedStatement(sql: "SELECT key, value FROM settings")).map { ($0["key"], $0["value"]) }, uniquingKeysWith: { a, _ in a }))
    }

    // MARK: queue and claims

    /// Open, unclaimed flags in priority order: urgent, score (unscored last), oldest detection.
    public func queue(limit: Int, lead: Bool = false) throws -> [QueueItem] {
        try requirePermission(.read)
        return try queueItems(limit: limit, lead: lead)
    }

    func queueItems(limit: Int, lead: Bool) throws -> [QueueItem] {
        let now = clock()
        return try read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT f.detector, f.flag_id, f.score, f.detected_at, f.platform, s.status, s.urgent, s.urgent_reason
                FROM flag_state s INDEXED BY flag_state_queue JOIN flags f ON f.id = s.flag
                WHERE s.queue = ? AND (s.claimed_by IS NULL OR s.claim_expires_ms <= ?)
                ORDER BY s.urgent DESC, s.score_rank DESC, s.detected_ms, s.flag
                LIMIT ?
                """), arguments: [(lead ? ReviewQueue.lead : .moderator).rawValue, now, max(0, limit)]).map {
                QueueItem(key: FlagKey.make(detector: $0["detector"], flagID: $0["flag_id"]), status: try storedWord($0["status"], "flag_state.status"),
                          urgent: ($0["urgent"] as Int64) != 0, urgentReason: $0["urgent_reason"], score: $0["score"],
                          detectedAt: $0["detected_at"], platform: $0["platform"])
            }
        }
    }

    /// Claims the named flag, or the next one in the actor's queue, under a lease. The
    /// IMMEDIATE transaction makes claims exclusive across processes.
    public func claim(_ name: String?, for assignee: String? = nil) throws -> Claim {
        return try write { db, log in
            let now = log.millis
            if let assignee { return try reassign(name, to: assignee, now: now, db: db, log: log) }
            let me = try requireRole(db: db, log: log, .claim)
            let settings = try settings(db)
            let secondRequired = settings.secondReviewRequired
            let rowID: Int64
            if let name {
                rowID = try resolveFlag(name, db: db).rowID
            } else {
                var found: Int64?
                for q in ReviewQueue.drawn(by: me.role) {
                    found = try Store.mayTakeNext(db, queue: q, reviewer: actor.name, now: now, secondReviewRequired: secondRequired, limit: 1).first
                    if found != nil { break }
                }
                guard let found else {
                    throw CustosError.notFound(kind: "flag", name: "next", hint: "the queue is empty: no open, unclaimed flag for \(actor.name)")
                }
                rowID = found
            }
            let key = try flagKey(rowID, db: db)
            let state = try ReviewRules.claim(key, try Projection.review(rowID, db: db), by: me, now: now,
                                              leaseMinutes: settings.leaseMinutes, secondReviewRequired: secondRequired)
            let expires = Timestamp.utcString(millis: state.leaseExpiresMillis ?? now)
            try log.record(.flagClaim(.init(leaseExpires: expires, status: state.status)), subjectID: key)
            return Claim(key: key, holder: actor.name, expiresAt: expires, status: state.status)
        }
    }

    /// The flags of `queue` that `reviewer` may take next, in the order they are drawn:
    /// unclaimed (or their lease over), and allowed by four eyes. The WHERE clause is
    /// `ReviewRules.mayReview` in SQL, so claim-next can use the queue index on a million
    /// flags; a test holds the two to the same answer on every state.
    static func mayTakeNext(_ db: Database, queue: ReviewQueue, reviewer: String, now: Int64, secondReviewRequired: Bool, limit: Int) throws -> [Int64] {
        try Int64.fetchAll(db.cachedStatement(sql: """
            SELECT flag FROM flag_state INDEXED BY flag_state_queue
            WHERE queue = ? AND (claimed_by IS NULL OR claim_expires_ms <= ?)
              AND (first_reviewer IS NULL OR first_reviewer <> ? OR status <> ?)
              AND (status = ? OR ? = 0 OR NOT EXISTS (
                    SELECT 1 FROM decisions d WHERE d.flag = flag_state.flag AND d.reviewer = ?
                      AND d.id > coalesce((SELECT max(r.id) FROM decisions r WHERE r.flag = d.flag AND r.outcome = ?), 0)))
            ORDER BY urgent DESC, score_rank DESC, detected_ms, flag LIMIT ?
            """), arguments: [queue.rawValue, now, reviewer, FlagStatus.secondReview.rawValue,
                             FlagStatus.open.rawValue, secondReviewRequired, reviewer, DecisionOutcome.reopen.rawValue, limit])
    }

    /// A lead hands a flag to a reviewer: any current claim ends, the assignee holds it under a
    /// new lease. Logged with the previous holder.
    private func reassign(_ name: String?, to assignee: String, now: Int64, db: Database, log: CustodyLog) throws -> Claim {
        let me = try requireRole(db: db, log: log, .reassign)
        guard let name else { throw CustosError.invalidInput(field: "FLAG", reason: "name the flag to reassign: custos claim FLAG --for USER") }
        guard let target = try reviewer(named: assignee, db: db) else {
            throw CustosError.invalidInput(field: "--for", reason: "\(quoted(assignee)) is not an enabled moderator or lead")
        }
        let (rowID, key) = try resolveFlag(name, db: db)
        let settings = try settings(db)
        let (state, previous) = try ReviewRules.reassign(key, try Projection.review(rowID, db: db), to: target, by: me, now: now,
                                                         leaseMinutes: settings.leaseMinutes, secondReviewRequired: settings.secondReviewRequired)
        if let previous {
            try log.record(.flagRelease(.init(holder: previous, reason: "reassigned to \(assignee)")), subjectID: key)
        }
        let expires = Timestamp.utcString(millis: state.leaseExpiresMillis ?? now)
        try log.record(.flagClaim(.init(leaseExpires: expires, status: state.status, assignedBy: actor.name, holder: assignee)), subjectID: key)
        return Claim(key: key, holder: assignee, expiresAt: expires, status: state.status)
    }

    /// Releases a claim: the holder's own, or anyone's for a lead.
    public func release(_ name: String) throws {
        try write { db, log in
            let now = log.millis
            let me = try requireRole(db: db, log: log, .claim)
            let (rowID, key) = try resolveFlag(name, db: db)
            let (_, holder) = try ReviewRules.release(key, try Projection.review(rowID, db: db), by: me, now: now)
            try log.record(.flagRelease(.init(holder: holder)), subjectID: key)
        }
    }

    func flagKey(_ rowID: Int64, db: Database) throws -> String {
        guard let r = try Row.fetchOne(db.cachedStatement(sql: "SELECT detector, flag_id FROM flags WHERE id = ?"), arguments: [rowID]) else {
            throw CustosError.storage(cause: "no flag with row id \(rowID)")
        }
        return FlagKey.make(detector: r["detector"], flagID: r["flag_id"])
    }

    // MARK: decisions

    public func decide(_ name: String, outcome: Outcome, reason: String, category: Category?, urgent: String?,
                       annotations: [Annotation]) throws -> DecisionResult {
        let decision = Decision(outcome: outcome, reason: reason, category: category, urgent: urgent, annotations: annotations)
        return try write { db, log in
            let now = log.millis
            let me = try requireRole(db: db, log: log, .decide)
            let (rowID, key) = try resolveFlag(name, db: db)
            let before = try Projection.review(rowID, db: db)
            let (_, next) = try ReviewRules.decide(key, before, by: me, decision, now: now,
                                                   secondReviewRequired: try settings(db).secondReviewRequired)
            let seq = try log.record(.flagDecide(.init(outcome: outcome, reason: reason, stage: before.status, category: category?.rawValue, urgent: urgent,
                                                       annotations: annotations.isEmpty ? nil : annotations.map(\.rawValue), result: next.status, final: next.final)),
                                     subjectID: key)
            var caseID: String?
            if next.status == .confirmed {
                caseID = try fileIntoCase(rowID: rowID, key: key, db: db, log: log)
                if try Projection.review(rowID, db: db).category == Category.csam.rawValue {
                    try addToOwnList(flag: try loadFlag(rowID: rowID, db: db), db: db, log: log)
                }
            }
            // What the platform is asked to do, in the decision's transaction.
            try requestActions(afterDecision: seq, flagRow: rowID, wasUrgent: before.urgentReason != nil, status: next.status, db: db, log: log)
            return DecisionResult(key: key, status: next.status, note: next.note, caseID: caseID)
        }
    }

    /// A lead reopens a dismissed flag; it returns to the moderator queue.
    public func reopen(_ name: String, reason: String) throws {
        try write { db, log in
            let me = try requireRole(db: db, log: log, .leadDecide)
            let (rowID, key) = try resolveFlag(name, db: db)
            _ = try ReviewRules.reopen(key, try Projection.review(rowID, db: db), by: me, reason: reason)
            try log.record(.flagReopen(.init(reason: reason)), subjectID: key)
        }
    }

    public struct DecisionRecord: Sendable {
        public let flagKey: String
        public let reviewer: String
        public let stage: FlagStatus
        public let outcome: DecisionOutcome
        public let reason: String
        public let category: Category?
        public let annotations: [String]
        public let urgentReason: String?
        public let at: String
        public let final: Bool
    }

    func decisions(flagRowIDs: [Int64], db: Database) throws -> [DecisionRecord] {
        guard !flagRowIDs.isEmpty else { return [] }
        return try DecisionRecord.fetchAll(db, SQLRequest<DecisionRecord>(literal: """
            SELECT d.*, f.detector, f.flag_id FROM decisions d JOIN flags f ON f.id = d.flag
            WHERE d.flag IN \(flagRowIDs) ORDER BY d.id
            """))
    }
}

/// A flag as a reviewer sees it: its evidence, its review state and its decisions, but for those
/// of a round the reader may still act on (`BlindReview`): those are withheld and
/// `decisionsHidden` says so.
public struct ReviewView: Sendable {
    public let flag: StoredFlag
    public let review: FlagReview
    public let decisions: [Store.DecisionRecord]
    public let decisionsHidden: Bool
    /// Each stored attachment's SHA-256, MD5 and PDQ (or why not), by SHA-256, when asked for.
    public var attachmentHashes: [String: MediaHashes] = [:]
    /// What each attachment matched on the hash lists, by SHA-256: the console shows these
    /// words instead of the image, and only a lead may reveal one.
    public var matches: [String: [KnownMatch]] = [:]
}

extension Store {
    /// Reads a flag for review; the evidence view is logged with `purpose` in the same transaction.
    /// `hashes`: also each stored attachment's MD5 and PDQ, computed from its bytes in the same
    /// read (hashing shows no one the attachment, so it is not a view of it).
    public func reviewFlag(_ name: String, purpose: String, hashes: Bool = false) throws -> ReviewView {
        try write { db, log in
            let (rowID, key) = try resolveFlag(name, db: db)
            let me = try requireRole(db: db, log: log, .read)
            let flag = try loadFlag(rowID: rowID, db: db)
            let review = try Projection.review(rowID, db: db)
            let all = try decisions(flagRowIDs: [rowID], db: db)
            let shown = all.filter { !BlindReview.hides(decisionBy: $0.reviewer, review, from: me) }
            try log.record(.evidenceView(.init(purpose: purpose)), subjectID: key, evidenceHash: flag.evidenceHash)
            var view = ReviewView(flag: flag, review: review, decisions: shown, decisionsHidden: shown.count < all.count)
            view.matches = try matches(flagRow: rowID, db: db)
            if hashes { view.attachmentHashes = try attachmentHashes(flag, db: db) }
            return view
        }
    }
}

extension Store {
    /// Refuses, and logs the refusal, unless the acting user's role carries one of `permissions`
    /// (for reads that write no entry of their own).
    public func requirePermission(_ permissions: Permission...) throws {
        let me = try read { db in try currentReviewer(db: db) }
        guard let first = permissions.first, !permissions.contains(where: { $0.roles.contains(me.role) }) else { return }
        do { try first.require(me) } catch {
            try? recordRefusal(error, verb: first.rawValue)
            throw error
        }
    }
}

extension Store {
    /// The flags a user of `role` would draw next, in the order they draw them: the lead queue
    /// before the moderator queue for a lead.
    public func reviewQueue(limit: Int, role: Role) throws -> [QueueItem] {
        try requirePermission(.read)
        var items: [QueueItem] = []
        for q in ReviewQueue.drawn(by: role) where items.count < limit {
            items += try queueItems(limit: limit - items.count, lead: q == .lead)
        }
        return items
    }
}

extension Store {
    /// The custody timeline as a person reads it (`custos audit log`): the entries (about
    /// `subjects` only, when given), with the details of every decision the reader may not see
    /// under blind review withheld. Reading a flag's entries is an evidence read (its decisions'
    /// reasons describe the conversation): logged per flag, in the same transaction.
    public func readCustodyLog(subjects: [String]? = nil) throws -> [CustodyEntry] {
        // A flag among the subjects makes the read an evidence read, which is written; the
        // whole timeline (or a case's, a user's) is only read, so a read-only copy shows it.
        let flags = try read { db in (subjects ?? []).compactMap { try? resolveFlag($0, db: db) } }
        guard !flags.isEmpty else {
            return try read { db in try blindRead(subjects: subjects, reader: try currentReviewer(db: db), db: db) }
        }
        return try write { db, log in
            let entries = try blindRead(subjects: subjects, reader: try requireRole(db: db, log: log, .read), db: db)
            for (rowID, key) in flags {
                let hash = try String.fetchOne(db.cachedStatement(sql: "SELECT c.evidence_hash FROM flags f JOIN conversations c ON c.id = f.conversation_id WHERE f.id = ?"), arguments: [rowID])
                try log.record(.evidenceView(.init(purpose: "custody log read")), subjectID: key, evidenceHash: hash)
            }
            return entries
        }
    }

    /// The entries (about `subjects`, when given), with every decision `reader` may not see
    /// under blind review withheld.
    private func blindRead(subjects: [String]?, reader me: Reviewer, db: Database) throws -> [CustodyEntry] {
        var sql: SQL = "SELECT * FROM custody"
        if let subjects { sql += " WHERE subject_id IN \(subjects)" }
        sql += " ORDER BY seq"
        var entries = try CustodyEntry.fetchAll(db, SQLRequest<CustodyEntry>(literal: sql))
        var reviews: [String: FlagReview?] = [:]
        func review(_ key: String) throws -> FlagReview? {
            if let known = reviews[key] { return known }
            let r = try (try? resolveFlag(key, db: db)).map { try Projection.review($0.0, db: db) }
            reviews[key] = r
            return r
        }
        // Platform action entries carry the category a current round's decision chose.
        var actionFlags: [String: String] = [:]
        if try db.tableExists("action_requests") {
            for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT r.id, f.detector, f.flag_id FROM action_requests r JOIN flags f ON f.id = r.flag")) {
                actionFlags[row["id"]] = FlagKey.make(detector: row["detector"], flagID: row["flag_id"])
            }
        }
        for i in entries.indices {
            let e = entries[i]
            if e.action == CustodyAction.flagDecide.rawValue {
                if let r = try review(e.subjectID), BlindReview.hides(decisionBy: e.actor, r, from: me) {
                    entries[i].details = #"{"withheld":"blind review: you may still decide this flag"}"#
                }
            } else if e.subjectType == SubjectType.action.rawValue, let flag = actionFlags[e.subjectID], let r = try review(flag),
                      BlindReview.hidesActions(r, from: me) {
                entries[i].details = #"{"withheld":"blind review: a platform action on a flag you may still decide"}"#
            }
        }
        return entries
    }
}
