import CustosCore
import CustosResources
import Crypto
import Foundation
import GRDB

/// Errors a person can act on. Every message names what is wrong and where.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Who is acting: the name recorded as actor, and the OS login that ran the command.
public struct Actor: Sendable, Equatable {
    public let name: String
    public let osUser: String
    public init(name: String, osUser: String) { self.name = name; self.osUser = osUser }

    /// The OS login, and `asserted` (from `--actor`) as the actor when given.
    public static func current(asserted: String? = nil) -> Actor {
        let os = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ProcessInfo.processInfo.environment["LOGNAME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? String(cString: getpwuid(getuid())?.pointee.pw_name ?? strdup("unknown"))
        return Actor(name: asserted ?? os, osUser: os)
    }
}

/// The Custos store: one SQLite file (WAL, foreign keys, busy timeout). Every public write
/// method is one IMMEDIATE transaction that changes state and appends its custody entries.
public final class Store: @unchecked Sendable {
    public let path: String
    public let actor: Actor
    let db: DatabaseQueue
    /// Injected clock, so tests can move time (lease expiry, holds).
    public var clock: @Sendable () -> Int64 = { Timestamp.nowMillis() }

    public static let defaultPath = "custos.db"

    /// Resolves `--db`, then `$CUSTOS_DB`, then `./custos.db`.
    public static func resolvePath(_ option: String?) -> String {
        if let option, !option.isEmpty { return option }
        if let env = ProcessInfo.processInfo.environment["CUSTOS_DB"], !env.isEmpty { return env }
        return defaultPath
    }

    init(path: String, actor: Actor, db: DatabaseQueue) {
        self.path = path
        self.actor = actor
        self.db = db
    }

    static func configuration(readonly: Bool = false) -> Configuration {
        var config = Configuration()
        config.readonly = readonly
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(120)
        config.label = "custos"
        if !readonly {
            config.prepareDatabase { db in
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                if mode?.lowercased() != "wal" { throw StoreError("could not switch the store to WAL mode (got \(mode ?? "nothing"))") }
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
        }
        return config
    }

    /// Opens an existing store, applying any migrations this binary carries that it lacks.
    public static func open(path: String, actor: Actor) throws -> Store {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError("no store at \(path): run `custos init --org NAME --contact-email EMAIL` first, or pass --db PATH")
        }
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration())
        } catch {
            throw StoreError("cannot open the store at \(path): \(describe(error))")
        }
        let store = Store(path: path, actor: actor, db: queue)
        try store.migrate()
        // Every command acts as a known, enabled user.
        _ = try store.read { db in try store.currentRole(db: db) }
        return store
    }

    /// Creates a new store and signing key; the OS user becomes the first admin.
    public static func create(path: String, keyPath: String?, org: String, contactEmail: String, actor: Actor) throws -> Store {
        let fm = FileManager.default
        let keyFile = keyPath ?? Store.defaultKeyPath(forStore: path)
        if fm.fileExists(atPath: path) { throw StoreError("a store already exists at \(path); refusing to overwrite it") }
        if fm.fileExists(atPath: keyFile) { throw StoreError("a key already exists at \(keyFile); refusing to overwrite it") }
        guard !org.trimmingCharacters(in: .whitespaces).isEmpty else { throw StoreError("--org must not be empty") }
        guard contactEmail.contains("@"), !contactEmail.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw StoreError("--contact-email is not an email address: \(quoted(contactEmail))")
        }
        let key = Curve25519.Signing.PrivateKey()
        // The key file first (exclusive create, 0600), so a store never exists without its key.
        try Store.writeSecret(KeyEncoding.privateKeyPEM(key), to: keyFile)
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration())
        } catch {
            try? fm.removeItem(atPath: keyFile)
            throw StoreError("cannot create the store at \(path): \(describe(error))")
        }
        let store = Store(path: path, actor: actor, db: queue)
        do {
            try store.migrate()
            try store.initialise(org: org, contactEmail: contactEmail, key: key, keyFile: keyFile)
        } catch {
            try? queue.close()
            try? fm.removeItem(atPath: path)
            try? fm.removeItem(atPath: path + "-wal")
            try? fm.removeItem(atPath: path + "-shm")
            try? fm.removeItem(atPath: keyFile)
            throw error
        }
        return store
    }

    public static func defaultKeyPath(forStore path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingPathExtension().path + ".signing.key"
    }

    static func writeSecret(_ text: String, to path: String) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw StoreError("cannot create the key file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw StoreError("cannot write the key file \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func initialise(org: String, contactEmail: String, key: Curve25519.Signing.PrivateKey, keyFile: String) throws {
        let origin = "custos/" + Store.slug(org) + "/" + String(KeyEncoding.fingerprint(key.publicKey).prefix(16))
        try write { db, log in
            let at = log.now
            for (k, v) in [("org", org), ("contact_email", contactEmail), ("log_origin", origin),
                           ("public_key_pem", KeyEncoding.publicKeyPEM(key.publicKey)),
                           ("key_file", URL(fileURLWithPath: keyFile).standardizedFileURL.path),
                           ("created_at", at)] {
                try db.execute(sql: "INSERT INTO store_meta(key, value) VALUES (?, ?)", arguments: [k, v])
            }
            try log.append(action: "store.init", subjectType: "store", subjectID: origin,
                           details: .object(["org": .string(org), "contact_email": .string(contactEmail)]))
            try log.append(action: "key.create", subjectType: "key", subjectID: KeyEncoding.fingerprint(key.publicKey),
                           details: .object(["algorithm": .string("Ed25519"), "origin": .string(origin)]))
            try db.execute(sql: "INSERT INTO users(name, role, created_at) VALUES (?, 'admin', ?)", arguments: [actor.osUser, at])
            try log.append(action: "user.add", subjectType: "user", subjectID: actor.osUser,
                           details: .object(["role": .string("admin"), "reason": .string("first admin, created by init")]))
        }
    }

    static func slug(_ s: String) -> String {
        let allowed = s.lowercased().unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII ? Character($0) : "-" }
        let collapsed = String(allowed).split(separator: "-").joined(separator: "-")
        return collapsed.isEmpty ? "org" : collapsed
    }

    // MARK: transactions

    /// Runs `body` in one IMMEDIATE transaction with a custody log bound to it. Nothing the
    /// body did survives a thrown error: state and custody commit together or not at all.
    @discardableResult
    public func write<T>(_ body: (Database, CustodyLog) throws -> T) throws -> T {
        do {
            return try db.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    let log = CustodyLog(db: db, actor: actor, now: Timestamp.utcString(millis: clock()))
                    result = try body(db, log)
                    return .commit
                }
                return result!
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(Store.describe(error))
        }
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try db.read(body)
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(Store.describe(error))
        }
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? DatabaseError {
            switch e.resultCode {
            case .SQLITE_FULL: return "the disk is full; this transaction was rolled back and records committed before it stay (free space and run the command again: it picks up where it stopped)"
            case .SQLITE_READONLY: return "the store is read-only; nothing was written (\(e.message ?? ""))"
            case .SQLITE_BUSY, .SQLITE_LOCKED: return "the store stayed busy for 120 s; nothing was written"
            case .SQLITE_CANTOPEN: return "the store file cannot be opened for writing (is it or its folder read-only?)"
            case .SQLITE_NOTADB, .SQLITE_CORRUPT: return "the file is not a valid Custos store (\(e.message ?? ""))"
            default: return e.message ?? "\(e)"
            }
        }
        return "\(error)"
    }

    // MARK: metadata

    public func meta(_ key: String) throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = ?", arguments: [key]) }
    }

    public struct Organisation: Sendable {
        public let name: String
        public let contactEmail: String
        public let origin: String
        public let publicKeyPEM: String
        public let keyFile: String
    }

    public func organisation() throws -> Organisation {
        try read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT key, value FROM store_meta")
            var m: [String: String] = [:]
            for r in rows { m[r["key"]] = r["value"] }
            guard let name = m["org"], let email = m["contact_email"], let origin = m["log_origin"],
                  let pem = m["public_key_pem"], let keyFile = m["key_file"] else {
                throw StoreError("the store has no organisation record; was it made by `custos init`?")
            }
            return Organisation(name: name, contactEmail: email, origin: origin, publicKeyPEM: pem, keyFile: keyFile)
        }
    }

    public func publicKey() throws -> Curve25519.Signing.PublicKey {
        try KeyEncoding.publicKey(pem: try organisation().publicKeyPEM)
    }

    /// Loads the signing key from its file and checks it matches the recorded public key.
    public func signingKey(path override: String? = nil) throws -> Curve25519.Signing.PrivateKey {
        let org = try organisation()
        let keyPath = override ?? ProcessInfo.processInfo.environment["CUSTOS_KEY"] ?? org.keyFile
        guard let data = FileManager.default.contents(atPath: keyPath), let text = String(data: data, encoding: .utf8) else {
            throw StoreError("cannot read the signing key at \(keyPath) (use --key PATH or $CUSTOS_KEY)")
        }
        let key = try KeyEncoding.privateKey(pem: text)
        guard KeyEncoding.publicKeyPEM(key.publicKey) == org.publicKeyPEM else {
            throw StoreError("the key at \(keyPath) is not this store's signing key")
        }
        return key
    }
}

