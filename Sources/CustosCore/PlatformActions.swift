import Crypto
import Foundation

/// What Custos asks the platform to do about an account or a conversation.
public enum ActionKind: String, Sendable, CaseIterable {
    case restrictAccount = "restrict-account"
    case suspendAccount = "suspend-account"
    case banAccount = "ban-account"
    case blockConversation = "block-conversation"
    case preserveAccount = "preserve-account"
    case liftRestriction = "lift-restriction"

    /// The events an action of this kind fires on when `action add` names none (README).
    public var defaultTriggers: [ActionTrigger] {
        switch self {
        case .restrictAccount: [.flagUrgent]
        case .blockConversation: [.flagUrgent, .flagConfirmed]
        case .suspendAccount: [.flagConfirmed]
        case .banAccount: [.caseReferred]
        case .preserveAccount: [.holdStarted, .holdExtended, .holdEnded]
        case .liftRestriction: [.flagDismissed]
        }
    }

    /// Kinds that restrict someone: a later dismissal of the flag lifts them.
    public var restricts: Bool { [.restrictAccount, .suspendAccount, .blockConversation].contains(self) }
}

/// When an action fires.
public enum ActionTrigger: String, Sendable, CaseIterable {
    /// A first reviewer (or a hash-list match) marks a flag urgent: protective actions fire at
    /// once, before any second review.
    case flagUrgent = "flag.urgent"
    /// A flag confirmed after four eyes.
    case flagConfirmed = "flag.confirmed"
    /// A flag finally dismissed that an earlier action restricted: lifts it.
    case flagDismissed = "flag.dismissed"
    case caseReferred = "case.referred"
    /// Preservation under 18 USC 2258A(h): begun by a referral, extended, ended.
    case holdStarted = "hold.started"
    case holdExtended = "hold.extended"
    case holdEnded = "hold.ended"
}

/// Where an action request is.
public enum ActionState: String, Sendable, CaseIterable {
    /// Waiting for its next attempt.
    case pending
    /// An attempt under way (its deliverer holds the lease until it ends).
    case sending
    /// The platform answered 2xx.
    case delivered
    /// The platform answered 2xx with `{"status":"done", …}`: what it did is recorded.
    case acknowledged
    /// The last attempt failed; another is due at `next_attempt`.
    case failed
    /// Given up (the retry window passed, or the endpoint answered 410 Gone): a lead may retry.
    case dead
    /// A lead cancelled it.
    case cancelled

    public var finished: Bool { [.delivered, .acknowledged, .cancelled].contains(self) }

    /// Why a lead may not send a request in this state again; nil when they may (a dead or
    /// failing one). The one rule for `actions retry` and for its entry on replay.
    public var retryRefusal: String? {
        [.dead, .failed].contains(self) ? nil : "only a dead or failing request is retried (it is \(rawValue))"
    }

    /// Why a lead may not cancel a request in this state at `now`; nil when they may: not done,
    /// and not being sent under a running lease (a deliverer killed mid-send leaves a lease that
    /// runs out, and then the request may be cancelled).
    public func cancelRefusal(leaseUntil: Int64?, now: Int64) -> String? {
        if finished { return "it is \(rawValue): it can no longer be cancelled" }
        if self == .sending, (leaseUntil ?? 0) > now { return "it is being sent (its deliverer's lease runs until \(Timestamp.utcString(millis: leaseUntil ?? 0)))" }
        return nil
    }
}

/// Standard Webhooks 1.0: secrets, signatures and their verification.
public enum StandardWebhooks {
    public static let secretPrefix = "whsec_"

    /// A new secret: `whsec_` and the base64 of 32 random bytes.
    public static func newSecret() -> String {
        var g = SystemRandomNumberGenerator()
        return secretPrefix + Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }).base64EncodedString()
    }

    /// A new message id (the receiver's idempotency key): `msg_` and 32 hex digits.
    public static func newMessageID() -> String {
        var g = SystemRandomNumberGenerator()
        return "msg_" + (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    /// The key bytes of a secret (24–64 bytes after `whsec_`).
    public static func key(_ secret: String) throws -> SymmetricKey {
        guard secret.hasPrefix(secretPrefix), let bytes = Data(base64Encoded: String(secret.dropFirst(secretPrefix.count))),
              (24...64).contains(bytes.count) else {
            throw CustosError.invalidInput(field: "secret", reason: "not a Standard Webhooks secret (whsec_ and the base64 of 24–64 bytes)")
        }
        return SymmetricKey(data: bytes)
    }

    /// `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`.
    public static func signature(secret: String, id: String, timestamp: Int64, body: [UInt8]) throws -> String {
        var content = Array("\(id).\(timestamp).".utf8)
        content += body
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: try key(secret))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// The three headers of one attempt; every secret in use signs (one match is enough for the
    /// receiver, so a rotation does not interrupt delivery).
    public static func headers(secrets: [String], id: String, timestamp: Int64, body: [UInt8]) throws -> [(String, String)] {
        [("webhook-id", id), ("webhook-timestamp", String(timestamp)),
         ("webhook-signature", try secrets.map { try signature(secret: $0, id: id, timestamp: timestamp, body: body) }.joined(separator: " "))]
    }

    /// A receiver's check: one of the header's `v1` signatures matches and the timestamp is
    /// within `tolerance` seconds of `now`.
    public static func verify(secret: String, headers: [String: String], body: [UInt8], now: Int64, tolerance: Int64 = 300) throws -> Bool {
        guard let id = headers["webhook-id"], let ts = headers["webhook-timestamp"].flatMap({ Int64($0) }),
              let sigs = headers["webhook-signature"], abs(now - ts) <= tolerance else { return false }
        let expected = try signature(secret: secret, id: id, timestamp: ts, body: body)
        return sigs.split(separator: " ").contains { constantTimeEqual(Array($0.utf8), Array(expected.utf8)) }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// An endpoint's URL, as `action add` accepts it: http or https, a host, no credentials.
public enum ActionURL {
    public static func validate(_ text: String) throws -> String {
        func bad(_ why: String) -> CustosError { CustosError.invalidInput(field: "--url", reason: why) }
        guard text.utf8.count <= 2048, !text.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f }) else {
            throw bad("must be at most 2,048 characters without spaces or control characters")
        }
        guard let c = URLComponents(string: text), let scheme = c.scheme?.lowercased() else { throw bad("\(quoted(text)) is not a URL") }
        guard scheme == "http" || scheme == "https" else { throw bad("only http and https URLs are delivered to (not \(quoted(scheme)))") }
        guard c.user == nil, c.password == nil else { throw bad("credentials in a URL are refused: they would be stored and logged in the clear; the receiver verifies the signature instead") }
        guard let host = c.host, !host.isEmpty else { throw bad("\(quoted(text)) names no host") }
        guard c.fragment == nil else { throw bad("a URL with a #fragment is refused") }
        return text
    }
}

/// What a platform answered: JSON such as `{"status":"done","reference":"…","disabled_at":"…",
/// "user_notified":true}` acknowledges the action and says what was done.
public struct ActionAnswer: Sendable, Equatable {
    public var reference: String?
    public var disabledAt: String?
    public var userNotified: Bool?
    public var userNotifiedAt: String?

    public init(reference: String? = nil, disabledAt: String? = nil, userNotified: Bool? = nil, userNotifiedAt: String? = nil) {
        self.reference = reference; self.disabledAt = disabledAt; self.userNotified = userNotified; self.userNotifiedAt = userNotifiedAt
    }

    /// The acknowledgement in a 2xx answer's body, or nil (delivered, not acknowledged). Facts
    /// that are not well formed (a reference over 256 characters, a date that is not one) are
    /// left out rather than stored.
    public static func parse(_ body: [UInt8]) -> ActionAnswer? {
        guard case .object(let o)? = try? JSONValue.parse(body), o["status"]?.stringValue == "done" else { return nil }
        func text(_ k: String) -> String? {
            guard let s = o[k]?.stringValue, !s.isEmpty, s.utf8.count <= 256, !s.unicodeScalars.contains(where: { $0.value < 0x20 }) else { return nil }
            return s
        }
        func date(_ k: String) -> String? { text(k).flatMap(Timestamp.parse).map { Timestamp.utcString(millis: $0.epochMillis) } }
        var notified: Bool?
        if case .bool(let b)? = o["user_notified"] { notified = b }
        return ActionAnswer(reference: text("reference"), disabledAt: date("disabled_at"), userNotified: notified, userNotifiedAt: date("user_notified_at"))
    }
}

/// When a failed request is tried again, and when it is given up.
public enum ActionRetry {
    /// A request is retried for this long after it was made, then dead (a lead can retry it).
    public static let windowMillis: Int64 = 72 * 3_600_000
    /// The longest wait between attempts, and the longest `Retry-After` honoured.
    public static let maxWaitMillis: Int64 = 3_600_000
    public static let maxRetryAfterMillis: Int64 = 24 * 3_600_000

    /// The wait after failed attempt `n` (1-based): 10 s doubling to at most an hour, a random
    /// point in its upper half (jitter), or the receiver's `Retry-After` when that is longer.
    public static func wait(afterAttempt n: Int, retryAfterMillis: Int64?, random: Double) -> Int64 {
        let base = min(maxWaitMillis, 10_000 << Int64(min(max(n - 1, 0), 20)))
        let jittered = base / 2 + Int64(Double(base / 2) * min(max(random, 0), 1))
        return max(jittered, min(retryAfterMillis ?? 0, maxRetryAfterMillis))
    }

    /// A `Retry-After` value (seconds, or an HTTP date) as milliseconds from `now`.
    public static func retryAfter(_ value: String?, now: Int64) -> Int64? {
        guard let v = value?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
        if let s = Int64(v), s >= 0 { return min(s, maxRetryAfterMillis / 1000) * 1000 }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let d = f.date(from: v) else { return nil }
        return max(0, Int64(d.timeIntervalSince1970 * 1000) - now)
    }
}

/// An action as a packet's proven custody entries record it: requested (`action.request`, its
/// body naming the accounts) and, when the platform acknowledged it, what it said it did. What a
/// referral states about the platform's actions is derived from these and nothing else.
public struct ProvenAction: Sendable, Equatable {
    public var id: String
    public var kind: ActionKind
    public var trigger: ActionTrigger
    public var flag: String?
    public var caseID: String?
    public var platform: String
    public var accounts: [String]
    public var requestedEntry: Int64
    public var requestedAt: String
    public var state: ActionState
    public var acknowledgedEntry: Int64?
    public var acknowledgedAt: String?
    public var answer: ActionAnswer?

    public static func recorded(in entries: [CustodyEntry]) -> [ProvenAction] {
        var out: [ProvenAction] = []
        var index: [String: Int] = [:]
        for e in entries.sorted(by: { $0.seq < $1.seq }) {
            guard e.action.hasPrefix("action."), let event = try? CustodyEvent(entry: e) else { continue }
            switch event {
            case .actionRequest(let r):
                let data = (try? JSONValue.parse(Array(r.body.utf8)))?["data"]
                index[e.subjectID] = out.count
                out.append(ProvenAction(id: e.subjectID, kind: r.kind, trigger: r.trigger, flag: r.flag, caseID: r.caseID,
                                        platform: data?["platform"]?.stringValue ?? "", accounts: (data?["accounts"]?.arrayValue ?? []).compactMap(\.stringValue),
                                        requestedEntry: e.seq, requestedAt: e.at, state: .pending))
            case .actionAttempt(let a):
                guard let i = index[e.subjectID] else { continue }
                out[i].state = a.state
                if let answer = a.answer { out[i].answer = answer; out[i].acknowledgedEntry = e.seq; out[i].acknowledgedAt = e.at }
            case .actionCancel:
                if let i = index[e.subjectID] { out[i].state = .cancelled }
            default: break
            }
        }
        return out
    }

    public var json: JSONValue {
        .object([
            ("id", .string(id)), ("kind", .string(kind.rawValue)), ("on", .string(trigger.rawValue)), ("flag", flag.map { .string($0) }),
            ("case", caseID.map { .string($0) }), ("platform", .string(platform)), ("accounts", .array(accounts.map { .string($0) })),
            ("requested_entry", .integer(requestedEntry)), ("requested_at", .string(requestedAt)), ("state", .string(state.rawValue)),
            ("acknowledged_entry", acknowledgedEntry.map { .integer($0) }), ("acknowledged_at", acknowledgedAt.map { .string($0) }),
            ("reference", answer?.reference.map { .string($0) }), ("disabled_at", answer?.disabledAt.map { .string($0) }),
            ("user_notified", answer?.userNotified.map { .bool($0) }), ("user_notified_at", answer?.userNotifiedAt.map { .string($0) }),
        ])
    }

    /// "suspend-account acknowledged 2026-12-06T12:03:04Z (entry 31), platform ref X".
    public var words: String {
        var s = "\(kind.rawValue) on \(trigger.rawValue) (entry \(requestedEntry)): \(state.rawValue)"
        if let at = acknowledgedAt, let n = acknowledgedEntry { s += " \(at) (entry \(n))" }
        if let r = answer?.reference { s += ", platform ref \(r)" }
        if let d = answer?.disabledAt { s += ", disabled \(d)" }
        if let u = answer?.userNotified { s += u ? ", user notified" : ", user not notified" }
        return s
    }
}

/// What a referral may say about an account's disablement: only what the platform acknowledged.
/// An acknowledged `suspend-account` is a temporary disablement (an acknowledged
/// `lift-restriction` after it, its re-enabling); an acknowledged `ban-account`, a permanent one.
public struct AccountDisablement: Sendable, Equatable {
    public struct Facts: Sendable, Equatable {
        public var disabledDate: String?
        public var userNotified: Bool?
        public var userNotifiedDate: String?
        public var reenabledDate: String?
    }
    public var temporarily: Facts?
    public var permanently: Facts?

    public struct Account: Hashable, Sendable {
        public var platform: String
        public var id: String
        public init(platform: String, id: String) { self.platform = platform; self.id = id }
    }

    public static func from(_ actions: [ProvenAction]) -> [Account: AccountDisablement] {
        var out: [Account: AccountDisablement] = [:]
        for a in actions.sorted(by: { ($0.acknowledgedEntry ?? 0) < ($1.acknowledgedEntry ?? 0) }) {
            guard let answer = a.answer, let ackAt = a.acknowledgedAt else { continue }
            let facts = Facts(disabledDate: answer.disabledAt, userNotified: answer.userNotified, userNotifiedDate: answer.userNotifiedAt)
            for account in a.accounts {
                let key = Account(platform: a.platform, id: account)
                var d = out[key] ?? AccountDisablement()
                switch a.kind {
                case .suspendAccount: if d.temporarily == nil || d.temporarily?.reenabledDate != nil { d.temporarily = facts }
                case .banAccount: if d.permanently == nil { d.permanently = facts }
                case .liftRestriction: if d.temporarily != nil, d.temporarily?.reenabledDate == nil { d.temporarily?.reenabledDate = ackAt }
                default: continue
                }
                out[key] = d
            }
        }
        return out
    }
}
