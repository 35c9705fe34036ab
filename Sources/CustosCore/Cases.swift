/// A person a case is about, with the platform their account is on (a merged case can span
/// platforms, and one user id on two platforms is two accounts).
public struct Person: Sendable, Equatable {
    public var platform: String
    public var participant: Participant
    public init(platform: String, participant: Participant) { self.platform = platform; self.participant = participant }
}

/// A receiving agency and its routing rule.
public struct Agency: Sendable, Equatable {
    public let code: String
    public let name: String
    public let jurisdictions: [String]
    public let profile: AgencyProfile
    public let route: AgencyRoute
    public let retentionDays: Int
    /// The agency's X25519 public key (PEM) that `export --seal` encrypts packets to.
    public let publicKey: String?

    public init(code: String, name: String, jurisdictions: [String], profile: AgencyProfile, route: AgencyRoute, retentionDays: Int,
                publicKey: String? = nil) {
        self.code = code; self.name = name; self.jurisdictions = jurisdictions; self.profile = profile
        self.route = route; self.retentionDays = retentionDays; self.publicKey = publicKey
    }

    /// Retention in days: at least one, at most a century (so no date arithmetic overflows).
    public static let retentionBounds = 1...36_525
}

/// Who a case reports, who it protects, and which agencies receive it: pure functions of the
/// conversations and the agencies' rules.
public enum CaseRules {
    /// The suspected adults; without role hints, everyone not marked a minor.
    public static func reported(_ c: Conversation) -> [Participant] {
        let adults = c.participants.filter { $0.roleHint == .suspectedAdult }
        return adults.isEmpty ? c.participants.filter { $0.roleHint != .suspectedMinor } : adults
    }

    public static func victims(_ c: Conversation) -> [Participant] {
        c.participants.filter { $0.roleHint == .suspectedMinor }
    }

    /// The reported persons and victims of a case's conversations, each account once (by
    /// platform and user id, first appearance kept), sorted by platform then user id.
    public static func people(_ conversations: [(platform: String, conversation: Conversation)]) -> (reported: [Person], victims: [Person]) {
        func collect(_ pick: (Conversation) -> [Participant]) -> [Person] {
            var seen = Set<[String]>()
            var out: [Person] = []
            for (platform, c) in conversations {
                for p in pick(c) where seen.insert([platform, p.userID]).inserted { out.append(Person(platform: platform, participant: p)) }
            }
            return out.sorted { ($0.platform, $0.participant.userID) < ($1.platform, $1.participant.userID) }
        }
        return (collect(reported), collect(victims))
    }

    /// The agencies a case goes to, with why: `always` agencies, and `jurisdiction` agencies
    /// holding a reported person's or a victim's country (the first such country, sorted).
    public static func routes(_ agencies: [Agency], conversations: [Conversation]) -> [(agency: String, reason: String)] {
        var countries = Set<String>()
        for c in conversations { for p in reported(c) + victims(c) { if let cc = p.country { countries.insert(cc) } } }
        return agencies.compactMap { a in
            switch a.route {
            case .always: return (a.code, "routing rule: every case")
            case .jurisdiction:
                return countries.sorted().first(where: { a.jurisdictions.contains($0) }).map { (a.code, "routing rule: a participant in \($0)") }
            case .never: return nil
            }
        }
    }

    /// Whether case `b` may be merged into case `a`: two different cases, both open.
    public static func merge(_ a: (id: String, state: CaseState), into b: (id: String, state: CaseState)) throws(CustosError) {
        guard a.id != b.id else { throw .invalidInput(field: "CASE", reason: "cannot merge a case into itself") }
        for c in [b, a] where c.state != .open {
            throw .invalidState(subject: "case \(c.id)", state: c.state.rawValue, reason: "only open cases merge")
        }
    }

    /// Whether `moving` of a case's `flags` may split off into a new case: an open case, flags
    /// of its own, and at least one flag left on each side.
    public static func split(case id: String, state: CaseState, flags: Set<String>, moving: [String]) throws(CustosError) {
        guard state == .open else { throw .invalidState(subject: "case \(id)", state: state.rawValue, reason: "only an open case can be split") }
        if let stranger = moving.first(where: { !flags.contains($0) }) {
            throw .invalidInput(field: "--flags", reason: "flag \(quoted(stranger)) is not in case \(id)")
        }
        guard !moving.isEmpty, Set(moving).count < flags.count else {
            throw .invalidInput(field: "--flags", reason: "a split must leave at least one flag in each case (case has \(flags.count))")
        }
    }

    /// Whether a case may be exported to `agency`: open or referred, routed to it, and every
    /// one of its flags finally confirmed.
    public static func export(case id: String, state: CaseState, agency: String, routed: [String], flagStatuses: [FlagStatus]) throws(CustosError) {
        guard state.exportable else { throw .invalidState(subject: "case \(id)", state: state.rawValue, reason: "it cannot be exported") }
        guard routed.contains(agency) else {
            throw .invalidState(subject: "case \(id)", state: "not routed to \(agency)", reason: "routed to: \(routed.sorted().joined(separator: ", "))")
        }
        let unconfirmed = flagStatuses.filter { $0 != .confirmed }.count
        guard !flagStatuses.isEmpty, unconfirmed == 0 else {
            throw .invalidState(subject: "case \(id)", state: "not fully confirmed",
                                reason: "it needs final confirmations on all its flags before export (\(unconfirmed) of \(flagStatuses.count) are not confirmed)")
        }
    }
}

/// A case's name: `C-` and its row id, six digits or more.
public enum CaseID {
    public static func format(_ id: Int64) -> String { "C-" + String(format: "%06d", id) }
    public static func parse(_ s: String) -> Int64? {
        let t = s.uppercased().hasPrefix("C-") ? String(s.dropFirst(2)) : s
        return Int64(t).flatMap { $0 > 0 ? $0 : nil }
    }
}

/// When a flag's evidence may be erased (`custos retention run`): never while a preservation
/// hold covers it; when every hold on it has ended; and, for a flag finally dismissed and
/// never filed into a case, once `dismissed-retention-days` have passed. Anything else stays.
public enum RetentionRules {
    public struct FlagFacts: Sendable {
        public var key: String
        public var status: FlagStatus
        /// When the flag's final decision was recorded.
        public var decidedMillis: Int64?
        public var inCase: Bool
        /// The latest end of the holds covering it (its referrals and their extensions).
        public var holdUntilMillis: Int64?
        public init(key: String, status: FlagStatus, decidedMillis: Int64?, inCase: Bool, holdUntilMillis: Int64?) {
            self.key = key; self.status = status; self.decidedMillis = decidedMillis; self.inCase = inCase; self.holdUntilMillis = holdUntilMillis
        }
    }

    /// Why the flag's evidence may go at `now`, or nil when it must stay.
    public static func erasable(_ f: FlagFacts, now: Int64, dismissedDays: Int64) -> String? {
        if let hold = f.holdUntilMillis {
            return hold <= now ? "every preservation hold on it ended (the last on \(Timestamp.utcString(millis: hold)))" : nil
        }
        guard f.status == .dismissed, !f.inCase, let at = f.decidedMillis, at + dismissedDays * 86_400_000 <= now else { return nil }
        return "dismissed on \(Timestamp.utcString(millis: at)), kept \(dismissedDays) days"
    }
}

/// Preservation holds (18 U.S.C. 2258A(h)), computed once for `holds` and for retention. A
/// referral holds what it sent until its end, or later when its case's holds were extended;
/// and a hold follows the evidence: a flag is held by every referral that sent it and by every
/// referral of the case that holds it now (after a merge, the case it was merged into; after a
/// split, the case it left keeps holding what its referrals sent).
public enum HoldRules {
    public struct Referral: Sendable {
        public var caseRow: Int64
        public var holdUntilMillis: Int64
        public var flags: [String]
        public init(caseRow: Int64, holdUntilMillis: Int64, flags: [String]) {
            self.caseRow = caseRow; self.holdUntilMillis = holdUntilMillis; self.flags = flags
        }
    }

    /// A referral's hold end: its own, or its case's latest extension if later.
    public static func end(of referral: Referral, extensions: [Int64: Int64]) -> Int64 {
        max(referral.holdUntilMillis, extensions[referral.caseRow] ?? referral.holdUntilMillis)
    }

    /// Each held flag's latest hold end. `currentCase`: the case each flag is filed in now.
    public static func flagEnds(referrals: [Referral], extensions: [Int64: Int64], currentCase: [String: Int64]) -> [String: Int64] {
        var ends: [String: Int64] = [:]
        var caseEnds: [Int64: Int64] = [:]
        for r in referrals {
            let end = end(of: r, extensions: extensions)
            caseEnds[r.caseRow] = max(caseEnds[r.caseRow] ?? end, end)
            for flag in r.flags { ends[flag] = max(ends[flag] ?? end, end) }
        }
        for (flag, caseRow) in currentCase {
            guard let end = caseEnds[caseRow] else { continue }
            ends[flag] = max(ends[flag] ?? end, end)
        }
        return ends
    }
}
