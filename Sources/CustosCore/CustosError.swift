/// Every failure a person or a program can act on, by kind. The CLI maps the kinds to exit
/// statuses (`ExitStatus`), a server to HTTP statuses; the description is the human message,
/// naming what is wrong and where. Untrusted names in it are already `quoted`.
public enum CustosError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A named thing does not exist. `kind` is "flag", "case", "agency", "user", "file", …;
    /// `hint` says what to do instead.
    case notFound(kind: String, name: String, hint: String? = nil)
    /// The actor is not a known, enabled user (or, later, not signed in).
    case unauthenticated(actor: String, reason: String)
    /// The actor's role does not allow the operation: who, their role, and what it needs.
    case forbidden(actor: String, role: Role, needs: String)
    /// The subject's state does not allow the operation (`subject` is e.g. `flag "a:1"`).
    case invalidState(subject: String, state: String, reason: String)
    /// Input is wrong: which field or argument, and why.
    case invalidInput(field: String, reason: String)
    /// The operation collides with something already stored.
    case conflict(subject: String, reason: String)
    /// The store, a file or the file system failed; the cause in words.
    case storage(cause: String)

    public var description: String {
        switch self {
        case .notFound(let kind, let name, let hint): "no \(kind) \(quoted(name))" + (hint.map { ": " + $0 } ?? "")
        case .unauthenticated(_, let reason): reason
        case .forbidden(let actor, let role, let needs): "\(actor) is a \(role.rawValue); \(needs)"
        case .invalidState(let subject, let state, let reason): "\(subject) is \(state); \(reason)"
        case .invalidInput(let field, let reason): field.isEmpty ? reason : "\(field): \(reason)"
        case .conflict(let subject, let reason): "\(subject) \(reason)"
        case .storage(let cause): cause
        }
    }

    public enum Kind: String, Sendable { case notFound, unauthenticated, forbidden, invalidState, invalidInput, conflict, storage }

    /// The case without its payload: what callers (exit statuses, HTTP statuses, tests) switch on.
    public var kind: Kind {
        switch self {
        case .notFound: .notFound
        case .unauthenticated: .unauthenticated
        case .forbidden: .forbidden
        case .invalidState: .invalidState
        case .invalidInput: .invalidInput
        case .conflict: .conflict
        case .storage: .storage
        }
    }

    /// The message with a prefix naming where it happened (a file, a record).
    public func located(_ location: String) -> String { "\(location): \(description)" }
}
