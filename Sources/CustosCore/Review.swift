import Foundation

public enum Role: String, Sendable, CaseIterable {
    case moderator, lead, compliance, admin
    /// A machine client (a classifier's pipeline): ingests flags and does nothing else.
    case detector
}

/// What each role may do (the README's permission table is this).
public enum Permission: String, Sendable, CaseIterable {
    case read, ingest, claim, decide, leadDecide = "lead-decide", reassign, manageCases = "manage-cases"
    case manageAgencies = "manage-agencies", export, manageUsers = "manage-users", manageSettings = "manage-settings", backup, erase
    /// Sign a checkpoint on demand (any write signs one when `checkpoint-minutes` have passed).
    case checkpoint
    /// Import, remove, rescan and export hash lists of known material.
    case manageHashLists = "manage-hash-lists"
    /// See an attachment that matches a hash list (a moderator sees only that it matches).
    case revealKnownMaterial = "reveal-known-material"
    /// Add, change, disable and re-key platform action endpoints.
    case manageActions = "manage-actions"
    /// Deliver requested actions to the platform (`actions deliver`, and `serve` as its user).
    case deliverActions = "deliver-actions"
    /// Retry or cancel a dead or failing action request.
    case resolveActions = "resolve-actions"

    public var roles: Set<Role> {
        switch self {
        case .read: [.moderator, .lead, .compliance, .admin]
        case .ingest: [.lead, .compliance, .admin, .detector]
        case .claim, .decide: [.moderator, .lead]
        case .leadDecide, .reassign: [.lead]
        case .manageCases, .manageAgencies, .export: [.compliance]
        case .manageUsers, .manageSettings, .backup: [.admin]
        case .erase, .checkpoint, .manageHashLists: [.compliance, .admin]
        case .revealKnownMaterial, .resolveActions: [.lead]
        case .manageActions: [.admin]
        case .deliverActions: [.compliance, .admin]
        }
    }

    public var summary: String {
        switch self {
        case .read: "read evidence, the queue, cases, holds, stats, submissions and proofs"
        case .ingest: "ingest flags"
        case .claim: "claim and release flags"
        case .decide: "decide flags they hold"
        case .leadDecide: "decide escalations and disagreements, reopen dismissals"
        case .reassign: "release or reassign others' claims"
        case .manageCases: "merge and split cases, record receipts"
        case .manageAgencies: "add and change agencies and routing"
        case .export: "export and submit referral packets"
        case .manageUsers: "add, list and disable users; set their passwords, TOTP and tokens"
        case .manageSettings: "list and change settings"
        case .backup: "back up the store, rebuild it from its log"
        case .erase: "erase evidence whose retention has ended"
        case .checkpoint: "sign a checkpoint on demand"
        case .manageHashLists: "import, remove, rescan and export hash lists"
        case .revealKnownMaterial: "see an attachment that matches a hash list (logged)"
        case .manageActions: "add, change, disable and re-key platform action endpoints"
        case .deliverActions: "deliver requested platform actions"
        case .resolveActions: "retry or cancel a dead or failing platform action"
        }
    }
}

extension Permission {
    /// The matrix as the README's Permissions table shows it (`custos permissions` prints it;
    /// a test holds the README to it). Every Store operation asks for one of these.
    public static var markdownTable: String {
        var lines = ["| permission | what | " + Role.allCases.map(\.rawValue).joined(separator: " | ") + " |",
                     "|---|---|" + String(repeating: ":-:|", count: Role.allCases.count)]
        for p in allCases {
            lines.append("| `\(p.rawValue)` | \(p.summary) | " + Role.allCases.map { p.roles.contains($0) ? "✓" : " " }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

public enum FlagStatus: String, Sendable, CaseIterable {
    case open
    case secondReview = "second_review"
    case leadReview = "lead_review"
    case confirmed, dismissed

    /// The queue a flag in this status waits in; nil once decided.
    public var queue: ReviewQueue? {
        switch self {
        case .open, .secondReview: .moderator
        case .leadReview: .lead
        case .confirmed, .dismissed: nil
        }
    }
}

public enum Outcome: String, Sendable, CaseIterable {
    case confirm, dismiss, escalate
}

/// Agency-neutral categories with their CyberTipline incident types (docs/taxonomy.md).
public enum Category: String, Sendable, CaseIterable {
    case grooming
    case csam
    case sextortion
    case trafficking
    case obsceneMaterialToMinor = "obscene-material-to-minor"
    case misleadingDomain = "misleading-domain"

    public var cyberTiplineIncidentType: String {
        switch self {
        case .grooming, .sextortion: "Online Enticement of Children for Sexual Acts"
        case .csam: "Child Pornography (possession, manufacture, and distribution)"
        case .trafficking: "Child Sex Trafficking"
        case .obsceneMaterialToMinor: "Unsolicited Obscene Material Sent to a Child"
        case .misleadingDomain: "Misleading Domain Name"
        }
    }
}

/// Report annotations with their CyberTipline element names.
public enum Annotation: String, Sendable, CaseIterable {
    case sextortion
    case csamSolicitation = "csam-solicitation"
    case minorToMinor = "minor-to-minor"

    public var cyberTiplineElement: String {
        switch self {
        case .sextortion: "sextortion"
        case .csamSolicitation: "csamSolicitation"
        case .minorToMinor: "minorToMinorInteraction"
        }
    }
}

/// The review state machine: pure functions from a flag's review state, who acts and when, to
/// the next state, or the typed reason the step is illegal. The store loads the state, calls
/// these, writes the result and appends the custody entry.
public enum ReviewRules {
    public struct Next: Equatable, Sendable {
        public var status: FlagStatus
        /// True when this decision makes the flag's outcome final.
        public var final: Bool
        public var note: String
    }

    /// Four eyes, in one place: while second review is required, nobody who already decided a
    /// flag in this round (the first confirmation, an escalation, a disagreeing second review)
    /// may take or make the decision that settles it; a lead settling a disagreement is a third
    /// person. (A dismissal of an open flag is final on one review, by design.)
    public static func mayReview(_ state: FlagReview, _ reviewer: String, secondReviewRequired: Bool) -> Bool {
        guard state.status == .secondReview || state.status == .leadReview else { return true }
        // The first confirmer never gives the second, whatever the setting says now.
        if state.status == .secondReview && state.firstReviewer == reviewer { return false }
        return !secondReviewRequired || !state.reviewers.contains(reviewer)
    }

    static func fourEyes(_ flag: String, _ state: FlagReview, _ reviewer: String) -> CustosError {
        .invalidState(subject: "flag \(quoted(flag))", state: "in \(state.status.rawValue)",
                      reason: "\(reviewer) already decided it in this round; four eyes need another reviewer to settle it")
    }

    /// A reviewer claims a flag under a lease of `leaseMinutes` from `now`.
    public static func claim(_ flag: String, _ state: FlagReview, by reviewer: Reviewer, now: Int64,
                             leaseMinutes: Int64, secondReviewRequired: Bool = true) throws(CustosError) -> FlagReview {
        try Permission.claim.require(reviewer)
        let subject = "flag \(quoted(flag))"
        guard let queue = state.queue else {
            throw .invalidState(subject: subject, state: state.status.rawValue, reason: "there is nothing to claim")
        }
        if queue == .lead && reviewer.role != .lead {
            throw .invalidState(subject: subject, state: "in lead_review", reason: "only a lead can claim it")
        }
        if let holder = state.liveHolder(at: now), holder != reviewer.name {
            throw .conflict(subject: subject, reason: "is claimed by \(holder) until \(Timestamp.utcString(millis: state.leaseExpiresMillis ?? now))")
        }
        guard mayReview(state, reviewer.name, secondReviewRequired: secondReviewRequired) else { throw fourEyes(flag, state, reviewer.name) }
        var next = state
        next.holder = reviewer.name
        next.leaseExpiresMillis = try lease(from: now, minutes: leaseMinutes)
        return next
    }

    /// A lead hands a flag to `assignee`; any current claim ends. Returns the new state and
    /// the holder whose claim ended.
    public static func reassign(_ flag: String, _ state: FlagReview, to assignee: Reviewer, by lead: Reviewer, now: Int64,
                                leaseMinutes: Int64, secondReviewRequired: Bool = true) throws(CustosError) -> (FlagReview, previous: String?) {
        try Permission.reassign.require(lead)
        guard Permission.claim.roles.contains(assignee.role) else {
            throw .invalidInput(field: "--for", reason: "\(quoted(assignee.name)) is not an enabled moderator or lead")
        }
        let subject = "flag \(quoted(flag))"
        guard let queue = state.queue else {
            throw .invalidState(subject: subject, state: state.status.rawValue, reason: "there is nothing to reassign")
        }
        if queue == .lead && assignee.role != .lead {
            throw .invalidState(subject: subject, state: "in lead_review", reason: "only a lead can hold it")
        }
        guard mayReview(state, assignee.name, secondReviewRequired: secondReviewRequired) else { throw fourEyes(flag, state, assignee.name) }
        var next = state
        next.holder = assignee.name
        next.leaseExpiresMillis = try lease(from: now, minutes: leaseMinutes)
        return (next, state.liveHolder(at: now))
    }

    /// The holder, or a lead, gives a claim back. Returns the new state and whose claim ended.
    public static func release(_ flag: String, _ state: FlagReview, by reviewer: Reviewer, now: Int64) throws(CustosError) -> (FlagReview, holder: String) {
        try Permission.claim.require(reviewer)
        guard let holder = state.liveHolder(at: now) else {
            throw .invalidState(subject: "flag \(quoted(flag))", state: "not claimed", reason: "there is nothing to release")
        }
        if holder != reviewer.name && reviewer.role != .lead {
            throw .conflict(subject: "flag \(quoted(flag))", reason: "is claimed by \(holder); only they or a lead can release it")
        }
        var next = state
        next.holder = nil
        next.leaseExpiresMillis = nil
        return (next, holder)
    }

    /// The most a reason and an urgency reason may hold, in characters (Unicode code points,
    /// as the API document's maxLength counts them): they enter the permanent log and every
    /// referral, whichever client sent them.
    public static let maxReason = 4000, maxUrgentReason = 1000

    /// A reason is some text, and at most `max` characters of it.
    static func checkReason(_ text: String, field: String, max: Int = maxReason) throws(CustosError) {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw .invalidInput(field: field, reason: "must not be empty") }
        let count = text.unicodeScalars.count
        guard count <= max else { throw .invalidInput(field: field, reason: "is \(count) characters; at most \(max) are kept in the custody log") }
    }

    /// A decision: who may make it (the claim holder, or a lead), and where it takes the flag.
    public static func decide(_ flag: String, _ state: FlagReview, by reviewer: Reviewer, _ decision: Decision, now: Int64,
                              secondReviewRequired: Bool) throws(CustosError) -> (FlagReview, Next) {
        try Permission.decide.require(reviewer)
        let subject = "flag \(quoted(flag))"
        try checkReason(decision.reason, field: "--reason")
        if let urgent = decision.urgent { try checkReason(urgent, field: "--urgent", max: maxUrgentReason) }
        if decision.outcome == .confirm && decision.category == nil {
            throw .invalidInput(field: "--category", reason: "a confirmation needs a category (one of: \(Category.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let holder = state.liveHolder(at: now)
        if reviewer.role != .lead {
            guard holder == reviewer.name else {
                throw holder.map { .conflict(subject: subject, reason: "is claimed by \($0); only the claim holder or a lead decides it") }
                    ?? .invalidState(subject: subject, state: "not claimed by you", reason: "claim it first (`custos claim \(flag)`); only the claim holder or a lead decides it")
            }
        } else if let holder, holder != reviewer.name, state.status != .leadReview {
            throw .conflict(subject: subject, reason: "is claimed by \(holder); release it first (`custos release \(flag)`)")
        }
        let next = try transition(flag, state, outcome: decision.outcome, reviewer: reviewer, category: decision.category?.rawValue,
                                  secondReviewRequired: secondReviewRequired)
        let after = settled(state, to: next.status, by: reviewer.name, category: decision.category?.rawValue,
                            annotations: decision.annotations.map(\.rawValue), urgent: decision.urgent)
        return (after, next)
    }

    /// The state a decision leaves a flag in: the one place both `decide` and the log's replay
    /// build it.
    public static func settled(_ state: FlagReview, to status: FlagStatus, by reviewer: String, category: String?,
                               annotations: [String], urgent: String?) -> FlagReview {
        var after = state
        after.status = status
        after.holder = nil
        after.leaseExpiresMillis = nil
        if state.status == .open && status == .secondReview { after.firstReviewer = reviewer }
        if !after.reviewers.contains(reviewer) { after.reviewers.append(reviewer) }
        if let category { after.category = category }
        after.annotations = Array(Set(state.annotations).union(annotations)).sorted()
        if let urgent { after.urgentReason = urgent }
        return after
    }

    /// A reopened flag: back in the moderator queue, as if new (for `reopen` and the replay).
    public static func reopened(_ state: FlagReview) -> FlagReview {
        var next = state
        next.status = .open
        next.firstReviewer = nil
        next.reviewers = []
        next.category = nil
        return next
    }

    /// Where a decision takes a flag in `state`, or why it cannot be made.
    public static func transition(_ flag: String, _ state: FlagReview, outcome: Outcome, reviewer: Reviewer, category: String?,
                           secondReviewRequired: Bool) throws(CustosError) -> Next {
        let subject = "flag \(quoted(flag))"
        switch state.status {
        case .confirmed, .dismissed:
            throw .invalidState(subject: subject, state: state.status.rawValue,
                                reason: "a decided flag cannot be decided again\(state.status == .dismissed ? " (a lead can reopen it)" : "")")
        case .leadReview:
            guard reviewer.role == .lead else { throw .invalidState(subject: subject, state: "in lead_review", reason: "only a lead decides flags in the lead queue") }
            guard mayReview(state, reviewer.name, secondReviewRequired: secondReviewRequired) else { throw fourEyes(flag, state, reviewer.name) }
            switch outcome {
            case .confirm: return Next(status: .confirmed, final: true, note: "confirmed by lead")
            case .dismiss: return Next(status: .dismissed, final: true, note: "dismissed by lead")
            case .escalate: throw .invalidState(subject: subject, state: "already in lead_review", reason: "a lead confirms or dismisses it")
            }
        case .open:
            switch outcome {
            case .confirm:
                return secondReviewRequired
                    ? Next(status: .secondReview, final: false, note: "first confirmation; awaiting a second reviewer")
                    : Next(status: .confirmed, final: true, note: "confirmed (second review is off)")
            case .dismiss: return Next(status: .dismissed, final: true, note: "dismissed")
            case .escalate: return Next(status: .leadReview, final: false, note: "escalated to the lead queue")
            }
        case .secondReview:
            guard mayReview(state, reviewer.name, secondReviewRequired: secondReviewRequired) else { throw fourEyes(flag, state, reviewer.name) }
            switch outcome {
            case .confirm:
                if let first = state.category, let category, first != category {
                    return Next(status: .leadReview, final: false, note: "disagreement on category (\(first) vs \(category)); sent to the lead queue")
                }
                return Next(status: .confirmed, final: true, note: "second confirmation; final")
            case .dismiss: return Next(status: .leadReview, final: false, note: "disagreement (confirm vs dismiss); sent to the lead queue")
            case .escalate: return Next(status: .leadReview, final: false, note: "escalated to the lead queue")
            }
        }
    }

    /// A lead reopens a dismissed flag: it returns to the moderator queue, as if new.
    public static func reopen(_ flag: String, _ state: FlagReview, by reviewer: Reviewer, reason: String) throws(CustosError) -> FlagReview {
        try Permission.leadDecide.require(reviewer)
        try checkReason(reason, field: "--reason")
        guard state.status == .dismissed else {
            throw .invalidState(subject: "flag \(quoted(flag))", state: state.status.rawValue, reason: "only a dismissed flag can be reopened")
        }
        return reopened(state)
    }

    /// The lease's end, refusing arithmetic that would overflow.
    static func lease(from now: Int64, minutes: Int64) throws(CustosError) -> Int64 {
        let (ms, o1) = minutes.multipliedReportingOverflow(by: 60_000)
        let (end, o2) = now.addingReportingOverflow(ms)
        guard !o1, !o2 else { throw .invalidInput(field: "lease-minutes", reason: "\(minutes) is out of range") }
        return end
    }
}

/// Blind review: whoever may still act on a flag's review round, of any role, sees no decision
/// made in that round. A round runs from ingest (or a reopen) through the moderator queue
/// (the first and second review); in it, a moderator or a lead who has not decided the flag yet
/// may still decide it. In the lead queue the lead settles what the moderators decided, so those
/// decisions are theirs to read; a settled flag's decisions are history.
public enum BlindReview {
    /// Whether `viewer` may still act on the flag's current round, and so may not see it.
    public static func blinds(_ review: FlagReview, _ viewer: Reviewer) -> Bool {
        guard review.status == .open || review.status == .secondReview else { return false }
        switch viewer.role {
        case .moderator, .lead: return !review.reviewers.contains(viewer.name)
        case .compliance, .admin, .detector: return false
        }
    }

    /// Whether a decision by `decider` is one `viewer` may not see: made in the current round
    /// (by one of its reviewers) while `viewer` may still act on it.
    public static func hides(decisionBy decider: String, _ review: FlagReview, from viewer: Reviewer) -> Bool {
        blinds(review, viewer) && review.reviewers.contains(decider)
    }

    /// Whether the custody entries of a flag's platform actions are withheld from `viewer`: their
    /// bodies carry the category the current round chose while `viewer` may still act on it.
    /// (That an action was requested, and on which event, is shown: a flag.urgent request says
    /// only that the flag is urgent, which the queue shows everyone.)
    public static func hidesActions(_ review: FlagReview, from viewer: Reviewer) -> Bool {
        blinds(review, viewer) && !review.reviewers.isEmpty
    }
}

/// What a stored decision records: a reviewer's outcome, or a lead's reopening.
public enum DecisionOutcome: String, Sendable, CaseIterable {
    case confirm, dismiss, escalate, reopen
}

/// A word read back from a stored row, checked against its vocabulary: a value written behind
/// Custos's back is a storage error naming the column, never a crash.
public func storedWord<E: RawRepresentable>(_ text: String?, _ column: String) throws -> E where E.RawValue == String {
    guard let text, let value = E(rawValue: text) else {
        throw CustosError.storage(cause: "\(column) holds \(text.map(quoted) ?? "NULL"), which is not one custos writes")
    }
    return value
}
