import CustosCore
import Foundation
import GRDB

/// An endpoint the platform listens on for one kind of action (`custos action add`).
public struct ActionEndpointRecord: Sendable {
    public let name: String
    public let url: String
    public let kind: ActionKind
    public let triggers: [ActionTrigger]
    public let categories: [String]
    public let disabled: Bool
    public let disabledReason: String?
    public let createdAt: String
    public let createdBy: String
}

/// An action requested of the platform, its state and what the platform answered.
public struct ActionRequestRecord: Sendable {
    public let id: String
    public let endpoint: String
    public let kind: ActionKind
    public let trigger: ActionTrigger
    public let flag: String?
    public let caseID: String?
    public let body: String
    public let requestedSeq: Int64
    public let requestedAt: String
    public let state: ActionState
    public let attempts: Int
    public let nextAttemptAt: String?
    public let lastStatus: Int?
    public let lastError: String?
    public let answer: ActionAnswer?
    public let acknowledgedAt: String?
    public let updatedAt: String

    /// In words, for the flag and case pages and `case show`: "suspend-account acknowledged
    /// 2026-12-06T12:03:04Z, platform ref X".
    public var words: String {
        var s = "\(kind.rawValue) \(state.rawValue)"
        switch state {
        case .acknowledged:
            s += " \(acknowledgedAt ?? updatedAt)"
            if let r = answer?.reference { s += ", platform ref \(r)" }
            if let d = answer?.disabledAt { s += ", disabled \(d)" }
            if let n = answer?.userNotified { s += n ? ", user notified" : ", user not notified" }
        case .delivered: s += " \(updatedAt) (no acknowledgement)"
        case .failed: s += " (attempt \(attempts)\(lastStatus.map { ": HTTP \($0)" } ?? "")\(lastError.map { ": \($0)" } ?? ""); next \(nextAttemptAt ?? "?"))"
        case .dead: s += " after \(attempts) attempts\(lastStatus.map { " (HTTP \($0))" } ?? "")\(lastError.map { ": \($0)" } ?? "")"
        case .pending, .sending, .cancelled: s += " \(updatedAt)"
        }
        return s + " (on \(trigger.rawValue), entry \(requestedSeq))"
    }
}

/// One request leased to a deliverer: what to send and with which secrets.
public struct ActionDelivery: Sendable {
    public let id: String
    public let url: String
    public let body: String
    public let secrets: [String]
    public let attempt: Int64
}

/// What one attempt came to (the deliverer's report; the store decides the state it leaves).
public struct ActionOutcome: Sendable {
    public let id: String
    public let attempt: Int64
    public let status: Int?
    public let durationMillis: Int64
    public let answer: [UInt8]?
    public let error: String?
    public let retryAfter: String?
    public init(id: String, attempt: Int64, status: Int?, durationMillis: Int64, answer: [UInt8]?, error: String?, retryAfter: String?) {
        self.id = id; self.attempt = attempt; self.status = status; self.durationMillis = durationMillis; self.answer = answer
        self.error = error; self.retryAfter = retryAfter
    }
}

extension Store {
    // MARK: endpoints

    /// Adds an endpoint and returns its new secret (shown once: only its SHA-256 is logged).
    public func addActionEndpoint(name: String, url: String, kind: ActionKind, triggers: [ActionTrigger]?, categories: [Category]) throws -> String {
        try Store.validateEndpointName(name)
        let url = try ActionURL.validate(url)
        let secret = StandardWebhooks.newSecret()
        try write { db, log in
            try requireRole(db: db, log: log, .manageActions)
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM action_endpoints WHERE name = ?"), arguments: [name]) != true else {
                throw CustosError.conflict(subject: "endpoint \(quoted(name))", reason: "already exists")
            }
            var side = SideFacts(); side.secret = secret
            try log.record(.actionAdd(.init(url: url, kind: kind, triggers: triggers ?? kind.defaultTriggers, categories: categories.map(\.rawValue),
                                            secretSHA256: SHA256Hex.of(secret))), subjectID: name, side: side)
        }
        return secret
    }

    /// Changes an endpoint: its URL, its events or categories, disabled or enabled.
    public func setActionEndpoint(name: String, url: String? = nil, triggers: [ActionTrigger]? = nil, categories: [Category]? = nil,
                                  disabled: Bool? = nil, reason: String? = nil) throws {
        let url = try url.map(ActionURL.validate)
        try write { db, log in
            try requireRole(db: db, log: log, .manageActions)
            let current = try endpoint(name, db: db)
            if let disabled, disabled == current.disabled {
                throw CustosError.invalidState(subject: "endpoint \(quoted(name))", state: disabled ? "disabled" : "enabled", reason: "already")
            }
            guard url != nil || triggers != nil || categories != nil || disabled != nil else {
                throw CustosError.invalidInput(field: "action set", reason: "nothing to change: give --url, --on, --category, or use disable / enable")
            }
            try log.record(.actionSet(.init(url: url, triggers: triggers, categories: categories?.map(\.rawValue), disabled: disabled,
                                            reason: disabled == true ? (reason ?? "disabled by \(actor.name)") : nil)), subjectID: name)
        }
    }

    /// A new secret for an endpoint (shown once); the old one signs beside it for a day.
    public func rotateActionSecret(name: String) throws -> String {
        let secret = StandardWebhooks.newSecret()
        try write { db, log in
            try requireRole(db: db, log: log, .manageActions)
            _ = try endpoint(name, db: db)
            var side = SideFacts(); side.secret = secret
            try log.record(.actionSet(.init(secretSHA256: SHA256Hex.of(secret))), subjectID: name, side: side)
        }
        return secret
    }

    public func actionEndpoints() throws -> [ActionEndpointRecord] {
        try requirePermission(.read)
        return try read { db in
            try String.fetchAll(db.cachedStatement(sql: "SELECT name FROM action_endpoints ORDER BY name")).map { try endpoint($0, db: db) }
        }
    }

    static func validateEndpointName(_ name: String) throws {
        guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x5f }),
              !name.hasPrefix("msg_") else {
            throw CustosError.invalidInput(field: "NAME", reason: "an endpoint's name is 1–64 of a-z, 0-9, - and _ (not starting msg_)")
        }
    }

    private func endpoint(_ name: String, db: Database) throws -> ActionEndpointRecord {
        guard let r = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM action_endpoints WHERE name = ?"), arguments: [name]) else {
            throw CustosError.notFound(kind: "endpoint", name: name)
        }
        func list(_ text: String) -> [String] { ((try? JSONValue.parse(Array(text.utf8)))?.arrayValue ?? []).compactMap(\.stringValue) }
        return ActionEndpointRecord(name: name, url: r["url"], kind: ActionKind(rawValue: r["kind"]) ?? .restrictAccount,
                                    triggers: list(r["triggers"]).compactMap(ActionTrigger.init(rawValue:)), categories: list(r["categories"]),
                                    disabled: (r["disabled"] as Int64) != 0, disabledReason: r["disabled_reason"], createdAt: r["created_at"], createdBy: r["created_by"])
    }

    // MARK: requests, in the transaction of what caused them

    /// What an event is about, for the request's body: never evidence text.
    struct ActionSubject {
        var platform: String
        var accounts: [String]
        var conversations: [String]
        var flag: (row: Int64, key: String)?
        var caseRow: Int64?
        var category: String?
        var urgent: Bool
    }

    /// The subject of a flag's event: its platform, conversation and reported accounts (from the
    /// participants of its evidence document; SQLite extracts them, no message is read).
    func actionSubject(flagRow: Int64, db: Database) throws -> ActionSubject {
        guard let r = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT f.detector, f.flag_id, f.platform, c.external_id, json_extract(e.document, '$.conversation.participants') AS participants,
                   s.category, s.urgent, cf.case_id
            FROM flags f JOIN conversations c ON c.id = f.conversation_id LEFT JOIN evidence e ON e.conversation_id = c.id
            JOIN flag_state s ON s.flag = f.id LEFT JOIN case_flags cf ON cf.flag = f.id WHERE f.id = ?
            """), arguments: [flagRow]) else { throw CustosError.storage(cause: "no flag with row id \(flagRow)") }
        let participants = ((r["participants"] as String?).flatMap { try? JSONValue.parse(Array($0.utf8)) }?.arrayValue ?? []).compactMap { p in
            p["user_id"]?.stringValue.map { Participant(userID: $0, roleHint: p["role_hint"]?.stringValue.flatMap(RoleHint.init(rawValue:)), country: nil) }
        }
        let accounts = CaseRules.reported(Conversation(platform: r["platform"], id: r["external_id"], participants: participants, messages: [])).map(\.userID)
        return ActionSubject(platform: r["platform"], accounts: accounts, conversations: [r["external_id"]],
                             flag: (flagRow, FlagKey.make(detector: r["detector"], flagID: r["flag_id"])), caseRow: r["case_id"],
                             category: r["category"], urgent: (r["urgent"] as Int64? ?? 0) != 0)
    }

    /// The subject of a case's event: its platform, reported accounts and conversations.
    func actionSubject(caseRow: Int64, db: Database) throws -> ActionSubject {
        guard let platform = try String.fetchOne(db.cachedStatement(sql: "SELECT platform FROM cases WHERE id = ?"), arguments: [caseRow]) else {
            throw CustosError.notFound(kind: "case", name: CaseID.format(caseRow))
        }
        return ActionSubject(
            platform: platform,
            accounts: try String.fetchAll(db.cachedStatement(sql: "SELECT user_id FROM case_accounts WHERE case_id = ? ORDER BY user_id"), arguments: [caseRow]),
            conversations: try String.fetchAll(db.cachedStatement(sql: """
                SELECT DISTINCT c.external_id FROM case_flags cf JOIN flags f ON f.id = cf.flag JOIN conversations c ON c.id = f.conversation_id
                WHERE cf.case_id = ? ORDER BY c.external_id
                """), arguments: [caseRow]),
            flag: nil, caseRow: caseRow,
            category: try String.fetchOne(db.cachedStatement(sql: """
                SELECT s.category FROM case_flags cf JOIN flag_state s ON s.flag = cf.flag WHERE cf.case_id = ? AND s.category IS NOT NULL
                ORDER BY cf.flag LIMIT 1
                """), arguments: [caseRow]),
            urgent: try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM case_flags cf JOIN flag_state s ON s.flag = cf.flag WHERE cf.case_id = ? AND s.urgent = 1 LIMIT 1"),
                                      arguments: [caseRow]) ?? false)
    }

    /// Records the requests `trigger` makes of every enabled endpoint listening for it (and for
    /// the subject's category), each naming `cause`, the entry that caused it. Returns their ids.
    @discardableResult
    func requestActions(_ trigger: ActionTrigger, _ subject: ActionSubject, cause: Int64, db: Database, log: CustodyLog) throws -> [String] {
        guard try db.tableExists("action_endpoints") else { return [] }
        var ids: [String] = []
        for name in try String.fetchAll(db.cachedStatement(sql: "SELECT name FROM action_endpoints WHERE disabled = 0 ORDER BY name")) {
            let e = try endpoint(name, db: db)
            guard e.triggers.contains(trigger) else { continue }
            if let category = subject.category, !e.categories.isEmpty, !e.categories.contains(category) { continue }
            if trigger == .flagDismissed {
                // A dismissal lifts only what an earlier request for this flag restricted.
                guard let flag = subject.flag, try restrictedBefore(flagRow: flag.row, db: db) else { continue }
            }
            let id = StandardWebhooks.newMessageID()
            var data: [String: JSONValue] = [
                "event": .string(trigger.rawValue), "platform": .string(subject.platform),
                "accounts": .array(subject.accounts.map(JSONValue.string)), "conversations": .array(subject.conversations.map(JSONValue.string)),
                "urgent": .bool(subject.urgent), "custody_entry": .integer(cause),
            ]
            if let f = subject.flag { data["flag"] = .string(f.key) }
            if let c = subject.caseRow { data["case"] = .string(CaseID.format(c)) }
            if let c = subject.category { data["category"] = .string(c) }
            let body = JSONValue.object(["type": .string(e.kind.rawValue), "timestamp": .string(log.now), "data": .object(data)]).canonicalString
            try log.record(.actionRequest(.init(endpoint: name, kind: e.kind, trigger: trigger, body: body, flag: subject.flag?.key,
                                                caseID: subject.caseRow.map(CaseID.format), requestedBy: cause)), subjectID: id)
            ids.append(id)
        }
        return ids
    }

    private func restrictedBefore(flagRow: Int64, db: Database) throws -> Bool {
        let kinds = ActionKind.allCases.filter(\.restricts).map(\.rawValue)
        return try Bool.fetchOne(db, SQLRequest<Bool>(literal: """
            SELECT 1 FROM action_requests WHERE flag = \(flagRow) AND kind IN \(kinds) AND state != 'cancelled' LIMIT 1
            """)) ?? false
    }

    /// The requests a flag's decision makes: urgent (the flag became urgent), confirmed, dismissed.
    func requestActions(afterDecision seq: Int64, flagRow: Int64, wasUrgent: Bool, status: FlagStatus, db: Database, log: CustodyLog) throws {
        let subject = try actionSubject(flagRow: flagRow, db: db)
        if subject.urgent, !wasUrgent { try requestActions(.flagUrgent, subject, cause: seq, db: db, log: log) }
        if status == .confirmed { try requestActions(.flagConfirmed, subject, cause: seq, db: db, log: log) }
        if status == .dismissed { try requestActions(.flagDismissed, subject, cause: seq, db: db, log: log) }
    }

    // MARK: delivery

    /// Leases up to `limit` due requests to this deliverer for `leaseMillis` (one `action.send`
    /// entry each, in one transaction), after recording `hold.ended` requests for holds that have
    /// ended. A request whose deliverer died mid-attempt is due again once its lease ends.
    public func leaseActions(limit: Int, leaseMillis: Int64 = 60_000) throws -> [ActionDelivery] {
        try requirePermission(.deliverActions)
        // A read first: an idle deliverer polls without writing.
        let now = clock()
        let work = try read { db -> Bool in
            guard try db.tableExists("action_requests") else { return false }
            return try Bool.fetchOne(db.cachedStatement(sql: """
                SELECT 1 FROM action_requests WHERE (state IN ('pending', 'failed') AND next_attempt_ms <= ?) OR (state = 'sending' AND lease_until_ms <= ?)
                   OR (trigger = 'hold.started' AND case_id NOT IN (SELECT case_id FROM action_requests WHERE trigger = 'hold.ended' AND case_id IS NOT NULL))
                LIMIT 1
                """), arguments: [now, now]) ?? false
        }
        guard work else { return [] }
        return try write { db, log in
            try requireRole(db: db, log: log, .deliverActions)
            let now = log.millis
            try requestEndedHolds(now: now, db: db, log: log)
            let due = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT r.id, r.attempts, e.url, r.body, e.secret, e.previous_secret, e.previous_until_ms
                FROM action_requests r JOIN action_endpoints e ON e.name = r.endpoint
                WHERE e.disabled = 0 AND ((r.state IN ('pending', 'failed') AND r.next_attempt_ms <= ?) OR (r.state = 'sending' AND r.lease_until_ms <= ?))
                ORDER BY r.next_attempt_ms, r.requested_seq LIMIT ?
                """), arguments: [now, now, limit])
            guard !due.isEmpty else { return [] }
            // One entry leases the batch (subject: the deliverer); each result is an entry of its request.
            try log.record(.actionSend(.init(attempts: due.map { .init(request: $0["id"], attempt: ($0["attempts"] as Int64) + 1) },
                                             leaseUntil: Timestamp.utcString(millis: now + leaseMillis))), subjectID: actor.name)
            return due.map { r in
                let attempt = (r["attempts"] as Int64) + 1
                var secrets: [String] = [r["secret"]]
                if let previous = r["previous_secret"] as String?, (r["previous_until_ms"] as Int64? ?? 0) > now { secrets.append(previous) }
                return ActionDelivery(id: r["id"], url: r["url"], body: r["body"], secrets: secrets.filter { !$0.hasPrefix(Projection.missingSecret) }, attempt: attempt)
            }
        }
    }

    /// Records what attempts came to, in one transaction: 2xx delivered (acknowledged when the
    /// answer says what was done), 410 Gone dead and the endpoint disabled, anything else failed
    /// with its next attempt (dead once the retry window has passed).
    public func recordActionOutcomes(_ outcomes: [ActionOutcome], random: () -> Double = { Double.random(in: 0...1) }) throws {
        guard !outcomes.isEmpty else { return }
        try write { db, log in
            try requireRole(db: db, log: log, .deliverActions)
            let now = log.millis
            for o in outcomes {
                guard let requested = try Int64.fetchOne(db.cachedStatement(sql: "SELECT requested_ms FROM action_requests WHERE id = ? AND state = 'sending' AND attempts = ?"),
                                                         arguments: [o.id, o.attempt]) else { continue }  // leased again meanwhile: the later attempt records
                var state: ActionState
                var next: Int64?
                var answer: ActionAnswer?
                switch o.status {
                case let s? where (200..<300).contains(s):
                    answer = o.answer.flatMap(ActionAnswer.parse)
                    state = answer == nil ? .delivered : .acknowledged
                case 410?:
                    state = .dead
                default:
                    let wait = ActionRetry.wait(afterAttempt: Int(o.attempt), retryAfterMillis: ActionRetry.retryAfter(o.retryAfter, now: now), random: random())
                    if now + wait > requested + ActionRetry.windowMillis { state = .dead } else { state = .failed; next = now + wait }
                }
                var error = o.error
                if let s = o.status, (300..<400).contains(s) { error = error ?? "redirect not followed" }
                try log.record(.actionAttempt(.init(attempt: o.attempt, state: state, status: o.status.map(Int64.init), durationMillis: o.durationMillis,
                                                    answerSHA256: o.answer.map { SHA256Hex.of($0) }, error: error.map { String($0.prefix(500)) },
                                                    nextAttempt: next.map(Timestamp.utcString(millis:)), answer: answer, gone: o.status == 410)), subjectID: o.id)
            }
        }
    }

    /// `hold.ended` for every case whose preservation hold has ended since a `hold.started`
    /// request was made for it (once per case), caused by the entry that set the hold's end.
    private func requestEndedHolds(now: Int64, db: Database, log: CustodyLog) throws {
        let open = try Int64.fetchAll(db.cachedStatement(sql: """
            SELECT DISTINCT case_id FROM action_requests WHERE trigger = 'hold.started' AND case_id IS NOT NULL
            AND case_id NOT IN (SELECT case_id FROM action_requests WHERE trigger = 'hold.ended' AND case_id IS NOT NULL)
            """))
        guard !open.isEmpty else { return }
        let extended = try holdExtensions(db: db)
        for c in open {
            let ends = try Int64.fetchAll(db.cachedStatement(sql: "SELECT hold_until_ms FROM referrals WHERE case_id = ?"), arguments: [c])
            // The rule `holds` applies (HoldRules), not a second copy of it.
            let end = ends.map { HoldRules.end(of: .init(caseRow: c, holdUntilMillis: $0, flags: []), extensions: extended) }.max() ?? 0
            guard end <= now, let cause = try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT max(seq) FROM custody WHERE subject_type = 'case' AND subject_id = ? AND action IN ('case.export', 'hold.extend')
                """), arguments: [CaseID.format(c)]) else { continue }
            try requestActions(.holdEnded, try actionSubject(caseRow: c, db: db), cause: cause, db: db, log: log)
        }
    }

    // MARK: reading and resolving

    public func actionRequests(flag: String? = nil, caseName: String? = nil, states: [ActionState]? = nil) throws -> [ActionRequestRecord] {
        try requirePermission(.read)
        return try read { db in try actionRequests(flag: flag, caseName: caseName, states: states, db: db) }
    }

    func actionRequests(flag: String? = nil, caseName: String? = nil, states: [ActionState]? = nil, db: Database) throws -> [ActionRequestRecord] {
        guard try db.tableExists("action_requests") else { return [] }
        var sql = """
            SELECT r.*, f.detector, f.flag_id FROM action_requests r LEFT JOIN flags f ON f.id = r.flag WHERE 1
            """
        var args: [DatabaseValueConvertible] = []
        if let flag { sql += " AND r.flag = ?"; args.append(try resolveFlag(flag, db: db).0) }
        if let caseName {
            let c = try resolveCase(caseName, db: db)
            sql += " AND (r.case_id = ? OR r.flag IN (SELECT flag FROM case_flags WHERE case_id = ?))"; args += [c, c]
        }
        if let states { sql += " AND r.state IN (\(states.map { _ in "?" }.joined(separator: ", ")))"; args += states.map(\.rawValue) }
        return try Row.fetchAll(db, sql: sql + " ORDER BY r.requested_seq, r.requested_ms, r.endpoint", arguments: StatementArguments(args)).map(Store.request)
    }

    static func request(_ r: Row) -> ActionRequestRecord {
        let acknowledged = (r["acknowledged_at"] as String?) != nil
        let detector: String? = r["detector"], flagID: String? = r["flag_id"]
        return ActionRequestRecord(
            id: r["id"], endpoint: r["endpoint"], kind: ActionKind(rawValue: r["kind"]) ?? .restrictAccount,
            trigger: ActionTrigger(rawValue: r["trigger"]) ?? .flagUrgent,
            flag: detector.flatMap { d in flagID.map { FlagKey.make(detector: d, flagID: $0) } }, caseID: (r["case_id"] as Int64?).map(CaseID.format),
            body: r["body"], requestedSeq: r["requested_seq"], requestedAt: r["requested_at"], state: ActionState(rawValue: r["state"]) ?? .pending,
            attempts: r["attempts"], nextAttemptAt: (r["next_attempt_ms"] as Int64?).map(Timestamp.utcString(millis:)), lastStatus: r["last_status"],
            lastError: r["last_error"],
            answer: acknowledged ? ActionAnswer(reference: r["reference"], disabledAt: r["disabled_at"],
                                                userNotified: (r["user_notified"] as Int64?).map { $0 != 0 }, userNotifiedAt: r["user_notified_at"]) : nil,
            acknowledgedAt: r["acknowledged_at"], updatedAt: r["updated_at"])
    }

    /// Dead requests (the stats page and `stats` count them).
    /// Whether the acting user may deliver (checked without logging a refusal: `serve` starts
    /// its deliverer only then).
    public func mayDeliverActions() -> Bool {
        (try? read { db in try Permission.deliverActions.roles.contains(currentReviewer(db: db).role) }) ?? false
    }

    public func deadActionCount() throws -> Int {
        try read { db in try Store.deadActionCount(db) }
    }

    /// Requests given up, waiting for a lead (`actions deliver`'s summary and the stats' count).
    static func deadActionCount(_ db: Database) throws -> Int {
        try db.tableExists("action_requests") ? Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM action_requests WHERE state = 'dead'")) ?? 0 : 0
    }

    /// A lead sends a dead or failing request again (due now), or cancels one not yet done.
    public func resolveAction(_ id: String, retry: Bool, reason: String) throws {
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty, reason.utf8.count <= 1024 else {
            throw CustosError.invalidInput(field: "--reason", reason: "must be 1–1024 characters")
        }
        try write { db, log in
            try requireRole(db: db, log: log, .resolveActions)
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT state, lease_until_ms FROM action_requests WHERE id = ?"), arguments: [id]),
                  let state = ActionState(rawValue: row["state"]) else {
                throw CustosError.notFound(kind: "action request", name: id)
            }
            if let refusal = retry ? state.retryRefusal : state.cancelRefusal(leaseUntil: row["lease_until_ms"], now: log.millis) {
                throw CustosError.invalidState(subject: "action request \(id)", state: state.rawValue, reason: refusal)
            }
            try log.record(retry ? .actionRetry(.init(["reason": .string(reason)])) : .actionCancel(.init(["reason": .string(reason)])), subjectID: id)
        }
    }
}
