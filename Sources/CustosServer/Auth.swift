import Crypto
import CustosAgencies
import CustosCore
import CustosStore
import Foundation

/// Who a request acts as, established by the auth middleware from a session cookie or a bearer
/// token, and carried to the handlers (the OpenAPI ones receive no request context) in a task
/// local for the request's duration.
public struct Principal: Sendable, Equatable {
    public let user: String
    public let role: Role
    public let auth: AuthMethod
    /// The session's id and CSRF token; nil for a bearer token.
    let sessionID: String?
    let csrf: String?

    @TaskLocal static var current: Principal?
    /// The client's address as the server saw it (for login entries and throttling).
    @TaskLocal static var address: String = "unknown"
    /// A Set-Cookie value a handler wants on its response (the generated API code would
    /// percent-encode a header it set), added by the auth middleware.
    @TaskLocal static var cookieBox: CookieBox?
}

final class CookieBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: String?
    var value: String? {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
}

/// Server-side sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie names one; it
/// ends after 30 idle minutes or 12 hours, whichever comes first, at logout, or when the
/// user's credentials, role or standing change. Kept in memory and in the store (by the
/// SHA-256 of the id, bound to its session.login entry), so a restart signs nobody out; the
/// CSRF token is derived from the id, so it survives too.
actor Sessions {
    struct Session: Sendable {
        let principal: Principal
        /// The user's `Credential.stamp` at sign-in: the session ends when it changes.
        let stamp: String
        let started: Int64
        var lastSeen: Int64
        /// When the stamp was last compared with the store's (at most once a `recheckMillis`).
        var checked: Int64
        /// The last sight the store keeps (refreshed at most once a `touchMillis`).
        var kept: Int64
    }
    /// How stale a session's view of its user's credentials may be: a change made anywhere
    /// (the CLI too) ends the session within a second, and a busy console reads them once a
    /// second per session, not once a request.
    static let recheckMillis: Int64 = 1000
    static let idleMillis: Int64 = 30 * 60_000
    static let absoluteMillis: Int64 = Store.sessionLifetimeMillis
    static let touchMillis: Int64 = 60_000

    let store: Store
    private var sessions: [String: Session] = [:]

    init(store: Store) { self.store = store }

    static func digest(_ id: String) -> String { SHA256Hex.of("custos-session\n" + id) }
    static func csrf(_ id: String) -> String { base64url(Array(SHA256.hash(data: Data(("custos-csrf\n" + id).utf8)))) }

    /// A new session (a new id each login: rotation), with its CSRF token; its login entry and
    /// its kept row are written in one transaction.
    func create(user: String, role: Role, auth: AuthMethod, stamp: String, now: Int64, details: [String: JSONValue]) async throws -> Principal {
        let id = Sessions.random()
        let p = Principal(user: user, role: role, auth: auth, sessionID: id, csrf: Sessions.csrf(id))
        let store = self.store
        try await blocking { try store.acting(as: Actor(name: user, osUser: store.actor.osUser, auth: auth))
            .openSession(idSHA256: Sessions.digest(id), user: user, auth: auth, stamp: stamp, details: details) }
        sessions[id] = Session(principal: p, stamp: stamp, started: now, lastSeen: now, checked: now, kept: now)
        return p
    }

    /// `recheck`: the stamp to compare with the store's now, when it is time to.
    enum Lookup { case live(Principal, recheck: String?), expired(Principal), unknown }

    func lookup(_ id: String, now: Int64) async -> Lookup {
        if sessions[id] == nil {
            // Opened before a restart: the store kept it (and its login entry vouches for it).
            let store = self.store
            guard let kept = try? await blocking({ try store.storedSession(idSHA256: Sessions.digest(id)) }) ?? nil else { return .unknown }
            let p = Principal(user: kept.user, role: kept.role, auth: kept.auth, sessionID: id, csrf: Sessions.csrf(id))
            sessions[id] = Session(principal: p, stamp: kept.stamp, started: kept.startedMillis, lastSeen: kept.lastSeenMillis, checked: 0,
                                   kept: kept.lastSeenMillis)
        }
        guard var s = sessions[id] else { return .unknown }
        if now - s.lastSeen > Sessions.idleMillis || now - s.started > Sessions.absoluteMillis {
            sessions[id] = nil
            return .expired(s.principal)
        }
        s.lastSeen = now
        let due = now - s.checked >= Sessions.recheckMillis
        if due { s.checked = now }
        if now - s.kept >= Sessions.touchMillis {
            s.kept = now
            let store = self.store
            try? await blocking { try store.touchSession(idSHA256: Sessions.digest(id), at: now) }
        }
        sessions[id] = s
        return .live(s.principal, recheck: due ? s.stamp : nil)
    }

    func end(_ id: String) -> Principal? { sessions.removeValue(forKey: id)?.principal }

    /// Ends every session of `user` (disabled, or password changed by an admin).
    func end(user: String) async {
        sessions = sessions.filter { $0.value.principal.user != user }
        let store = self.store
        try? await blocking { try store.forgetSessions(user: user) }
    }

    /// The TOTP steps each user has used, so a code is accepted once (RFC 6238 §5.2): here for
    /// two sign-ins racing, and in the log (`Store.unusedTOTPStep`) across restarts.
    private var usedSteps: [String: Int64] = [:]
    func useTOTPStep(_ step: Int64, user: String) -> Bool {
        if let last = usedSteps[user], step <= last { return false }
        usedSteps[user] = step
        return true
    }

    static func random() -> String {
        var rng = SystemRandomNumberGenerator()
        return base64url((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Failed sign-ins, throttled per account and per address (ASVS 2.2.1): after 5 failures in a
/// row for an account (20 for an address) each further attempt waits, doubling from 1 s up to
/// 15 minutes; a success clears the account's count. The counters are kept in the store, so a
/// restart forgets no wait.
actor Throttle {
    struct Counter { var failures = 0; var until: Int64 = 0 }
    private var accounts: [String: Counter] = [:]
    private var addresses: [String: Counter] = [:]
    static let accountFree = 5, addressFree = 20
    static let maxWaitMillis: Int64 = 15 * 60_000
    let store: Store?
    private var loaded = false

    init(store: Store? = nil) { self.store = store }

    /// The kept counters, once.
    private func load() async {
        guard !loaded, let store else { return }
        loaded = true
        for c in (try? await blocking({ try store.throttleCounters() })) ?? [] {
            if c.key.hasPrefix("account:") { accounts[String(c.key.dropFirst(8))] = Counter(failures: c.failures, until: c.untilMillis) }
            if c.key.hasPrefix("address:") { addresses[String(c.key.dropFirst(8))] = Counter(failures: c.failures, until: c.untilMillis) }
        }
    }

    private func keep(_ key: String, _ c: Counter?) async {
        guard let store else { return }
        try? await blocking { try store.saveThrottleCounter(key: key, failures: c?.failures, untilMillis: c?.until ?? 0) }
    }

    /// Milliseconds the caller must still wait, or 0.
    func wait(account: String, address: String, now: Int64) async -> Int64 {
        await load()
        return max(accounts[account].map { $0.until - now } ?? 0, addresses[address].map { $0.until - now } ?? 0, 0)
    }

    /// Counts a failure; true when this failure starts (or lengthens) a wait.
    @discardableResult
    func fail(account: String, address: String, now: Int64) async -> Bool {
        await load()
        func bump(_ c: inout Counter, free: Int) -> Bool {
            c.failures += 1
            guard c.failures >= free else { return false }
            let wait = min(Throttle.maxWaitMillis, Int64(1000) << Int64(min(c.failures - free, 20)))
            c.until = now + wait
            return true
        }
        prune(now: now)
        let a = bump(&accounts[account, default: Counter()], free: Throttle.accountFree)
        let b = bump(&addresses[address, default: Counter()], free: Throttle.addressFree)
        await keep("account:" + account, accounts[account])
        await keep("address:" + address, addresses[address])
        return a || b
    }

    func succeed(account: String) async {
        accounts[account] = nil
        await keep("account:" + account, nil)
    }

    /// Forgets counters whose wait is over and that cannot start one soon, so names an attacker
    /// invents do not pile up.
    func prune(now: Int64) {
        guard accounts.count + addresses.count > 10_000 else { return }
        accounts = accounts.filter { $0.value.until > now || $0.value.failures >= Throttle.accountFree }
        addresses = addresses.filter { $0.value.until > now || $0.value.failures >= Throttle.addressFree }
        if accounts.count > 50_000 { accounts = accounts.filter { $0.value.until > now } }
    }
}

/// A sign-in refused: `status` 401, or 429 with the seconds to wait.
struct LoginRefusal: Error {
    let status: Int
    let message: String
    var retryAfter: Int64?
}

/// Refusals nobody is signed in for (a cross-site request, a throttled sign-in), recorded at
/// most once per key (an address and what was refused) per minute, so a flood cannot fill the
/// log while every kind of refusal still shows in it.
actor RefusalWindow {
    private var last: [String: Int64] = [:]
    static let windowMillis: Int64 = 60_000

    /// True when a refusal under `key` should be recorded now.
    func due(_ key: String, now: Int64) -> Bool {
        if last.count > 10_000 { last = last.filter { now - $0.value < RefusalWindow.windowMillis } }
        if let t = last[key], now - t < RefusalWindow.windowMillis { return false }
        last[key] = now
        return true
    }
}
