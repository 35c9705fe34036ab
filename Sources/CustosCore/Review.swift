import Foundation

public enum Role: String, Sendable, CaseIterable {
    case moderator, lead, compliance, admin
}

/// What each role may do (the README's permission table is this).
public enum Permission: String, Sendable, CaseIterable {
    case read, ingest, claim, decide, leadDecide = "lead-decide", reassign, manageCases = "manage-cases"
    case manageAgencies = "manage-agencies", export, manageUsers = "manage-users", manageSettings = "manage-settings"

    public var roles: Set<Role> {
        switch self {
        case .read: [.moderator, .lead, .compliance, .admin]
        case .ingest: [.lead, .compliance, .admin]
        case .claim, .decide: [.moderator, .lead]
        case .leadDecide, .reassign: [.lead]
        case .manageCases, .manageAgencies, .export: [.compliance]
        case .manageUsers, .manageSettings: [.admin]
        }
    }

    public var summary: String {
        switch self {
        case .read: "read evidence (custos show)"
        case .ingest: "ingest flags"
        case .claim: "claim and release flags"
        case .decide: "decide flags they hold"
        case .leadDecide: "decide escalations and disagreements, reopen dismissals"
        case .reassign: "release or reassign others' claims"
        case .manageCases: "merge and split cases, record receipts"
        case .manageAgencies: "add and change agencies and routing"
        case .export: "export referral packets"
        case .manageUsers: "add and disable users"
        case .manageSettings: "change settings"
        }
    }
}

public enum FlagStatus: String, Sendable {
    case open
    case secondReview = "second_review"
    case leadReview = "lead_review"
    case confirmed, dismissed
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

/// The review state machine: given a flag's state and a decision, the next state, or why
/// the transition is illegal. Pure; the store applies it.
public enum ReviewRules {
    public struct Next: Equatable, Sendable {
        public var status: FlagStatus
        /// True when this decision makes the flag's outcome final.
        public var final: Bool
        public var note: String
    }

    public static func decide(status: FlagStatus, outcome: Outcome, reviewer: String, isLead: Bool,
                              firstReviewer: String?, firstCategory: String?, category: String?,
                              secondReviewRequired: Bool) throws(ReviewError) -> Next {
        switch status {
        case .confirmed, .dismissed:
            throw ReviewError("the flag is \(status.rawValue); a decided flag cannot be decided again\(status == .dismissed ? " (a lead can reopen it)" : "")")
        case .leadReview:
            guard isLead else { throw ReviewError("the flag is in lead_review; only a lead decides flags in the lead queue") }
            switch outcome {
            case .confirm: return Next(status: .confirmed, final: true, note: "confirmed by lead")
            case .dismiss: return Next(status: .dismissed, final: true, note: "dismissed by lead")
            case .escalate: throw ReviewError("the flag is already in lead_review; a lead confirms or dismisses it")
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
            if reviewer == firstReviewer {
                throw ReviewError("the flag is in second_review and \(reviewer) gave the first confirmation; a different reviewer must give the second")
            }
            switch outcome {
            case .confirm:
                if let firstCategory, let category, firstCategory != category {
                    return Next(status: .leadReview, final: false, note: "disagreement on category (\(firstCategory) vs \(category)); sent to the lead queue")
                }
                return Next(status: .confirmed, final: true, note: "second confirmation; final")
            case .dismiss: return Next(status: .leadReview, final: false, note: "disagreement (confirm vs dismiss); sent to the lead queue")
            case .escalate: return Next(status: .leadReview, final: false, note: "escalated to the lead queue")
            }
        }
    }
}

public struct ReviewError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
