import CustosCore
import CustosResources
import Crypto
import Foundation
import GRDB
import GRDBSQLite

/// Who is acting: the name recorded as actor, the OS login that ran the command, and how the
/// actor was established. The caller establishes them (the CLI from the process, `serve` from a
/// login or a token, tests by name).
public struct Actor: Sendable, Equatable {
    public let name: String
    public let osUser: String
    public let auth: AuthMethod
    public init(name: String, osUser: String, auth: AuthMethod? = nil) {
        self.name = name; self.osUser = osUser
        self.auth = auth ?? (name == osUser ? .osLogin : .asserted)
    }
}

/// The Custos store: one SQLite file (WAL, foreign keys, busy timeout). Every public write
/// method is one IMMEDIATE transaction that changes state and appends its custody entries.
public final class Store: @unchecked Sendable {
    public let path: String
    public let actor: Actor
    /// One connection (a command), or a pool (`serve`): one writer and WAL readers beside it,
    /// so that pages never wait for an ingest's transaction.
    let db: any DatabaseWriter
    /// Injected clock, so tests can move time (lease expiry, holds).
    public var clock: @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }
    /// After each write, sign a checkpoint when `checkpoint-minutes` have passed since the last
    /// (with the store's key file, when this process can read it) and offer it to the
    /// witnesses. The CLI turns it on; library callers sign checkpoints themselves.
    public var autoCheckpoint = false
    private var checkpointing = false
    /// Set by `checkpointWALInBackground`; shared by the stores acting on this connection.
    var walCheckpointer: WALCheckpointer?
    /// The key every write signs the log's head with (see `HeadKey`); shared by the stores
    /// acting on this connection.
    let headKey: HeadKey
    /// The hash lists in use, ready to match (shared by the stores acting on this connection).
    let matchers: MatcherCache
    /// How checkpoints reach the witnesses (set by the process: the CLI and `serve` give
    /// `WitnessClient.post`); without it a witness is reported unreachable.
    public var witnessPost: WitnessPost = { _, _, _ in (0, "this process has no witness client") }

    public static let defaultPath = "custos.db"
    /// How long a write waits for the store's lock before it gives up.
    static let busySeconds = 120
    static let newStorePageSize = 16384

    init(path: String, actor: Actor, db: any DatabaseWriter, headKey: HeadKey = HeadKey(path: nil), matchers: MatcherCache = MatcherCache()) {
        self.path = path
        self.actor = actor
        self.db = db
        self.headKey = headKey
        self.matchers = matchers
    }

    /// The same open store acting for someone else (`serve` acts for each request's user):
    /// one connection, so every write is still one transaction after another.
    public func acting(as actor: Actor) -> Store {
        let store = Store(path: path, actor: actor, db: db, headKey: headKey, matchers: matchers)
        store.clock = clock
        store.autoCheckpoint = autoCheckpoint
        store.walCheckpointer = walCheckpointer
        store.witnessPost = witnessPost
        return store
    }

    /// `pageSize`: the file is being created, so its page size can still be chosen. A new store
    /// has 16 KiB pages (`newStorePageSize`; SQLite's default is 4 KiB), which pack several
    /// evidence documents of a few KiB into a page where 4 KiB pages hold one each; a copy has
    /// its source's (SQLite's backup cannot change the page size of a WAL database).
    static func configuration(readonly: Bool = false, pageSize: Int? = nil) -> Configuration {
        var config = Configuration()
        config.readonly = readonly
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(TimeInterval(busySeconds))
        config.label = "custos"
        if !readonly {
            config.prepareDatabase { db in
                if let pageSize { try db.execute(sql: "PRAGMA page_size = \(pageSize)") }
                // A pool's readers (read-only connections beside the writer) only read. They map
                // the file (up to SQLite's limit of about 2 GiB) so that a page the OS holds is
                // read without a system call: the stats page's trends read tens of thousands of
                // rows spread over the store, and reading them through the 16 MiB cache one
                // pread at a time took most of its time. The writer does not map.
                if db.configuration.readonly {
                    try db.execute(sql: "PRAGMA cache_size = -16384; PRAGMA mmap_size = 2147418112")
                    return
                }
                let mode = try String.fetchOne(db.cachedStatement(sql: "PRAGMA journal_mode = WAL"))
                if mode?.lowercased() != "wal" { throw CustosError.storage(cause: "could not switch the store to WAL mode (got \(mode ?? "nothing"))") }
                try db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute()
                // 32 MiB of page cache (SQLite's default is 2 MiB): the indexes an ingest or a
                // verify walks stay in memory.
                try db.cachedStatement(sql: "PRAGMA cache_size = -32768").execute()
            }
        }
        return config
    }

    /// How a command uses the store: `read` opens it read-only (a read-only copy can be
    /// inspected; nothing can be written), `write` may also apply migrations.
    /// `verify` is `read` for anyone who holds the file (an examiner with a copy, or a store
    /// whose users table was edited): it checks the store's integrity and shows no evidence.
    public enum Access: Sendable { case read, write, verify }

    /// Opens an existing Custos store, applying any migrations this binary carries that it
    /// lacks (`write` access only). Anything that is not a Custos store (a folder, a FIFO, an
    /// empty file, another application's database) is refused and left untouched.
    /// `keyPath`: the signing key every write signs the log's head with (default: the file
    /// `init` wrote, as the store records it); read at the first write.
    /// `readers`: open a pool (one writer and WAL readers) rather than one connection (`serve`).
    public static func open(path: String, actor: Actor, access: Access = .write, keyPath: String? = nil, readers: Bool = false) throws -> Store {
        try checkStoreFile(path)
        let headKey = HeadKey(path: keyPath)
        let queue: DatabaseQueue
        do {
            // First read-only, to recognise the file before anything could be written to it.
            queue = try DatabaseQueue(path: path, configuration: configuration(readonly: true))
            let recognised = try queue.read { db in
                try db.tableExists("schema_migrations") && db.tableExists("store_meta") && db.tableExists("custody")
            }
            guard recognised else {
                throw CustosError.invalidInput(field: path, reason: "not a Custos store (no Custos schema); only `custos init` creates one")
            }
        } catch let e as CustosError {
            throw e
        } catch let e as DatabaseError where e.resultCode == .SQLITE_NOTADB || e.resultCode == .SQLITE_CORRUPT {
            throw CustosError.invalidInput(field: path, reason: "not a Custos store (\(describe(e)))")
        } catch {
            throw CustosError.storage(cause: "cannot open the store at \(path): \(describe(error))")
        }
        if access == .write { try tightenPermissions(path) }
        var store = Store(path: path, actor: actor, db: queue, headKey: headKey)
        // A reading command on a store an older custos wrote upgrades it first when it can
        // (a read-only copy of an older store is refused: it cannot be upgraded).
        let upgrade = access != .write ? try !store.checkMigrations() && Store.canWrite(path) : false
        if access == .write || upgrade {
            try? queue.close()
            do {
                let writer: any DatabaseWriter = readers && access == .write
                    ? try DatabasePool(path: path, configuration: configuration())
                    : try DatabaseQueue(path: path, configuration: configuration())
                store = Store(path: path, actor: actor, db: writer, headKey: headKey)
            } catch {
                throw CustosError.storage(cause: "cannot open the store at \(path): \(describe(error))")
            }
            try store.migrate()
            if upgrade {
                // Back to read-only for the command itself.
                try? store.db.close()
                store = Store(path: path, actor: actor, db: try DatabaseQueue(path: path, configuration: configuration(readonly: true)), headKey: headKey)
            }
        } else {
            try store.checkMigrations(requireCurrent: true)
        }
        // Every command acts as a known, enabled user; a refusal is itself recorded.
        if access == .verify { return store }
        do {
            _ = try store.read { db in try store.currentReviewer(db: db) }
        } catch let e as CustosError {
            // Recorded even for a read-only command when the file can be written.
            try? store.recordRefusal(e, verb: "open")
            throw e
        }
        return store
    }

    /// A store any other local account can read (an older custos created stores with the
    /// umask, usually 0644) gives away every conversation and credential without a custody
    /// entry: a command that writes makes it, its WAL and SHM its owner's alone, or refuses.
    static func tightenPermissions(_ path: String) throws {
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            guard stat(file, &info) == 0, info.st_mode & 0o077 != 0 else { continue }
            guard chmod(file, info.st_mode & 0o700) == 0 else {
                throw CustosError.invalidState(subject: file, state: "readable by others (mode \(String(info.st_mode & 0o777, radix: 8)))",
                                               reason: "it holds evidence and credentials; run `chmod 600 \(path)*` as its owner. Nothing was written")
            }
        }
    }

    /// Whether this process may write the file (and so upgrade it).
    static func canWrite(_ path: String) -> Bool { Glibc.access(path, W_OK) == 0 }

    /// A store path must name a regular file (for `open`) or nothing yet (for `create`).
    static func checkStoreFile(_ path: String, mustExist: Bool = true) throws {
        let exists = try InputPath.requireRegularFile(path, role: "--db", mayBeMissing: !mustExist, kind: "store",
                                                      hint: "run `custos init --org NAME --contact-email EMAIL` first, or pass --db PATH")
        if exists && !mustExist { throw CustosError.conflict(subject: "a store", reason: "already exists at \(path); refusing to overwrite it") }
    }

    /// Creates a new store and signing key; the OS user becomes the first admin.
    public static func create(path: String, keyPath: String?, org: String, contactEmail: String, actor: Actor) throws -> Store {
        let fm = FileManager.default
        let keyFile = keyPath ?? Store.defaultKeyPath(forStore: path)
        try checkStoreFile(path, mustExist: false)
        if fm.fileExists(atPath: keyFile) { throw CustosError.conflict(subject: "a key", reason: "already exists at \(keyFile); refusing to overwrite it") }
        guard !org.trimmingCharacters(in: .whitespaces).isEmpty else { throw CustosError.invalidInput(field: "--org", reason: "must not be empty") }
        guard contactEmail.contains("@"), !contactEmail.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw CustosError.invalidInput(field: "--contact-email", reason: "not an email address: \(quoted(contactEmail))")
        }
        let key = Curve25519.Signing.PrivateKey()
        // The key file first (exclusive create, 0600), so a store never exists without its key.
        try Store.writeSecret(KeyEncoding.privateKeyPEM(key), to: keyFile)
        // The store 0600 before SQLite opens it: its WAL and SHM take the file's mode.
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            try? fm.removeItem(atPath: keyFile)
            throw CustosError.storage(cause: "cannot create the store at \(path): \(String(cString: strerror(errno)))")
        }
        close(fd)
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration(pageSize: newStorePageSize))
        } catch {
            Store.removeStoreFiles(path)
            try? fm.removeItem(atPath: keyFile)
            throw CustosError.storage(cause: "cannot create the store at \(path): \(describe(error))")
        }
        let store = Store(path: path, actor: actor, db: queue, headKey: HeadKey(path: keyFile, key: key))
        do {
            try store.migrate()
            try store.initialise(org: org, contactEmail: contactEmail, key: key, keyFile: keyFile)
        } catch {
            try? queue.close()
            Store.removeStoreFiles(path)
            try? fm.removeItem(atPath: keyFile)
            throw error
        }
        return store
    }

    public static func defaultKeyPath(forStore path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingPathExtension().path + ".signing.key"
    }

    public static func writeSecret(_ text: String, to path: String) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw CustosError.storage(cause: "cannot create the key file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw CustosError.storage(cause: "cannot write the key file \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func initialise(org: String, contactEmail: String, key: Curve25519.Signing.PrivateKey, keyFile: String) throws {
        let origin = "custos/" + Store.slug(org) + "/" + String(KeyEncoding.fingerprint(key.publicKey).prefix(16))
        try write { db, log in
            try log.record(.storeInit(.init(org: org, contactEmail: contactEmail, schema: try Migrations.applied(db))), subjectID: origin)
            try log.record(.keyCreate(.init(origin: origin, publicKey: KeyEncoding.publicKeyPEM(key.publicKey),
                                            keyFile: URL(fileURLWithPath: keyFile).standardizedFileURL.path)),
                           subjectID: KeyEncoding.fingerprint(key.publicKey))
            try log.record(.userAdd(.init(role: .admin, reason: "first admin, created by init")), subjectID: actor.osUser)
        }
    }

    static func slug(_ s: String) -> String {
        let allowed = s.lowercased().unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII ? Character($0) : "-" }
        let collapsed = String(allowed).split(separator: "-").joined(separator: "-")
        return collapsed.isEmpty ? "org" : collapsed
    }

    // MARK: transactions

    /// Runs `body` in one IMMEDIATE transaction with a custody log bound to it. Nothing the
    /// body did survives a thrown error: state and custody commit together or not at all. A
    /// refusal by the rules (unknown or disabled user, wrong role, a state that does not allow
    /// the step, a conflict) rolls the body back and is then recorded in a transaction of its
    /// own: who tried, what (`verb`, the calling method) and why. Bad input is not recorded.
    /// `durable: false` (an ingest batch) commits at synchronous=NORMAL: atomic, but on disk
    /// only at the next fsync of the WAL, which the caller owes (`syncLog`) before it reports
    /// the write; every other write commits at FULL.
    @discardableResult
    public func write<T>(verb: String = #function, durable: Bool = true, _ body: (Database, CustodyLog) throws -> T) throws -> T {
        do {
            let result = try transaction(durable: durable, body)
            // The key file is read only when a checkpoint is due (ingest writes a batch at a time).
            if autoCheckpoint && !checkpointing, (try? checkpointDue()) == true, let key = try? signingKey() {
                checkpointing = true
                defer { checkpointing = false }
                _ = try? checkpointIfDue(key: key)
            }
            return result
        } catch let e as CustosError {
            switch e {
            // The rules refusing a step (who may, or what state allows): recorded, nothing else changes.
            case .forbidden, .unauthenticated, .invalidState, .conflict: try? recordRefusal(e, verb: verb)
            default: break
            }
            throw e
        }
    }

    /// The transaction itself, with no refusal recorded (`write` records them; `restore` acts
    /// for whoever can write the file): the body, then the log's signed head, committed together.
    func transaction<T>(durable: Bool = true, _ body: (Database, CustodyLog) throws -> T) throws -> T {
        let key = try signingKeyForWrites()
        do {
            return try db.writeWithoutTransaction { db in
                if !durable { try db.cachedStatement(sql: "PRAGMA synchronous = NORMAL").execute() }
                defer { if !durable { try? db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute() } }
                var result: T?
                try db.inTransaction(.immediate) {
                    let log = CustodyLog(db: db, actor: actor, millis: clock())
                    result = try body(db, log)
                    try signHead(db, log, key: key)
                    return .commit
                }
                guard let result else { throw CustosError.storage(cause: "the transaction produced no result") }
                return result
            }
        } catch let e as CustosError {
            throw e
        } catch {
            throw CustosError.storage(cause: Store.describe(error))
        }
    }

    /// Writes the WAL to disk (fsync): every transaction committed so far, `durable` or not,
    /// survives a power loss from here on. It does not take the connection: frames a commit in
    /// progress has written are flushed too but count for nothing without their commit frame,
    /// and a frame a checkpoint has already copied is on disk in the database file (a
    /// checkpoint syncs that file before the WAL may be reused), so it need not wait for either.
    public func syncLog() throws {
        let fd = Glibc.open(path + "-wal", O_RDONLY)
        guard fd >= 0 else { return }  // no WAL: everything is in the database file
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw CustosError.storage(cause: "cannot write the store's WAL to disk (fsync failed: errno \(errno))") }
    }

    /// The most the WAL grows during a bulk write before it is copied into the database: fewer
    /// checkpoints, each with its fsyncs, and a page rewritten by several batches is copied once.
    public static let bulkWALBytes = 64 << 20

    /// Runs `body` (a bulk write) with the WAL allowed to grow to `bulkWALBytes` before it is
    /// copied into the database. With SQLite's automatic checkpoint (a command) the threshold
    /// is raised for the run and then set back to SQLite's default (1000 pages); a store that
    /// checkpoints in the background (`serve`) already works at that size and is left alone.
    func withLargeWAL<T>(_ body: () throws -> T) throws -> T {
        guard walCheckpointer == nil else { return try body() }
        try setAutomaticWALCheckpoint(bytes: Store.bulkWALBytes)
        defer { try? setAutomaticWALCheckpoint(bytes: nil) }
        return try body()
    }

    /// SQLite's automatic checkpoint at `bytes` of WAL; nil, its default (1000 pages).
    private func setAutomaticWALCheckpoint(bytes: Int?) throws {
        try db.writeWithoutTransaction { db in
            let pages = try bytes.map { max(1000, try Store.walFrames(bytes: $0, db)) } ?? 1000
            _ = try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint = \(pages)")
        }
    }

    /// How many WAL frames (one page each) `bytes` make in this store; at least one.
    private static func walFrames(bytes: Int, _ db: Database) throws -> Int {
        max(1, bytes / max(512, try Int.fetchOne(db.cachedStatement(sql: "PRAGMA page_size")) ?? 4096))
    }

    /// Moves the copying of the WAL into the database off the writers' path, for a process that
    /// keeps the store open and answers clients (`serve`). SQLite's automatic checkpoint runs
    /// inside the commit that takes the WAL past its threshold, so that commit, and the client
    /// waiting on it, pays for copying the whole WAL (about a quarter of a second at 64 MiB
    /// here). Instead, a commit that leaves the WAL at `bytes` or more only asks for a passive
    /// checkpoint, which a utility thread runs on a second connection, beside the writers
    /// (see `WALCheckpointer`).
    public func checkpointWALInBackground(atBytes bytes: Int = Store.bulkWALBytes) throws {
        guard walCheckpointer == nil else { return }
        let beside: DatabaseQueue
        do { beside = try DatabaseQueue(path: path, configuration: Store.configuration()) } catch {
            throw CustosError.storage(cause: "cannot open a second connection to \(path) for checkpoints: \(Store.describe(error))")
        }
        try db.writeWithoutTransaction { db in
            let checkpointer = WALCheckpointer(threshold: try Store.walFrames(bytes: bytes, db), writers: self.db, beside: beside)
            // Replaces SQLite's own hook (the automatic checkpoint); the connection holds the
            // checkpointer for as long as it is open.
            sqlite3_wal_hook(db.sqliteConnection, { context, _, _, frames in
                if let context { Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().committed(frames: Int(frames)) }
                return SQLITE_OK
            }, Unmanaged.passRetained(checkpointer).toOpaque())
            walCheckpointer = checkpointer
        }
    }

    /// Appends a `refused` entry; nothing else changes. A store opened read-only (a command that
    /// only reads) records it through a writable connection of its own when the file can be
    /// written (a read-only copy cannot record it).
    public func recordRefusal(_ error: CustosError, verb: String) throws {
        let name = verb.prefix(while: { $0 != "(" })
        let recorder: Store
        if db.configuration.readonly {
            guard Store.canWrite(path), let queue = try? DatabaseQueue(path: path, configuration: Store.configuration()) else {
                throw CustosError.storage(cause: "a read-only store cannot record a refusal")
            }
            recorder = Store(path: path, actor: actor, db: queue, headKey: headKey)
            recorder.clock = clock
        } else {
            recorder = self
        }
        defer { if recorder !== self { try? recorder.db.close() } }
        _ = try recorder.transaction { _, log in
            try log.record(.refused(.init(["verb": .string(String(name)), "reason": .string(error.description)])), subjectID: actor.name)
        }
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try db.read(body)
        } catch let e as CustosError {
            throw e
        } catch {
            throw CustosError.storage(cause: Store.describe(error))
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
        try read { db in try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM store_meta WHERE key = ?"), arguments: [key]) }
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
            let rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT key, value FROM store_meta"))
            var m: [String: String] = [:]
            for r in rows { m[r["key"]] = r["value"] }
            guard let name = m["org"], let email = m["contact_email"], let origin = m["log_origin"],
                  let pem = m["public_key_pem"], let keyFile = m["key_file"] else {
                throw CustosError.storage(cause: "the store has no organisation record; was it made by `custos init`?")
            }
            return Organisation(name: name, contactEmail: email, origin: origin, publicKeyPEM: pem, keyFile: keyFile)
        }
    }

    public func publicKey() throws -> Curve25519.Signing.PublicKey {
        try KeyEncoding.publicKey(pem: try organisation().publicKeyPEM)
    }

    /// Loads the signing key from `path` (default: the file `init` wrote) and checks it matches
    /// the recorded public key.
    public func signingKey(path override: String? = nil) throws -> Curve25519.Signing.PrivateKey {
        let org = try organisation()
        let keyPath = override ?? org.keyFile
        guard let data = FileManager.default.contents(atPath: keyPath), let text = String(data: data, encoding: .utf8) else {
            throw CustosError.notFound(kind: "signing key", name: keyPath, hint: "use --key PATH or $CUSTOS_KEY")
        }
        let key = try KeyEncoding.privateKey(pem: text)
        guard KeyEncoding.publicKeyPEM(key.publicKey) == org.publicKeyPEM else {
            throw CustosError.invalidInput(field: "--key", reason: "the key at \(keyPath) is not this store's signing key")
        }
        return key
    }
}

/// Runs one passive WAL checkpoint at a time on a utility thread when a commit reports the WAL
/// at `threshold` frames or more (see `Store.checkpointWALInBackground`). The copying runs on a second
/// connection, so the writers go on committing meanwhile. The WAL starts again from its
/// beginning only when a write transaction begins with every frame copied, and commits made
/// during that copy added frames (without this second step the WAL grew past 900 MiB in an
/// ingest of 100,000 flags); so the rest, those frames, is then copied on the writers'
/// connection, which they wait for, and the next write starts the WAL again.
final class WALCheckpointer: @unchecked Sendable {
    let threshold: Int
    private weak var writers: (any DatabaseWriter)?
    private let beside: DatabaseQueue
    private let lock = NSLock()
    private var pending = false
    private var runs = 0
    private var lastFrames = 0
    private static let queue = DispatchQueue(label: "custos.wal-checkpoint", qos: .utility)

    init(threshold: Int, writers: any DatabaseWriter, beside: DatabaseQueue) {
        self.threshold = threshold
        self.writers = writers
        self.beside = beside
    }

    /// Called by SQLite inside a commit (on the writer's thread, connection held): only asks.
    func committed(frames walFrames: Int) {
        guard lock.withLock({ () -> Bool in
            lastFrames = walFrames
            guard walFrames >= threshold, !pending else { return false }
            pending = true
            return true
        }) else { return }
        WALCheckpointer.queue.async { [self] in
            run(between: {})
            lock.withLock { pending = false; runs += 1 }
        }
    }

    /// One checkpoint: the copy beside the writers, then the rest on their connection. A
    /// failure (the store closed, or busy) leaves the WAL as it is: the next commit asks again.
    /// `between` runs between the two (tests commit there).
    func run(between: () throws -> Void) rethrows {
        _ = try? beside.writeWithoutTransaction { try $0.checkpoint(.passive) }
        try between()
        _ = try? writers?.writeWithoutTransaction { try $0.checkpoint(.passive) }
    }

    /// Checkpoints run so far.
    var checkpointsRun: Int { lock.withLock { runs } }
    /// The WAL's size in frames after the last commit: it falls when the WAL starts again.
    var walFrames: Int { lock.withLock { lastFrames } }
}
