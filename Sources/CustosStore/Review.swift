import CustosCore
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
    public let status: String
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
    public let status: String
}

public struct DecisionResult: Sendable {
    public let key: String
    public let status: FlagStatus
    public let note: String
    public let caseID: String?
}

extension Store {
    // MARK: users and permissions

    @discardableResult
    func requireRole(db: Database, log: CustodyLog, _ permission: Permission) throws -> Role {
        let role = try currentRole(db: db)
        guard permission.roles.contains(role) else {
            let need = permission.roles.map(\.rawValue).sorted().joined(separator: " or ")
            throw StoreError("\(actor.name) is a \(role.rawValue); \(permission.summary) needs the \(need) role")
        }
        return role
    }

    func requireReader(db: Database, log: CustodyLog) throws { try requireRole(db: db, log: log, .read) }

    func currentRole(db: Database) throws -> Role {
        guard let row = try Row.fetchOne(db, sql: "SELECT role, disabled FROM users WHERE name = ?", arguments: [actor.name]) else {
            throw StoreError("unknown user \(quoted(actor.name)): an admin adds users with `custos user add NAME --role ROLE`")
        }
        guard (row["disabled"] as Int64) == 0 else { throw StoreError("user \(quoted(actor.name)) is disabled") }
        guard let role = Role(rawValue: row["role"]) else { throw StoreError("user \(quoted(actor.name)) has an unknown role") }
        return role
    }

    public func addUser(name: String, role: Role) throws {
        guard !name.isEmpty, name.utf8.count <= 128, !name.contains(where: { $0.isWhitespace || $0.isNewline || $0 == ":" }),
              name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.properties.generalCategory != .format }) else {
            throw StoreError("user name \(quoted(name)) must be 1–128 characters without spaces, colons or control characters")
        }
        try write { db, log in
            try requireRole(db: db, log: log, .manageUsers)
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [name]) == true {
                throw StoreError("user \(quoted(name)) already exists")
            }
            try db.execute(sql: "INSERT INTO users(name, role, created_at) VALUES (?, ?, ?)", arguments: [name, role.rawValue, log.now])
            try log.append(action: "user.add", subjectType: "user", subjectID: name, details: .object(["role": .string(role.rawValue)]))
        }
    }

    public func disableUser(name: String) throws {
        try write { db, log in
            try requireRole(db: db, log: log, .manageUsers)
            guard let disabled = try Int64.fetchOne(db, sql: "SELECT disabled FROM users WHERE name = ?", arguments: [name]) else {
                throw StoreError("no user \(quoted(name))")
            }
            if disabled != 0 { throw StoreError("user \(quoted(name)) is already disabled") }
            try db.execute(sql: "UPDATE users SET disabled = 1 WHERE name = ?", arguments: [name])
            // A disabled user's claims go back to the queue.
            try db.execute(sql: "UPDATE flag_state SET claimed_by = NULL, claim_expires_ms = NULL WHERE claimed_by = ?", arguments: [name])
            try log.append(action: "user.disable", subjectType: "user", subjectID: name)
        }
    }

    public func users() throws -> [UserRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY name").map {
                UserRecord(name: $0["name"], role: Role(rawValue: $0["role"]) ?? .moderator,
                           disabled: ($0["disabled"] as Int64) != 0, createdAt: $0["created_at"])
            }
        }
    }

    // MARK: settings

    public static let settingKeys: [String: @Sendable (String) -> Bool] = [
        "second-review": { $0 == "required" || $0 == "off" },
        "lease-minutes": { Int($0).map { $0 >= 1 && $0 <= 24 * 60 } ?? false },
        "urgent-sla-minutes": { Int($0).map { $0 >= 1 } ?? false },
    ]

    public func setSetting(_ key: String, _ value: String) throws {
        guard let valid = Store.settingKeys[key] else {
            throw StoreError("unknown setting \(quoted(key)); known: \(Store.settingKeys.keys.sorted().joined(separator: ", "))")
        }
        guard valid(value) else { throw StoreError("invalid value \(quoted(value)) for \(key)") }
        try write { db, log in
            try requireRole(db: db, log: log, .manageSettings)
            let old = try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key])
            try db.execute(sql: "INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", arguments: [key, value])
            try log.append(action: "settings.set", subjectType: "setting", subjectID: key,
                           details: .object([("value", .string(value)), ("previous", old.map { .string($0) })]))
        }
    }

    public func settings() throws -> [(String, String)] {
        try read { db in try Row.fetchAll(db, sql: "SELECT key, value FROM settings ORDER BY key").map { ($0["key"], $0["value"]) } }
    }

    func setting(_ key: String, db: Database) throws -> String {
        try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) ?? ""
    }

    // MARK: queue and claims

    func afterIngest(flagRowID: Int64, record: FlagRecord, db: Database) throws {
        try db.cachedStatement(sql: "INSERT INTO flag_state(flag, status, queue, score_rank, detected_ms) VALUES (?, 'open', 1, ?, ?)")
                       .execute(arguments: [flagRowID, record.score ?? -1, record.detectedAt.epochMillis])
    }

    /// Open, unclaimed flags in priority order: urgent, score (unscored last), oldest detection.
    public func queue(limit: Int, lead: Bool = false) throws -> [QueueItem] {
        let now = clock()
        return try read { db in
            try Row.fetchAll(db, sql: """
                SELECT f.detector, f.flag_id, f.score, f.detected_at, f.platform, s.status, s.urgent, s.urgent_reason
                FROM flag_state s INDEXED BY flag_state_queue JOIN flags f ON f.id = s.flag
                WHERE s.queue = ? AND (s.claimed_by IS NULL OR s.claim_expires_ms <= ?)
                ORDER BY s.urgent DESC, s.score_rank DESC, s.detected_ms, s.flag
                LIMIT ?
                """, arguments: [lead ? 2 : 1, now, limit]).map {
                QueueItem(key: FlagKey.make(detector: $0["detector"], flagID: $0["flag_id"]), status: $0["status"],
                          urgent: ($0["urgent"] as Int64) != 0, urgentReason: $0["urgent_reason"], score: $0["score"],
                          detectedAt: $0["detected_at"], platform: $0["platform"])
            }
        }
    }

    /// Claims the named flag, or the next one in the actor's queue, under a lease. The
    /// IMMEDIATE transaction makes claims exclusive across processes.
    public func claim(_ name: String?, for assignee: String? = nil) throws -> Claim {
        let now = clock()
        return try write { db, log in
            if let assignee { return try reassign(name, to: assignee, now: now, db: db, log: log) }
            let role = try requireRole(db: db, log: log, .claim)
            let lease = Int64(try setting("lease-minutes", db: db)) ?? 15
            let rowID: Int64
            if let name {
                rowID = try resolveFlag(name, db: db).rowID
                guard let s = try Row.fetchOne(db, sql: "SELECT status, queue, claimed_by, claim_expires_ms, first_reviewer FROM flag_state WHERE flag = ?", arguments: [rowID]) else {
                    throw StoreError("flag \(quoted(name)) has no review state")
                }
                let status: String = s["status"]
                guard s["queue"] as Int64? != nil else { throw StoreError("flag \(quoted(name)) is \(status); there is nothing to claim") }
                if (s["queue"] as Int64) == 2 && role != .lead {
                    throw StoreError("flag \(quoted(name)) is in lead_review; only a lead can claim it")
                }
                if let holder: String = s["claimed_by"], (s["claim_expires_ms"] as Int64? ?? 0) > now, holder != actor.name {
                    throw StoreError("flag \(quoted(name)) is claimed by \(holder) until \(Timestamp.utcString(millis: s["claim_expires_ms"]))")
                }
                if status == FlagStatus.secondReview.rawValue, (s["first_reviewer"] as String?) == actor.name {
                    throw StoreError("flag \(quoted(name)) is in second_review and you gave the first confirmation; another reviewer must take it")
                }
            } else {
                var found: Int64?
                for q in role == .lead ? [2, 1] : [1] {
                    found = try Int64.fetchOne(db, sql: """
                        SELECT flag FROM flag_state INDEXED BY flag_state_queue
                        WHERE queue = ? AND (claimed_by IS NULL OR claim_expires_ms <= ?)
                          AND (first_reviewer IS NULL OR first_reviewer <> ? OR status <> 'second_review')
                        ORDER BY urgent DESC, score_rank DESC, detected_ms, flag LIMIT 1
                        """, arguments: [q, now, actor.name])
                    if found != nil { break }
                }
                guard let found else { throw StoreError("the queue is empty: no open, unclaimed flag for \(actor.name)") }
                rowID = found
            }
            let expires = now + lease * 60_000
            try db.execute(sql: "UPDATE flag_state SET claimed_by = ?, claim_expires_ms = ? WHERE flag = ?",
                           arguments: [actor.name, expires, rowID])
            let key = try flagKey(rowID, db: db)
            let status = try String.fetchOne(db, sql: "SELECT status FROM flag_state WHERE flag = ?", arguments: [rowID]) ?? "?"
            try log.append(action: "flag.claim", subjectType: "flag", subjectID: key,
                           details: .object(["lease_expires": .string(Timestamp.utcString(millis: expires)), "status": .string(status)]))
            return Claim(key: key, holder: actor.name, expiresAt: Timestamp.utcString(millis: expires), status: status)
        }
    }

    /// A lead hands a flag to a reviewer: any current claim ends, the assignee holds it under a
    /// new lease. Logged with the previous holder.
    private func reassign(_ name: String?, to assignee: String, now: Int64, db: Database, log: CustodyLog) throws -> Claim {
        try requireRole(db: db, log: log, .reassign)
        guard let name else { throw StoreError("name the flag to reassign: custos claim FLAG --for USER") }
        guard let row = try Row.fetchOne(db, sql: "SELECT role, disabled FROM users WHERE name = ?", arguments: [assignee]),
              (row["disabled"] as Int64) == 0, let role = Role(rawValue: row["role"]), Permission.claim.roles.contains(role) else {
            throw StoreError("\(quoted(assignee)) is not an enabled moderator or lead")
        }
        let (rowID, key) = try resolveFlag(name, db: db)
        guard let s = try Row.fetchOne(db, sql: "SELECT status, queue, claimed_by, claim_expires_ms, first_reviewer FROM flag_state WHERE flag = ?", arguments: [rowID]),
              let queue = s["queue"] as Int64? else {
            throw StoreError("flag \(quoted(key)) is decided; there is nothing to reassign")
        }
        if queue == 2 && role != .lead { throw StoreError("flag \(quoted(key)) is in lead_review; only a lead can hold it") }
        if (s["status"] as String) == FlagStatus.secondReview.rawValue, (s["first_reviewer"] as String?) == assignee {
            throw StoreError("\(assignee) gave the first confirmation of \(quoted(key)); another reviewer must give the second")
        }
        let previous: String? = (s["claim_expires_ms"] as Int64? ?? 0) > now ? s["claimed_by"] : nil
        let lease = Int64(try setting("lease-minutes", db: db)) ?? 15
        let expires = now + lease * 60_000
        try db.execute(sql: "UPDATE flag_state SET claimed_by = ?, claim_expires_ms = ? WHERE flag = ?", arguments: [assignee, expires, rowID])
        if let previous {
            try log.append(action: "flag.release", subjectType: "flag", subjectID: key,
                           details: .object(["holder": .string(previous), "reason": .string("reassigned to \(assignee)")]))
        }
        try log.append(action: "flag.claim", subjectType: "flag", subjectID: key, details: .object([
            "lease_expires": .string(Timestamp.utcString(millis: expires)), "status": .string(s["status"]),
            "assigned_by": .string(actor.name), "holder": .string(assignee)]))
        return Claim(key: key, holder: assignee, expiresAt: Timestamp.utcString(millis: expires), status: s["status"])
    }

    /// Releases a claim: the holder's own, or anyone's for a lead.
    public func release(_ name: String) throws {
        let now = clock()
        try write { db, log in
            let role = try requireRole(db: db, log: log, .claim)
            let (rowID, key) = try resolveFlag(name, db: db)
            guard let holder = try String.fetchOne(db, sql: "SELECT claimed_by FROM flag_state WHERE flag = ? AND claim_expires_ms > ?", arguments: [rowID, now]) else {
                throw StoreError("flag \(quoted(key)) is not claimed")
            }
            if holder != actor.name && role != .lead {
                throw StoreError("flag \(quoted(key)) is claimed by \(holder); only they or a lead can release it")
            }
            try db.execute(sql: "UPDATE flag_state SET claimed_by = NULL, claim_expires_ms = NULL WHERE flag = ?", arguments: [rowID])
            try log.append(action: "flag.release", subjectType: "flag", subjectID: key, details: .object(["holder": .string(holder)]))
        }
    }

    func flagKey(_ rowID: Int64, db: Database) throws -> String {
        guard let r = try Row.fetchOne(db, sql: "SELECT detector, flag_id FROM flags WHERE id = ?", arguments: [rowID]) else {
            throw StoreError("no flag \(rowID)")
        }
        return FlagKey.make(detector: r["detector"], flagID: r["flag_id"])
    }

    // MARK: decisions

    public func decide(_ name: String, outcome: Outcome, reason: String, category: Category?, urgent: String?,
                       annotations: [Annotation]) throws -> DecisionResult {
        let now = clock()
        guard !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw StoreError("--reason must not be empty") }
        if outcome == .confirm && category == nil {
            throw StoreError("a confirmation needs --category (one of: \(Category.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return try write { db, log in
            let role = try requireRole(db: db, log: log, .decide)
            let (rowID, key) = try resolveFlag(name, db: db)
            guard let s = try Row.fetchOne(db, sql: "SELECT * FROM flag_state WHERE flag = ?", arguments: [rowID]) else {
                throw StoreError("flag \(quoted(key)) has no review state")
            }
            guard let status = FlagStatus(rawValue: s["status"]) else { throw StoreError("flag \(quoted(key)) has an unknown status") }
            let holder: String? = s["claimed_by"]
            let live = (s["claim_expires_ms"] as Int64? ?? 0) > now
            if role != .lead {
                guard live, holder == actor.name else {
                    throw StoreError(live && holder != nil
                        ? "flag \(quoted(key)) is claimed by \(holder!); only the claim holder or a lead decides it"
                        : "claim flag \(quoted(key)) first (`custos claim \(key)`); only the claim holder or a lead decides it")
                }
            } else if live, let holder, holder != actor.name, status != .leadReview {
                throw StoreError("flag \(quoted(key)) is claimed by \(holder); release it first (`custos release \(key)`)")
            }
            let secondRequired = try setting("second-review", db: db) != "off"
            let next: ReviewRules.Next
            do {
                next = try ReviewRules.decide(status: status, outcome: outcome, reviewer: actor.name, isLead: role == .lead,
                                              firstReviewer: s["first_reviewer"], firstCategory: s["category"],
                                              category: category?.rawValue, secondReviewRequired: secondRequired)
            } catch {
                throw StoreError("flag \(quoted(key)): \(error)")
            }
            let annotationsJSON: String? = annotations.isEmpty ? nil
                : JSONValue.array(Array(Set(annotations.map(\.rawValue))).sorted().map { .string($0) }).canonicalString
            try db.execute(sql: """
                INSERT INTO decisions(flag, reviewer, stage, outcome, reason, category, annotations, urgent_reason, at, at_ms, final)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [rowID, actor.name, status.rawValue, outcome.rawValue, reason, category?.rawValue,
                                 annotationsJSON, urgent, log.now, now, next.final ? 1 : 0])
            let queue: Int? = switch next.status {
            case .open, .secondReview: 1
            case .leadReview: 2
            case .confirmed, .dismissed: nil
            }
            let firstReviewer: String? = status == .open && next.status == .secondReview ? actor.name : (s["first_reviewer"] as String?)
            let mergedAnnotations = Set(((try? (s["annotations"] as String?).map { try JSONValue.parse(Data($0.utf8)) } ?? nil)??.arrayValue ?? [])
                .compactMap(\.stringValue)).union(annotations.map(\.rawValue))
            try db.execute(sql: """
                UPDATE flag_state SET status = ?, queue = ?, claimed_by = NULL, claim_expires_ms = NULL, first_reviewer = ?,
                    category = coalesce(?, category), annotations = ?,
                    urgent = CASE WHEN ? IS NOT NULL THEN 1 ELSE urgent END,
                    urgent_reason = coalesce(?, urgent_reason)
                WHERE flag = ?
                """, arguments: [next.status.rawValue, queue, firstReviewer, category?.rawValue,
                                 mergedAnnotations.isEmpty ? nil : JSONValue.array(mergedAnnotations.sorted().map { .string($0) }).canonicalString,
                                 urgent, urgent, rowID])
            try log.append(action: "flag.decide", subjectType: "flag", subjectID: key, details: .object([
                ("outcome", .string(outcome.rawValue)), ("reason", .string(reason)), ("stage", .string(status.rawValue)),
                ("category", category.map { .string($0.rawValue) }), ("urgent", urgent.map { .string($0) }),
                ("annotations", annotations.isEmpty ? nil : .array(annotations.map { .string($0.rawValue) })),
                ("result", .string(next.status.rawValue)), ("final", .bool(next.final)),
            ]))
            var caseID: String?
            if next.status == .confirmed {
                caseID = try fileIntoCase(rowID: rowID, key: key, db: db, log: log)
            }
            return DecisionResult(key: key, status: next.status, note: next.note, caseID: caseID)
        }
    }

    /// A lead reopens a dismissed flag; it returns to the moderator queue.
    public func reopen(_ name: String, reason: String) throws {
        let now = clock()
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw StoreError("--reason must not be empty") }
        try write { db, log in
            try requireRole(db: db, log: log, .leadDecide)
            let (rowID, key) = try resolveFlag(name, db: db)
            let status = try String.fetchOne(db, sql: "SELECT status FROM flag_state WHERE flag = ?", arguments: [rowID]) ?? "?"
            guard status == FlagStatus.dismissed.rawValue else {
                throw StoreError("flag \(quoted(key)) is \(status); only a dismissed flag can be reopened")
            }
            try db.execute(sql: "INSERT INTO decisions(flag, reviewer, stage, outcome, reason, at, at_ms) VALUES (?, ?, 'dismissed', 'reopen', ?, ?, ?)",
                           arguments: [rowID, actor.name, reason, log.now, now])
            try db.execute(sql: "UPDATE flag_state SET status = 'open', queue = 1, first_reviewer = NULL, category = NULL WHERE flag = ?", arguments: [rowID])
            try log.append(action: "flag.reopen", subjectType: "flag", subjectID: key, details: .object(["reason": .string(reason)]))
        }
    }

    public struct DecisionRecord: Sendable {
        public let flagKey: String
        public let reviewer: String
        public let stage: String
        public let outcome: String
        public let reason: String
        public let category: String?
        public let annotations: [String]
        public let urgentReason: String?
        public let at: String
        public let final: Bool
    }

    func decisions(flagRowIDs: [Int64], db: Database) throws -> [DecisionRecord] {
        guard !flagRowIDs.isEmpty else { return [] }
        return try Row.fetchAll(db, sql: """
            SELECT d.*, f.detector, f.flag_id FROM decisions d JOIN flags f ON f.id = d.flag
            WHERE d.flag IN (\(flagRowIDs.map { String($0) }.joined(separator: ","))) ORDER BY d.id
            """).map { r in
            let ann = (r["annotations"] as String?).flatMap { try? JSONValue.parse(Data($0.utf8)) }?.arrayValue?.compactMap(\.stringValue) ?? []
            return DecisionRecord(flagKey: FlagKey.make(detector: r["detector"], flagID: r["flag_id"]), reviewer: r["reviewer"],
                                  stage: r["stage"], outcome: r["outcome"], reason: r["reason"], category: r["category"],
                                  annotations: ann, urgentReason: r["urgent_reason"], at: r["at"], final: (r["final"] as Int64) != 0)
        }
    }
}
