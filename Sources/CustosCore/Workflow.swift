import Foundation

/// The workflow's vocabulary. Each enum's raw value is its one spelling in SQL, in the custody
/// log and on the command line; nothing else spells these words.

/// The two review queues (stored as integers in `flag_state.queue`; NULL = decided).
public enum ReviewQueue: Int, Sendable, CaseIterable {
    case moderator = 1
    case lead = 2

    /// The queues a role draws from when it asks for the next flag, in order.
    public static func drawn(by role: Role) -> [ReviewQueue] { role == .lead ? [.lead, .moderator] : [.moderator] }
}

public enum CaseState: String, Sendable, CaseIterable {
    case open, merged, referred, closed

    /// States in which a case may be exported.
    public var exportable: Bool { self == .open || self == .referred }
}

/// When an agency receives a case.
public enum AgencyRoute: String, Sendable, CaseIterable {
    /// Every case.
    case always
    /// When a reported person or a victim is in one of the agency's countries.
    case jurisdiction
    case never
}

/// What an agency's packet holds beyond the common files.
public enum AgencyProfile: String, Sendable, CaseIterable {
    /// NCMEC: the CyberTipline XML as well.
    case cybertipline
    case generic
}

/// What a custody entry records. The raw value is the entry's `action`.
public enum CustodyAction: String, Sendable, CaseIterable {
    case storeInit = "store.init"
    /// A store upgraded to a newer schema: the migrations applied and, once, the facts older
    /// entries lacked, re-derived from the rows.
    case storeMigrate = "store.migrate"
    /// A verified copy of the store was written (`custos backup`), or this store was restored
    /// from one (`custos restore`).
    case storeBackup = "store.backup"
    case storeRestore = "store.restore"
    case keyCreate = "key.create"
    case userAdd = "user.add"
    case userDisable = "user.disable"
    /// A login secret set or cleared: `user.password` records the SHA-256 of the bcrypt hash,
    /// `user.totp` that of the TOTP secret (or `null` when reset); never the secret.
    case userPassword = "user.password"
    case userTOTP = "user.totp"
    /// A bearer token issued (its SHA-256, which is what the store keeps) or revoked.
    case tokenCreate = "token.create"
    case tokenRevoke = "token.revoke"
    /// Console sessions: a login (how: password or password+totp; from which address), a
    /// logout or expiry, and a failed or throttled attempt.
    case sessionLogin = "session.login"
    case sessionLogout = "session.logout"
    case sessionFail = "session.fail"
    /// A user's console preferences (blur and grayscale for attachments).
    case userPreferences = "user.preferences"
    case settingsSet = "settings.set"
    case flagIngest = "flag.ingest"
    case evidenceView = "evidence.view"
    /// A flag's evidence erased under the retention rules; a tombstone keeps its hash.
    case evidencePurge = "evidence.purge"
    case flagClaim = "flag.claim"
    case flagRelease = "flag.release"
    case flagDecide = "flag.decide"
    case flagReopen = "flag.reopen"
    case caseOpen = "case.open"
    case caseAddFlag = "case.add_flag"
    case caseRoute = "case.route"
    case caseMerge = "case.merge"
    case caseMergedInto = "case.merged_into"
    case caseSplit = "case.split"
    case caseExport = "case.export"
    case referralReceipt = "referral.receipt"
    /// A submission to an agency's reporting API begun (the packet, the endpoint, the files),
    /// and each of its steps (`submit`, `upload`, `fileinfo`, `finish`, `retract`, or a failure):
    /// every entry carries the submission's row as it is after the step.
    case submissionBegin = "submission.begin"
    case submissionStep = "submission.step"
    /// A preservation hold extended (a law-enforcement request), with its new end and reason.
    case holdExtend = "hold.extend"
    case agencyAdd = "agency.add"
    case agencySet = "agency.set"
    case auditCheckpoint = "audit.checkpoint"
    /// A witness's cosignature on a checkpoint, recorded when the store received it.
    case auditCosign = "audit.cosign"
    /// An attempt the rules refused (wrong role, unknown or disabled user): who, what, why.
    case refused = "refused"
    /// A hash list imported (its file's SHA-256, its entries' digest and count, its matching
    /// rules), or removed from matching (its entries stay: an earlier match still names them).
    case hashlistImport = "hashlist.import"
    case hashlistRemove = "hashlist.remove"
    /// Hashes added to the organisation's own list (`org-confirmed`) from a flag confirmed csam.
    case hashlistAdd = "hashlist.add"
    /// A flag's attachment matched a hash list: the list, the kind, the listed hash and the
    /// distance. The flag becomes urgent.
    case flagMatch = "flag.match"
    /// A platform action endpoint added (its URL, kind, events, categories, and its secret's
    /// SHA-256, never the secret), or changed (disabled, enabled, a new secret, a new policy).
    case actionAdd = "action.add"
    case actionSet = "action.set"
    /// An action requested of the platform, in the transaction of the entry that caused it
    /// (`requested_by`): its endpoint, kind, event and the exact body sent.
    case actionRequest = "action.request"
    /// An attempt to deliver it begun (the deliverer's lease), and its result: the HTTP status,
    /// duration, SHA-256 of the answer, the state after, and what the platform said it did.
    case actionSend = "action.send"
    case actionAttempt = "action.attempt"
    /// A lead sends a dead or failing request again, or cancels one.
    case actionRetry = "action.retry"
    case actionCancel = "action.cancel"

    /// What kind of subject the entry is about.
    public var subjectType: SubjectType {
        switch self {
        case .storeInit, .storeMigrate, .storeBackup, .storeRestore: .store
        case .keyCreate: .key
        case .userAdd, .userDisable, .userPassword, .userTOTP, .tokenCreate, .tokenRevoke,
             .sessionLogin, .sessionLogout, .sessionFail, .userPreferences: .user
        case .settingsSet: .setting
        case .flagIngest, .evidenceView, .evidencePurge, .flagClaim, .flagRelease, .flagDecide, .flagReopen, .flagMatch: .flag
        case .caseOpen, .caseAddFlag, .caseRoute, .caseMerge, .caseMergedInto, .caseSplit, .caseExport, .referralReceipt, .holdExtend,
             .submissionBegin, .submissionStep: .case
        case .agencyAdd, .agencySet: .agency
        case .auditCheckpoint, .auditCosign: .checkpoint
        case .refused: .user
        case .hashlistImport, .hashlistRemove, .hashlistAdd: .hashlist
        case .actionAdd, .actionSet, .actionRequest, .actionSend, .actionAttempt, .actionRetry, .actionCancel: .action
        }
    }
}

/// How an actor was established: every custody entry from schema 7 records it (`auth`).
public enum AuthMethod: String, Sendable, CaseIterable {
    /// The CLI, acting as the OS login of the process's real uid.
    case osLogin = "cli:os-login"
    /// The CLI with `--actor NAME`: a name the OS user asserted (forbidden by `cli-actors off`).
    case asserted = "cli:asserted"
    /// A console or API session opened with a password, or with a password and a TOTP code.
    case password = "session:password"
    case passwordTOTP = "session:password+totp"
    /// A bearer token (`custos token create`).
    case token = "token"
    /// Nobody established: a failed login attempt.
    case none = "none"
}

public enum SubjectType: String, Sendable, CaseIterable {
    case store, key, user, setting, flag, `case`, agency, checkpoint, hashlist, action
}

/// A flag's review state: the part of `flag_state` the rules read and write.
public struct FlagReview: Sendable, Equatable {
    public var status: FlagStatus
    public var holder: String?
    public var leaseExpiresMillis: Int64?
    public var firstReviewer: String?
    /// Everyone who has decided this flag since it was ingested or last reopened.
    public var reviewers: [String]
    public var category: String?
    public var annotations: [String]
    public var urgentReason: String?

    public init(status: FlagStatus = .open, holder: String? = nil, leaseExpiresMillis: Int64? = nil, firstReviewer: String? = nil,
                reviewers: [String] = [], category: String? = nil, annotations: [String] = [], urgentReason: String? = nil) {
        self.status = status; self.holder = holder; self.leaseExpiresMillis = leaseExpiresMillis
        self.firstReviewer = firstReviewer; self.reviewers = reviewers; self.category = category; self.annotations = annotations
        self.urgentReason = urgentReason
    }

    /// The queue the flag waits in; nil once decided.
    public var queue: ReviewQueue? { status.queue }

    /// Who holds an unexpired claim at `now`.
    public func liveHolder(at now: Int64) -> String? {
        guard let holder, let leaseExpiresMillis, leaseExpiresMillis > now else { return nil }
        return holder
    }
}

/// Someone acting on the workflow.
public struct Reviewer: Sendable, Equatable {
    public let name: String
    public let role: Role
    public init(name: String, role: Role) { self.name = name; self.role = role }
}

/// What a reviewer decides about a flag.
public struct Decision: Sendable, Equatable {
    public var outcome: Outcome
    public var reason: String
    public var category: Category?
    public var urgent: String?
    public var annotations: [Annotation]

    public init(outcome: Outcome, reason: String, category: Category? = nil, urgent: String? = nil, annotations: [Annotation] = []) {
        self.outcome = outcome; self.reason = reason; self.category = category; self.urgent = urgent; self.annotations = annotations
    }
}

extension Permission {
    /// Refuses a reviewer whose role does not carry this permission.
    public func require(_ reviewer: Reviewer) throws(CustosError) {
        guard roles.contains(reviewer.role) else {
            let need = roles.map(\.rawValue).sorted().joined(separator: " or ")
            throw .forbidden(actor: reviewer.name, role: reviewer.role, needs: "\(summary) needs the \(need) role")
        }
    }
}

/// The settings an admin may change, with their defaults and bounds. Every number is bounded
/// on input, so no later arithmetic on it can overflow.
public enum Setting: String, Sendable, CaseIterable {
    case secondReview = "second-review"
    case leaseMinutes = "lease-minutes"
    case urgentSLAMinutes = "urgent-sla-minutes"
    /// Sign a checkpoint after a write when the last one is older than this (0: only on
    /// export and `audit checkpoint`).
    case checkpointMinutes = "checkpoint-minutes"
    /// The witnesses that cosign the store's checkpoints: `none`, or `URL VERIFIER-KEY` pairs
    /// separated by `;` (c2sp.org/tlog-witness; the key as `custos witness key` prints it).
    case witnesses = "witnesses"
    /// Days a finally dismissed flag's evidence is kept before `retention run` erases it.
    case dismissedRetentionDays = "dismissed-retention-days"
    /// Who needs a TOTP code at login: `privileged` (compliance and admin) or `all`.
    case totpRequired = "totp-required"
    /// Whether the CLI accepts `--actor NAME` (`on`), or acts only as the OS login (`off`).
    case cliActors = "cli-actors"

    /// The settings schema 3 writes into every store; the others exist once set.
    public static let seeded: [Setting] = [.secondReview, .leaseMinutes, .urgentSLAMinutes]

    public var defaultValue: String {
        switch self {
        case .secondReview: "required"
        case .leaseMinutes: "15"
        case .urgentSLAMinutes: "60"
        case .checkpointMinutes: "60"
        case .witnesses: "none"
        case .dismissedRetentionDays: "30"
        case .totpRequired: "privileged"
        case .cliActors: "on"
        }
    }

    /// The allowed range of a numeric setting.
    public var bounds: ClosedRange<Int64>? {
        switch self {
        case .secondReview, .witnesses, .totpRequired, .cliActors: nil
        case .leaseMinutes: 1...(24 * 60)
        case .urgentSLAMinutes: 1...(366 * 24 * 60)
        case .checkpointMinutes: 0...(366 * 24 * 60)
        case .dismissedRetentionDays: 0...36_525
        }
    }

    /// The allowed values of a setting that is one of a few words.
    public var choices: [String]? {
        switch self {
        case .totpRequired: ["privileged", "all"]
        case .cliActors: ["on", "off"]
        default: nil
        }
    }

    /// Whether a user of `role` must give a TOTP code at login under `value` of totp-required.
    public static func totpRequired(for role: Role, value: String) -> Bool {
        value == "all" || role == .compliance || role == .admin
    }

    public func validate(_ value: String) throws(CustosError) {
        if let bounds {
            guard let n = Int64(value), bounds.contains(n) else {
                throw .invalidInput(field: rawValue, reason: "\(quoted(value)) is not a whole number from \(bounds.lowerBound) to \(bounds.upperBound)")
            }
        } else if self == .witnesses {
            _ = try WitnessEndpoint.list(value)
        } else if let allowed = choices {
            guard allowed.contains(value) else { throw .invalidInput(field: rawValue, reason: "\(quoted(value)) must be \(allowed.joined(separator: " or "))") }
        } else if value != "required" && value != "off" {
            throw .invalidInput(field: rawValue, reason: "\(quoted(value)) must be required or off")
        }
    }
}

/// The settings as one typed value, read once: each stored value within its bounds or
/// vocabulary, else its default (a value edited behind Custos's back cannot take a rule outside
/// them; `audit verify` names the edit).
public struct Settings: Sendable, Equatable {
    public var secondReviewRequired: Bool
    public var leaseMinutes: Int64
    public var urgentSLAMinutes: Int64
    public var checkpointMinutes: Int64
    /// The `witnesses` setting as written (`WitnessEndpoint.list` reads it).
    public var witnesses: String
    public var dismissedRetentionDays: Int64
    /// totp-required: all (true) or privileged roles only.
    public var totpForAll: Bool
    /// cli-actors: whether `--actor` may assert another name.
    public var cliActors: Bool

    /// From the stored `key → value` rows.
    public init(_ stored: [String: String]) {
        func text(_ s: Setting) -> String {
            guard let v = stored[s.rawValue], (try? s.validate(v)) != nil else { return s.defaultValue }
            return v
        }
        func number(_ s: Setting) -> Int64 { Int64(text(s)) ?? Int64(s.defaultValue) ?? 0 }
        secondReviewRequired = text(.secondReview) != "off"
        leaseMinutes = number(.leaseMinutes)
        urgentSLAMinutes = number(.urgentSLAMinutes)
        checkpointMinutes = number(.checkpointMinutes)
        witnesses = text(.witnesses)
        dismissedRetentionDays = number(.dismissedRetentionDays)
        totpForAll = text(.totpRequired) == "all"
        cliActors = text(.cliActors) != "off"
    }

    /// Whether a user of `role` must give a TOTP code at login.
    public func totpRequired(for role: Role) -> Bool { Setting.totpRequired(for: role, value: totpForAll ? "all" : "privileged") }
}

/// A witness the store asks for cosignatures: where it listens, and its verifier key.
public struct WitnessEndpoint: Sendable, Equatable {
    public let url: String
    public let key: VerifierKey

    /// `none`, or `URL KEY` pairs separated by `;`.
    public static func list(_ value: String) throws(CustosError) -> [WitnessEndpoint] {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if trimmed == "none" || trimmed.isEmpty { return [] }
        var out: [WitnessEndpoint] = []
        for item in trimmed.split(separator: ";") {
            let parts = item.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].hasPrefix("http://") || parts[0].hasPrefix("https://"),
                  !parts[0].contains(where: { $0.isNewline || $0.unicodeScalars.contains { $0.value < 0x21 } }) else {
                throw .invalidInput(field: "witnesses", reason: "\(quoted(String(item))) is not `URL VERIFIER-KEY` with an http(s) URL")
            }
            let key: VerifierKey
            do { key = try VerifierKey(parsing: String(parts[1])) } catch { throw .invalidInput(field: "witnesses", reason: error.description) }
            guard key.type == 0x04 else { throw .invalidInput(field: "witnesses", reason: "\(key.name) is not a cosignature/v1 (witness) key") }
            guard !out.contains(where: { $0.key.name == key.name }) else { throw .invalidInput(field: "witnesses", reason: "\(key.name) is named twice") }
            out.append(WitnessEndpoint(url: String(parts[0]), key: key))
        }
        return out
    }
}

/// User names: what may be one, and when two are too alike to tell apart.
public enum UserName {
    /// 1–64 characters from A–Z, a–z, 0–9, '.', '_', '-', starting with a letter or digit.
    /// Restricting names to ASCII rules out look-alikes from other scripts (a Cyrillic "о"
    /// for a Latin "o"), invisible characters and bidi controls at once.
    public static func validate(_ name: String) throws(CustosError) {
        let scalars = Array(name.unicodeScalars)
        let allowed = scalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || ".-_".unicodeScalars.contains($0)) }
        guard (1...64).contains(scalars.count), allowed, let first = scalars.first, CharacterSet.alphanumerics.contains(first) else {
            throw .invalidInput(field: "user name", reason: "\(quoted(name)) must be 1–64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
    }

    /// Names with the same skeleton cannot both exist: case folded, and the ASCII look-alikes
    /// 0/o, 1/l/i and rn/m merged.
    public static func skeleton(_ name: String) -> String {
        name.lowercased().replacingOccurrences(of: "rn", with: "m").map { c -> Character in
            switch c {
            case "0": "o"
            case "1", "i": "l"
            default: c
            }
        }.reduce(into: "") { $0.append($1) }
    }
}
