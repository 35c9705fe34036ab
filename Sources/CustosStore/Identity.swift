import CustosCore
import Crypto
import Foundation
import GRDB
import HummingbirdBcrypt
import HummingbirdOTP

/// Login secrets and bearer tokens, and the checks `serve` makes with them. The custody log
/// records the SHA-256 of each secret the store keeps (never the secret), so `audit verify`
/// names a password hash, TOTP secret or token written behind the log's back.
public enum Secrets {
    /// ASVS 2.1: at least 12 characters; bcrypt reads at most 72 bytes, so longer is refused
    /// rather than silently cut.
    public static func validatePassword(_ password: String) throws(CustosError) {
        guard password.count >= 12 else { throw .invalidInput(field: "password", reason: "must be at least 12 characters") }
        guard password.utf8.count <= 72 else { throw .invalidInput(field: "password", reason: "must be at most 72 bytes (bcrypt reads no more)") }
        guard !password.unicodeScalars.contains(where: { $0.value == 0 }) else { throw .invalidInput(field: "password", reason: "must not contain a NUL character") }
    }

    /// bcrypt, cost 12 (about a quarter of a second here).
    public static func hashPassword(_ password: String, cost: UInt8 = 12) -> String { Bcrypt.hash(password, cost: cost) }

    public static func verifyPassword(_ password: String, hash: String) -> Bool {
        guard password.utf8.count <= 72 else { return false }
        return Bcrypt.verify(password, hash: hash)
    }

    /// A hash to compare against when the user is unknown, so that a wrong name costs as long as
    /// a wrong password (no user enumeration by timing).
    public static let decoyHash = Bcrypt.hash("custos decoy password", cost: 12)

    /// `count` random characters from the base32 alphabet: a TOTP secret (its UTF-8 bytes are
    /// the HMAC key, 32 × 5 bits of entropy) or a token body.
    static func randomText(_ count: Int, alphabet: String = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") -> String {
        let chars = Array(alphabet)
        var rng = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in chars[Int(rng.next(upperBound: UInt32(chars.count)))] })
    }

    /// The RFC 6238 time step a six-digit `code` is valid for at `millis` (one step of drift
    /// either way), or nil. The caller refuses a step already used (no replay).
    public static func totpStep(secret: String, code: String, millis: Int64) -> Int64? {
        let digits = code.filter { !$0.isWhitespace }
        guard digits.count == 6, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        let totp = TOTP(secret: secret)
        let step = millis / 30_000
        for s in [step, step - 1, step + 1] {
            let value = totp.compute(date: Date(timeIntervalSince1970: TimeInterval(s * 30)))
            if String(format: "%06d", value) == digits { return s }
        }
        return nil
    }

    public static func totpURI(secret: String, user: String, issuer: String) -> String {
        TOTP(secret: secret).createAuthenticatorURL(label: "\(issuer):\(user)", issuer: issuer)
    }
}

/// What `serve` needs to authenticate a user.
public struct Credential: Sendable {
    public let name: String
    public let role: Role
    public let disabled: Bool
    public let passwordHash: String?
    public let totpSecret: String?

    /// Changes whenever anything a session was opened on changes (the password, the TOTP
    /// enrolment, the role, being disabled): a session holding another stamp ends.
    public var stamp: String {
        SHA256Hex.of("\(role.rawValue)\n\(disabled)\n\(passwordHash ?? "")\n\(totpSecret ?? "")")
    }
}

public struct TokenRecord: Sendable {
    public let id: String
    public let user: String
    public let createdAt: String
    public let revokedAt: String?
}

extension Store {
    /// An admin sets anyone's password; a user may set their own.
    public func setPassword(user: String, password: String) throws {
        try Secrets.validatePassword(password)
        if try read({ db in try String.fetchOne(db.cachedStatement(sql: "SELECT role FROM users WHERE name = ?"), arguments: [user]) }) == Role.detector.rawValue {
            throw CustosError.invalidInput(field: "user", reason: "\(quoted(user)) is a detector: a machine client signs in with a bearer token (`custos token create`), never a password")
        }
        let hash = Secrets.hashPassword(password)  // slow: outside the transaction
        try storeSecret(hash, as: .password, of: user)
    }

    /// A signed-in user changes their own password (the console's Preferences): a session alone
    /// does not prove who sits at it, so the current password is asked again, and a one-time
    /// code when the user has TOTP (a code used once already is refused, as at sign-in). A
    /// wrong proof is a refusal in the log and changes nothing; the change ends every session of
    /// the user (their credentials changed), this one included.
    public func changeOwnPassword(current: String, code: String?, new: String) throws {
        try Secrets.validatePassword(new)
        guard let c = try credential(user: actor.name), let hash = c.passwordHash else {
            throw CustosError.unauthenticated(actor: actor.name, reason: "no password is set for \(quoted(actor.name))")
        }
        var failure: String?
        var step: Int64?
        if !Secrets.verifyPassword(current, hash: hash) {
            failure = "the current password is wrong"
        } else if let secret = c.totpSecret {
            step = try code.flatMap { try unusedTOTPStep(secret: secret, code: $0, user: actor.name) }
            if step == nil { failure = "the one-time code is wrong or already used" }
        }
        let newHash = failure == nil ? Secrets.hashPassword(new) : ""  // slow: outside the transaction
        try write(verb: "changeOwnPassword") { db, log in
            _ = try currentReviewer(db: db)
            if let failure { throw CustosError.unauthenticated(actor: actor.name, reason: "password not changed: \(failure)") }
            var proof: [String: JSONValue] = ["proof": .string(step == nil ? "password" : "password+totp")]
            if let step { proof["totp_step"] = .integer(step) }
            try putSecret(newHash, as: .password, of: actor.name, details: proof, db: db, log: log)
        }
    }

    /// Enrols (or re-enrols) TOTP for `user` and returns the `otpauth://` URI to show once.
    public func enrolTOTP(user: String) throws -> String {
        let secret = Secrets.randomText(32)
        let issuer = try organisation().name
        try storeSecret(secret, as: .totp, of: user)
        return Secrets.totpURI(secret: secret, user: user, issuer: issuer)
    }

    /// Clears a user's TOTP enrolment (a lost phone); an admin only.
    public func resetTOTP(user: String) throws {
        try write { db, log in
            try requireRole(db: db, log: log, .manageUsers)
            try requireUser(user, db: db)
            try log.record(.userTOTP(.init(sha256: nil, other: ["reason": .string("reset")])), subjectID: user)
        }
    }

    /// Issues a bearer token for `user`; the token is returned once and only its SHA-256 kept.
    public func createToken(user: String) throws -> (id: String, token: String) {
        let id = "tok-" + Secrets.randomText(10, alphabet: "abcdefghijklmnopqrstuvwxyz234567")
        let token = "custos_" + Secrets.randomText(43, alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        let digest = SHA256Hex.of(token)
        try write { db, log in
            try requireRole(db: db, log: log, .manageUsers)
            try requireUser(user, db: db)
            if let role = try String.fetchOne(db.cachedStatement(sql: "SELECT role FROM users WHERE name = ?"), arguments: [user]).flatMap(Role.init),
               Store.privilegedForTokens.contains(role) {
                throw CustosError.invalidState(subject: "user \(quoted(user))", state: role.rawValue,
                                               reason: "a \(role.rawValue) acts with a password and a one-time code; a bearer token, which never expires and skips the code, is not issued for the role")
            }
            try log.record(.tokenCreate(.init(user: user, tokenSHA256: digest)), subjectID: id)
        }
        return (id, token)
    }

    public func revokeToken(id: String) throws {
        try write { db, log in
            try requireRole(db: db, log: log, .manageUsers)
            guard let revoked = try Row.fetchOne(db.cachedStatement(sql: "SELECT revoked_at FROM tokens WHERE id = ?"), arguments: [id]) else {
                throw CustosError.notFound(kind: "token", name: id, hint: "`custos token list` shows them")
            }
            if (revoked["revoked_at"] as String?) != nil { throw CustosError.invalidState(subject: "token \(quoted(id))", state: "revoked", reason: "already") }
            try log.record(.tokenRevoke(.init()), subjectID: id)
        }
    }

    /// The tokens, with their users: an admin's read; anyone else is refused, and it is logged.
    public func tokens() throws -> [TokenRecord] {
        try requirePermission(.manageUsers)
        return try read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT id, user, created_at, revoked_at FROM tokens ORDER BY created_at, id")).map {
                TokenRecord(id: $0["id"], user: $0["user"], createdAt: $0["created_at"], revokedAt: $0["revoked_at"])
            }
        }
    }

    /// The acting user's console preferences: (blur, grayscale), both on unless turned off.
    public func preferences() throws -> (blur: Bool, grayscale: Bool) {
        try read { db in
            guard let r = try Row.fetchOne(db.cachedStatement(sql: "SELECT blur, grayscale FROM preferences WHERE user = ?"), arguments: [actor.name]) else { return (true, true) }
            return ((r["blur"] as Int64) != 0, (r["grayscale"] as Int64) != 0)
        }
    }

    public func setPreferences(blur: Bool, grayscale: Bool) throws {
        try write { db, log in
            _ = try currentReviewer(db: db)
            try log.record(.userPreferences(.init(blur: blur, grayscale: grayscale)), subjectID: actor.name)
        }
    }

    // MARK: authentication (serve)

    public func credential(user: String) throws -> Credential? {
        try read { db in
            guard let r = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT u.name, u.role, u.disabled, c.password_hash, c.totp_secret
                FROM users u LEFT JOIN credentials c ON c.user = u.name WHERE u.name = ?
                """), arguments: [user]), let role = Role(rawValue: r["role"]) else { return nil }
            return Credential(name: r["name"], role: role, disabled: (r["disabled"] as Int64) != 0, passwordHash: r["password_hash"], totpSecret: r["totp_secret"])
        }
    }

    /// Roles a bearer token never acts for (their sign-in needs a one-time code; a token is
    /// neither scoped nor expiring): compliance and admin.
    static let privilegedForTokens: Set<Role> = [.compliance, .admin]

    /// The enabled user a live (unrevoked) bearer token belongs to; nil for a user whose role is
    /// now privileged (a token issued before a role change acts for nobody).
    public func tokenUser(_ token: String) throws -> Reviewer? {
        try read { db in
            guard let r = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT u.name, u.role FROM tokens t JOIN users u ON u.name = t.user
                WHERE t.token_sha256 = ? AND t.revoked_at IS NULL AND u.disabled = 0
                """), arguments: [SHA256Hex.of(token)]), let role = Role(rawValue: r["role"]),
                  !Store.privilegedForTokens.contains(role) else { return nil }
            return Reviewer(name: r["name"], role: role)
        }
    }

    /// The step `code` was made for under `secret`, when it is right and newer than every step
    /// `user` has used (`lastTOTPStep`); nil otherwise. Sign-in and a password change ask it.
    public func unusedTOTPStep(secret: String, code: String, user: String) throws -> Int64? {
        guard let step = Secrets.totpStep(secret: secret, code: code, millis: clock()) else { return nil }
        return step > (try lastTOTPStep(user: user) ?? Int64.min) ? step : nil
    }

    /// The last TOTP step `user` used, from the log (each session.login, and each password change
    /// proven with a code, records it):
    /// a code is accepted once, across restarts (RFC 6238 §5.2).
    public func lastTOTPStep(user: String) throws -> Int64? {
        try read { db in
            try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT max(CAST(json_extract(details, '$.totp_step') AS INTEGER)) FROM custody
                WHERE subject_type = ? AND subject_id = ? AND action IN (?, ?)
                """), arguments: [CustodyAction.sessionLogin.subjectType.rawValue, user, CustodyAction.sessionLogin.rawValue, CustodyAction.userPassword.rawValue])
        }
    }

    /// Records a login, logout or failed attempt (`serve`); the actor is this store's actor.
    public func recordSession(_ action: CustodyAction, user: String, details: [String: JSONValue]) throws {
        let event: CustodyEvent = switch action {
        case .sessionLogin: .sessionLogin(.init(details))
        case .sessionLogout: .sessionLogout(.init(details))
        default: .sessionFail(.init(details))
        }
        try write { _, log in try log.record(event, subjectID: String(user.prefix(64))) }
    }

    // MARK: helpers

    private enum SecretKind {
        case password, totp
        var column: String { self == .password ? "password_hash" : "totp_secret" }
        var action: CustodyAction { self == .password ? .userPassword : .userTOTP }
        var digestKey: String { self == .password ? "password_sha256" : "totp_sha256" }
        var verb: String { self == .password ? "setPassword" : "enrolTOTP" }
    }

    /// Stores one login secret of `user` (the user themselves, or an admin) and logs its SHA-256.
    private func storeSecret(_ value: String, as kind: SecretKind, of user: String) throws {
        try write(verb: kind.verb) { db, log in
            try requireSelfOrAdmin(user, db: db, log: log)
            try putSecret(value, as: kind, of: user, db: db, log: log)
        }
    }

    /// Inside a write whose caller settled who may: the secret in `credentials` and its entry
    /// (the secret's SHA-256, never the secret, and any `details` of how it was proven).
    private func putSecret(_ value: String, as kind: SecretKind, of user: String, details: [String: JSONValue] = [:],
                           db: Database, log: CustodyLog) throws {
        let set = CustodyEvent.SecretSet(sha256: SHA256Hex.of(value), other: details.filter { $0.key != kind.digestKey })
        try log.record(kind == .password ? .userPassword(set) : .userTOTP(set), subjectID: user, side: SideFacts(secret: value))
    }

    private func requireUser(_ user: String, db: Database) throws {
        guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM users WHERE name = ?"), arguments: [user]) != nil else {
            throw CustosError.notFound(kind: "user", name: user)
        }
    }

    /// An admin changes anyone's credentials; a user changes their own only as their OS login
    /// (the CLI): a session or a token alone proves neither the current password nor a code.
    private func requireSelfOrAdmin(_ user: String, db: Database, log: CustodyLog) throws {
        if user == actor.name {
            _ = try currentReviewer(db: db)
            if ![AuthMethod.osLogin, .asserted].contains(actor.auth) {
                throw CustosError.invalidState(subject: "your own password and one-time code", state: "changed from a session",
                                               reason: "a session does not prove the current password and code: change your password under Preferences (it asks for both), or with `custos user set-password` / `custos user totp` as your OS login, or ask an admin")
            }
        } else {
            try requireRole(db: db, log: log, .manageUsers)
        }
        try requireUser(user, db: db)
    }
}
