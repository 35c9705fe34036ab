import CustosCore
import Foundation
import GRDB

public struct CaseSummary: Sendable {
    public let caseID: String
    public let state: CaseState
    public let platform: String
    public let reportedAccounts: [String]
    public let agencies: [(code: String, served: Bool, reason: String)]
    public let flagCount: Int
    public let createdAt: String
}


/// Everything about a case, for `custos case show` and for export.
public struct CaseDetail: Sendable {
    public let summary: CaseSummary
    public let reported: [Person]
    public let victims: [Person]
    public let flags: [StoredFlag]
    public let decisions: [Store.DecisionRecord]
    public let timeline: [CustodyEntry]
    public let category: Category?
    public let annotations: [String]
    public let urgentReasons: [String]
    /// The case's flags whose evidence retention erased: what happened to each.
    public let erased: [String]
}


extension Store {
    /// Files a finally confirmed flag into the open case for its reported account(s) on the
    /// same platform, or a new case; then routes the case.
    func fileIntoCase(rowID: Int64, key: String, db: Database, log: CustodyLog) throws -> String {
        let flag = try loadFlag(rowID: rowID, db: db)
        let reported = CaseRules.reported(flag.conversation).map(\.userID)
        var caseRow: Int64?
        if !reported.isEmpty {
            caseRow = try Int64.fetchOne(db, SQLRequest<Int64>(literal: """
                SELECT c.id FROM cases c JOIN case_accounts a ON a.case_id = c.id
                WHERE c.state = \(CaseState.open.rawValue) AND c.platform = \(flag.platform) AND a.user_id IN \(reported)
                ORDER BY c.id LIMIT 1
                """))
        }
        let caseID: Int64
        if let caseRow {
            caseID = caseRow
        } else {
            caseID = try Store.nextCaseID(db)
            try log.record(.caseOpen(.init(platform: flag.platform, reportedAccounts: reported)), subjectID: CaseID.format(caseID))
        }
        try log.record(.caseAddFlag(.init(flag: key, accounts: reported)), subjectID: CaseID.format(caseID), evidenceHash: flag.evidenceHash)
        try route(caseID: caseID, db: db, log: log)
        return CaseID.format(caseID)
    }

    /// Applies the routing rules (agencies.route) to a case (CaseRules.routes)
    /// whose jurisdiction holds a reported person's or a victim's country.
    func route(caseID: Int64, db: Database, log: CustodyLog) throws {
        // The countries of the case's reported persons and victims, from the participants of
        // its conversations' documents (SQLite extracts them; no message is materialised).
        var conversations: [Conversation] = []
        for text in try String.fetchAll(db.cachedStatement(sql: """
            SELECT json_extract(e.document, '$.conversation.participants') FROM evidence e
            WHERE e.conversation_id IN (SELECT f.conversation_id FROM case_flags cf JOIN flags f ON f.id = cf.flag WHERE cf.case_id = ?)
            ORDER BY e.conversation_id
            """), arguments: [caseID]) {
            let participants = (try? JSONValue.parse(Array(text.utf8)))?.arrayValue ?? []
            conversations.append(Conversation(platform: "", id: "", participants: participants.compactMap { p in
                p["user_id"]?.stringValue.map { Participant(userID: $0, roleHint: p["role_hint"]?.stringValue.flatMap(RoleHint.init(rawValue:)),
                                                            country: p["country"]?.stringValue) }
            }, messages: []))
        }
        let routed = Set(try String.fetchAll(db.cachedStatement(sql: "SELECT agency FROM case_agencies WHERE case_id = ?"), arguments: [caseID]))
        for (agency, reason) in CaseRules.routes(try agencies(db: db), conversations: conversations) where !routed.contains(agency) {
            try log.record(.caseRoute(.init(agency: agency, reason: reason)), subjectID: CaseID.format(caseID))
        }
    }

    func agencies(db: Database) throws -> [Agency] {
        try Agency.order(Agency.Columns.code).fetchAll(db)
    }

    public func agencies() throws -> [Agency] { try read { db in try agencies(db: db) } }

    public func addAgency(code: String, name: String, jurisdictions: [String], profile: AgencyProfile, route: AgencyRoute, retentionDays: Int) throws {
        try validateAgency(code: code, jurisdictions: jurisdictions, retentionDays: retentionDays)
        try write { db, log in
            try requireRole(db: db, log: log, .manageAgencies)
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM agencies WHERE code = ?"), arguments: [code]) == true {
                throw CustosError.conflict(subject: "agency \(quoted(code))", reason: "already exists; use `custos agency set`")
            }
            try log.record(.agencyAdd(.init(name: name, jurisdictions: jurisdictions, profile: profile, route: route, retentionDays: Int64(retentionDays),
                                            publicKey: nil)), subjectID: code)
        }
    }

    public func setAgency(code: String, name: String?, jurisdictions: [String]?, profile: AgencyProfile?, route: AgencyRoute?, retentionDays: Int?,
                          publicKey: String? = nil) throws {
        if let publicKey {
            do { _ = try KeyEncoding.agreementPublicKey(pem: publicKey) } catch { throw CustosError.invalidInput(field: "--public-key", reason: error.description) }
        }
        try write { db, log in
            try requireRole(db: db, log: log, .manageAgencies)
            guard let a = try agencies(db: db).first(where: { $0.code == code }) else { throw CustosError.notFound(kind: "agency", name: code) }
            try validateAgency(code: code, jurisdictions: jurisdictions ?? a.jurisdictions, retentionDays: retentionDays ?? a.retentionDays)
            try log.record(.agencySet(.init(name: name, jurisdictions: jurisdictions, profile: profile, route: route, retentionDays: retentionDays.map(Int64.init),
                                            publicKey: publicKey)), subjectID: code)
        }
    }

    /// The X25519 key an agency's packets are sealed to; an exporter asking to seal for an
    /// agency without one is refused (and the refusal recorded) before anything is written.
    public func sealingKey(agency code: String) throws -> String {
        try write { db, log in
            try requireRole(db: db, log: log, .export)
            guard let agency = try agencies(db: db).first(where: { $0.code == code }) else {
                throw CustosError.notFound(kind: "agency", name: code, hint: "see `custos agency list`")
            }
            guard let pem = agency.publicKey else {
                throw CustosError.invalidState(subject: "agency \(quoted(code))", state: "without a public key",
                                               reason: "record its X25519 key first: custos agency set \(code) --public-key PEM")
            }
            return pem
        }
    }

    private func validateAgency(code: String, jurisdictions: [String], retentionDays: Int) throws {
        guard !code.isEmpty, code.utf8.count <= 32, code.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw CustosError.invalidInput(field: "agency code", reason: "\(quoted(code)) must be 1–32 letters, digits or '-'")
        }
        for j in jurisdictions where !(j.utf8.count == 2 && j.allSatisfy { $0.isASCII && $0.isUppercase }) {
            throw CustosError.invalidInput(field: "--jurisdictions", reason: "\(quoted(j)) is not an ISO 3166-1 alpha-2 code")
        }
        guard Agency.retentionBounds.contains(retentionDays) else {
            throw CustosError.invalidInput(field: "--retention-days", reason: "\(retentionDays) is not from \(Agency.retentionBounds.lowerBound) to \(Agency.retentionBounds.upperBound)")
        }
    }

    // MARK: cases

    public func cases() throws -> [CaseSummary] {
        try requirePermission(.read)
        return try read { db in try Int64.fetchAll(db.cachedStatement(sql: "SELECT id FROM cases ORDER BY id")).map { try caseSummary($0, db: db) } }
    }

    func caseSummary(_ id: Int64, db: Database) throws -> CaseSummary {
        guard let c = try CaseRow.fetchOne(db, key: id) else {
            throw CustosError.notFound(kind: "case", name: CaseID.format(id))
        }
        let accounts = try String.fetchAll(db.cachedStatement(sql: "SELECT user_id FROM case_accounts WHERE case_id = ? ORDER BY user_id"), arguments: [id])
        let agencies = try CaseAgencyRow.filter(Column("case_id") == id).order(Column("agency")).fetchAll(db)
            .map { (code: $0.agency, served: $0.served, reason: $0.reason) }
        let flags = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM case_flags WHERE case_id = ?"), arguments: [id]) ?? 0
        return CaseSummary(caseID: CaseID.format(id), state: try storedWord(c.state, "cases.state"), platform: c.platform, reportedAccounts: accounts,
                           agencies: agencies, flagCount: flags, createdAt: c.createdAt)
    }

    func resolveCase(_ name: String, db: Database) throws -> Int64 {
        guard let id = CaseID.parse(name), try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM cases WHERE id = ?"), arguments: [id]) == true else {
            throw CustosError.notFound(kind: "case", name: name)
        }
        return id
    }

    /// The whole case; reading its evidence is logged (one entry per flag read).
    public func caseDetail(_ name: String, purpose: String = "case show") throws -> CaseDetail {
        try write { db, log in
            try requireReader(db: db, log: log)
            let id = try resolveCase(name, db: db)
            let detail = try caseDetail(id: id, db: db)
            for f in detail.flags {
                try log.record(.evidenceView(.init(purpose: purpose, other: ["case": .string(CaseID.format(id))])), subjectID: f.key, evidenceHash: f.evidenceHash)
            }
            return detail
        }
    }

    func caseDetail(id: Int64, db: Database) throws -> CaseDetail {
        let summary = try caseSummary(id, db: db)
        let flagRows = try Int64.fetchAll(db.cachedStatement(sql: "SELECT flag FROM case_flags WHERE case_id = ? ORDER BY flag"), arguments: [id])
        var flags: [StoredFlag] = [], erased: [String] = [], erasedKeys: [String] = []
        for row in flagRows {
            do { flags.append(try loadFlag(rowID: row, db: db)) } catch let e as CustosError where e.kind == .invalidState {
                erased.append(e.description)  // erased by retention: its history stays, its evidence is gone
                erasedKeys.append(try flagKey(row, db: db))
            }
        }
        let people = CaseRules.people(flags.map { ($0.platform, $0.conversation) })
        let decisions = try decisions(flagRowIDs: flagRows, db: db)
        let subjects = [summary.caseID] + flags.map(\.key) + erasedKeys
        let timeline = try CustodyEntry.fetchAll(db, SQLRequest<CustodyEntry>(literal: "SELECT * FROM custody WHERE subject_id IN \(subjects) ORDER BY seq"))
        let states = try FlagReview.fetchAll(db, SQLRequest<FlagReview>(literal: "SELECT * FROM flag_state WHERE flag IN \(flagRows) ORDER BY flag"))
        let category = states.compactMap(\.category).first.flatMap(Category.init(rawValue:))
        let annotations = Set(states.flatMap(\.annotations))
        return CaseDetail(summary: summary, reported: people.reported, victims: people.victims, flags: flags, decisions: decisions,
                          timeline: timeline, category: category, annotations: annotations.sorted(),
                          urgentReasons: states.compactMap(\.urgentReason), erased: erased)
    }

    /// Moves B's flags and accounts into A; B is marked merged.
    public func mergeCases(_ a: String, _ b: String) throws {
        try write { db, log in
            try requireRole(db: db, log: log, .manageCases)
            let ia = try resolveCase(a, db: db), ib = try resolveCase(b, db: db)
            try CaseRules.merge((CaseID.format(ib), try caseState(ib, db: db)), into: (CaseID.format(ia), try caseState(ia, db: db)))
            let moved = try Int64.fetchAll(db.cachedStatement(sql: "SELECT flag FROM case_flags WHERE case_id = ?"), arguments: [ib])
            let keys = try moved.map { try flagKey($0, db: db) }
            try log.record(.caseMerge(.init(merged: CaseID.format(ib), flags: keys)), subjectID: CaseID.format(ia))
            try log.record(.caseMergedInto(.init(into: CaseID.format(ia))), subjectID: CaseID.format(ib))
            try route(caseID: ia, db: db, log: log)
        }
    }

    /// Moves the named flags out of a case into a new one.
    public func splitCase(_ name: String, flags names: [String]) throws -> String {
        try write { db, log in
            try requireRole(db: db, log: log, .manageCases)
            let id = try resolveCase(name, db: db)
            let all = try Int64.fetchAll(db.cachedStatement(sql: "SELECT flag FROM case_flags WHERE case_id = ?"), arguments: [id])
            let moving = try names.map { try resolveFlag($0, db: db) }
            try CaseRules.split(case: CaseID.format(id), state: try caseState(id, db: db), flags: Set(try all.map { try flagKey($0, db: db) }),
                                moving: moving.map(\.key))
            let platform = try String.fetchOne(db.cachedStatement(sql: "SELECT platform FROM cases WHERE id = ?"), arguments: [id]) ?? ""
            let newID = try Store.nextCaseID(db)
            // Each case keeps the reported accounts of the flags it will hold.
            let movingRows = Set(moving.map(\.0))
            func accounts(_ rows: [Int64]) throws -> [String] {
                var kept = Set<String>()
                for f in rows { kept.formUnion(CaseRules.reported(try loadFlag(rowID: f, db: db).conversation).map(\.userID)) }
                return kept.sorted()
            }
            let kept = try accounts(all.filter { !movingRows.contains($0) }), taken = try accounts(moving.map(\.0))
            try log.record(.caseSplit(.init(newCase: CaseID.format(newID), flags: moving.map(\.1), accounts: kept)), subjectID: CaseID.format(id))
            try log.record(.caseOpen(.init(platform: platform, reportedAccounts: taken, splitFrom: CaseID.format(id))), subjectID: CaseID.format(newID))
            try route(caseID: newID, db: db, log: log)
            return CaseID.format(newID)
        }
    }

    func caseState(_ id: Int64, db: Database) throws -> CaseState {
        try storedWord(try String.fetchOne(db.cachedStatement(sql: "SELECT state FROM cases WHERE id = ?"), arguments: [id]), "cases.state")
    }

    /// The id the next case gets.
    static func nextCaseID(_ db: Database) throws -> Int64 {
        (try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(id) FROM cases")) ?? 0) + 1
    }
}
