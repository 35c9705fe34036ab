import ArgumentParser
import CustosAgencies
import CustosCore
import CustosStore
import Foundation

/// Options every command takes, before or after the subcommand name; and where the store is
/// and who is acting are resolved here, from the process, not in `Store`.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The store file (default: $CUSTOS_DB, else ./custos.db).")
    var db: String?

    @Option(name: .long, help: "Act as this Custos user (recorded as asserted by the OS user).")
    var actor: String?

    /// `--db`, then `$CUSTOS_DB`, then `./custos.db`.
    var path: String {
        if let db, !db.isEmpty { return db }
        if let env = ProcessInfo.processInfo.environment["CUSTOS_DB"], !env.isEmpty { return env }
        return Store.defaultPath
    }

    /// The OS login of the process's real uid, resolved through the system user database
    /// (never `$USER` or `$LOGNAME`, which any process can set); `--actor` names the actor.
    var actorValue: Actor {
        let os = GlobalOptions.osLogin()
        return Actor(name: actor ?? os, osUser: os, auth: actor == nil ? .osLogin : .asserted)
    }

    /// `--key`, then `$CUSTOS_KEY`; nil means the key file `init` wrote.
    func keyPath(_ option: String?) -> String? {
        option ?? ProcessInfo.processInfo.environment["CUSTOS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static func osLogin() -> String {
        guard let entry = getpwuid(getuid()), let name = entry.pointee.pw_name else { return "uid-\(getuid())" }
        return String(cString: name)
    }

    /// Opens the store: `.read` for commands that only read (read-only; a read-only copy works).
    /// `key`: a command's own `--key` (every write signs the log's head with the key).
    func open(_ access: Store.Access = .write, key: String? = nil, readers: Bool = false) throws -> Store {
        let store = try Store.open(path: path, actor: actorValue, access: access, keyPath: keyPath(key), readers: readers)
        store.autoCheckpoint = access == .write
        store.witnessPost = WitnessClient.post
        return store
    }
}

/// A failure printed as `custos: message` with a chosen exit status.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    var code: Int32 = 1
    init(_ message: String, code: Int32 = 1) { description = message; self.code = code }
}

/// The exit statuses, in one place (the README's table is this).
enum ExitStatus {
    static let failure: Int32 = 1
    /// verify-packet: every check passed, but no key was pinned, so the origin is unproven.
    static let unpinned: Int32 = 2
    static let rejected: Int32 = 3
    static let usage: Int32 = 64
    static let invalidInput: Int32 = 65
    static let notFound: Int32 = 66
    static let invalidState: Int32 = 69
    static let conflict: Int32 = 73
    /// `submit` stopped on a transient failure: run it again to resume.
    static let tempfail: Int32 = 75
    static let storage: Int32 = 74
    static let forbidden: Int32 = 77

    static func of(_ error: CustosError) -> Int32 {
        switch error {
        case .invalidInput: invalidInput
        case .notFound: notFound
        case .invalidState: invalidState
        case .conflict: conflict
        case .storage: storage
        case .forbidden, .unauthenticated: forbidden
        }
    }
}

