import Foundation

/// The workflow state a custody log implies: a pure fold of its entries, in order. `audit
/// verify` compares the store's tables with it, so a table edited behind the log's back (a
/// role, a setting, a flag's state, a decision, a checkpoint, the organisation or its key) is
/// named. Decisions are replayed through the review rules, so a log whose decisions break them
/// (four eyes, lead queue) is named too.
///
/// Covered today: users, settings, agencies, flag review states, decisions, checkpoints and
/// the store's organisation and key. Cases, routes, referrals and holds are not yet folded.
public struct Replay: Sendable {
    public struct DecisionFact: Sendable, Equatable {
        public var reviewer: String
        public var stage: String
        public var outcome: String
        public var reason: String
        public var category: String?
        public var final: Bool
        public init(reviewer: String, stage: String, outcome: String, reason: String, category: String?, final: Bool) {
            self.reviewer = reviewer; self.stage = stage; self.outcome = outcome; self.reason = reason; self.category = category; self.final = final
        }
    }

    public struct UserFact: Sendable, Equatable {
        public var role: Role
        public var disabled: Bool
        public init(role: Role, disabled: Bool) { self.role = role; self.disabled = disabled }
    }

    public var organisation: String?
    public var contactEmail: String?
    public var origin: String?
    public var keyFingerprint: String?
    public var users: [String: UserFact] = [:]
    public var settings: [String: String] = Dictionary(uniqueKeysWithValues: Setting.allCases.map { ($0.rawValue, $0.defaultValue) })
    public var agencies: [String: Agency] = Dictionary(uniqueKeysWithValues: Agency.seeded.map { ($0.code, $0) })
    /// Review states of the flags any entry touched after their ingest; every other ingested
    /// flag is in the initial state (kept implicit, so a million untouched flags cost nothing).
    public var flags: [String: FlagReview] = [:]
    /// How many flags were ingested.
    public var ingested = 0
    public var decisions: [String: [DecisionFact]] = [:]
    public var checkpoints: [Int64: (size: Int64, root: String)] = [:]
    /// Entries that break the rules, named.
    public private(set) var problems: [String] = []

    public init() {}

    /// Folds one entry in.
    public mutating func apply(_ e: CustodyEntry) {
        guard let action = CustodyAction(rawValue: e.action) else {
            problems.append("custody entry \(e.seq): unknown action \(quoted(e.action))"); return
        }
        // The commonest entries carry no state the fold needs beyond their subject.
        switch action {
        case .flagIngest: ingested += 1; return
        case .flagRelease:
            flags[e.subjectID]?.holder = nil
            flags[e.subjectID]?.leaseExpiresMillis = nil
            return
        case .evidenceView, .refused, .caseOpen, .caseAddFlag, .caseRoute, .caseMerge, .caseMergedInto, .caseSplit, .caseExport, .referralReceipt:
            return
        default: break
        }
        guard case .object(let d)? = try? JSONValue.parse(Array(e.details.utf8)) else {
            problems.append("custody entry \(e.seq): details are not a JSON object"); return
        }
        func string(_ k: String) -> String? { d[k]?.stringValue }
        func problem(_ text: String) { problems.append("custody entry \(e.seq) (\(e.action) \(e.subjectID)): \(text)") }
        switch action {
        case .storeInit:
            organisation = string("org"); contactEmail = string("contact_email")
        case .keyCreate:
            keyFingerprint = e.subjectID; origin = string("origin")
        case .userAdd:
            guard let role = string("role").flatMap(Role.init(rawValue:)) else { return problem("no role") }
            users[e.subjectID] = UserFact(role: role, disabled: false)
        case .userDisable:
            users[e.subjectID]?.disabled = true
            // A disabled user's claims go back to the queue.
            for (key, f) in flags where f.holder == e.subjectID {  // a claim always touches the flag
                flags[key]?.holder = nil
                flags[key]?.leaseExpiresMillis = nil
            }
        case .settingsSet:
            guard let value = string("value") else { return problem("no value") }
            settings[e.subjectID] = value
        case .agencyAdd, .agencySet:
            let before = agencies[e.subjectID]
            let jurisdictions = d["jurisdictions"]?.arrayValue?.compactMap(\.stringValue) ?? before?.jurisdictions
            guard let name = string("name") ?? before?.name, let jurisdictions,
                  let profile = string("profile").flatMap(AgencyProfile.init(rawValue:)) ?? before?.profile,
                  let route = string("route").flatMap(AgencyRoute.init(rawValue:)) ?? before?.route,
                  let days = d["retention_days"]?.intValue.map(Int.init) ?? before?.retentionDays else { return problem("incomplete agency") }
            agencies[e.subjectID] = Agency(code: e.subjectID, name: name, jurisdictions: jurisdictions, profile: profile, route: route, retentionDays: days)
        case .flagClaim:
            flags[e.subjectID, default: FlagReview()].holder = string("holder") ?? e.actor
            flags[e.subjectID]?.leaseExpiresMillis = string("lease_expires").flatMap(Timestamp.parse)?.epochMillis
        case .flagDecide:
            let state = flags[e.subjectID] ?? FlagReview()
            guard let outcome = string("outcome").flatMap(Outcome.init(rawValue:)), let reason = string("reason") else { return problem("incomplete decision") }
            let category = string("category")
            // The review rules, replayed: the transition must be legal for who decided, when.
            let role = users[e.actor]?.role ?? .moderator
            do {
                let next = try ReviewRules.transition(e.subjectID, state, outcome: outcome, reviewer: Reviewer(name: e.actor, role: role),
                                                      category: category, secondReviewRequired: settings[Setting.secondReview.rawValue] != "off")
                if next.status.rawValue != string("result") { problem("it records \(string("result") ?? "no result"), the review rules give \(next.status.rawValue)") }
            } catch {
                problem("the decision breaks the review rules: \(error)")
            }
            let stage = state.status.rawValue
            let final: Bool = if case .bool(true)? = d["final"] { true } else { false }
            flags[e.subjectID] = ReviewRules.settled(state, to: string("result").flatMap(FlagStatus.init(rawValue:)) ?? state.status,
                                                     by: e.actor, category: category,
                                                     annotations: d["annotations"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                                     urgent: string("urgent"))
            decisions[e.subjectID, default: []].append(DecisionFact(reviewer: e.actor, stage: stage, outcome: outcome.rawValue,
                                                                    reason: reason, category: category, final: final))
        case .flagReopen:
            let state = flags[e.subjectID] ?? FlagReview()
            decisions[e.subjectID, default: []].append(DecisionFact(reviewer: e.actor, stage: state.status.rawValue, outcome: "reopen",
                                                                    reason: string("reason") ?? "", category: nil, final: false))
            flags[e.subjectID] = ReviewRules.reopened(state)
        case .auditCheckpoint:
            guard let id = Int64(e.subjectID), let size = d["size"]?.intValue, let root = string("root") else { return problem("incomplete checkpoint") }
            checkpoints[id] = (size, root)
        case .flagIngest, .flagRelease, .evidenceView, .refused, .caseOpen, .caseAddFlag, .caseRoute, .caseMerge, .caseMergedInto,
             .caseSplit, .caseExport, .referralReceipt:
            break  // handled before the details are parsed
        }
    }
}

extension Agency {
    /// The agencies schema 3 seeds every store with (migrations/0003_review.sql), before any
    /// entry: the fold's starting point for agencies.
    public static let seeded: [Agency] = [
        Agency(code: "NCMEC", name: "NCMEC CyberTipline", jurisdictions: ["US"], profile: .cybertipline, route: .always, retentionDays: 365),
        Agency(code: "NCA", name: "National Crime Agency (CEOP)", jurisdictions: ["GB"], profile: .generic, route: .jurisdiction, retentionDays: 365),
        Agency(code: "C3P", name: "Canadian Centre for Child Protection (Cybertip.ca)", jurisdictions: ["CA"], profile: .generic, route: .jurisdiction, retentionDays: 21),
        Agency(code: "ACCCE", name: "Australian Centre to Counter Child Exploitation", jurisdictions: ["AU"], profile: .generic, route: .jurisdiction, retentionDays: 365),
    ]
}
