import CustosAgencies
import CustosCore
import CustosResources
import CustosStore
import Foundation
import Hummingbird
import Logging
import NIOCore
import OpenAPIHummingbird
import OpenAPIRuntime

/// The request context: Hummingbird's core storage and the client's address.
public struct CustosContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
    /// Bodies up to 64 MiB (an NDJSON ingest batch); every other route is bounded far lower,
    /// before it is read (`BodyLimit`).
    public var maxUploadSize: Int { 64 << 20 }
}

/// `custos serve`: one open store (the one writer while it runs), the sessions, the sign-in
/// throttle, and the routes of the console and the JSON API.
public final class CustosServer: Sendable {
    public struct Configuration: Sendable {
        /// Where exported packets are kept (the console offers them for download).
        public var packets: URL
        /// The store's signing key file; nil: the one `init` wrote.
        public var keyPath: String?
        /// Cookies get `Secure` (the server runs TLS, or behind a TLS proxy).
        public var secureCookies: Bool
        /// The Reporting API the console's "Retry" submits to, and the netrc with its credentials.
        public var reportingEndpoint: String
        public var netrc: String?
        public init(packets: URL, keyPath: String? = nil, secureCookies: Bool = false,
                    reportingEndpoint: String = ReportingAPI.Environment.test.baseURL, netrc: String? = nil) {
            self.packets = packets; self.keyPath = keyPath; self.secureCookies = secureCookies
            self.reportingEndpoint = reportingEndpoint; self.netrc = netrc
        }
    }

    let store: Store
    let configuration: Configuration
    let sessions: Sessions
    let throttle: Throttle
    let refusals = RefusalWindow()
    let logger: Logger
    static let cookie = "custos_session"

    /// `store` is opened as the OS login running the server; each request acts as its own user.
    public init(store: Store, configuration: Configuration, logger: Logger = Logger(label: "custos.serve")) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        sessions = Sessions(store: store)
        throttle = Throttle(store: store)
    }

    var now: Int64 { store.clock() }

    /// The store acting as the request's authenticated user.
    func acting(_ p: Principal) -> Store {
        store.acting(as: Actor(name: p.user, osUser: store.actor.osUser, auth: p.auth))
    }

    /// The store acting as the request's user; 401 when there is none.
    func requestStore() throws -> (Store, Principal) {
        guard let p = Principal.current else { throw CustosError.unauthenticated(actor: "", reason: "sign in first") }
        return (acting(p), p)
    }

    // MARK: sign-in

    /// Checks a password (and a TOTP code where the user is enrolled or their role requires one),
    /// throttles failures, logs every outcome, and opens a new session.
    func login(username: String, password: String, otp: String?) async throws -> Principal {
        let address = Principal.address
        let account = String(username.prefix(64))
        let wait = await throttle.wait(account: account, address: address, now: now)
        if wait > 0 {
            let message = "too many failed sign-ins; try again in \((wait + 999) / 1000) s"
            await refuseAnonymously(key: "throttled \(account) \(address)", verb: "sign-in", reason: message)
            throw LoginRefusal(status: 429, message: message, retryAfter: (wait + 999) / 1000)
        }
        // A name longer than any user's is nobody (not its first 64 characters).
        let credential = username.count > 64 ? nil : try await blocking { try self.store.credential(user: account) }
        let passwordOK = await blocking {
            Secrets.verifyPassword(password, hash: credential?.passwordHash ?? Secrets.decoyHash) && credential?.passwordHash != nil
        }
        var failure: String?
        var method = AuthMethod.password
        var usedStep: Int64?
        if !passwordOK || credential == nil {
            failure = "wrong password or unknown user"
        } else if let c = credential, c.disabled {
            failure = "user is disabled"
        } else if let c = credential, c.role == .detector {
            failure = "a detector signs in with a bearer token, not a password"
        } else if let c = credential {
            let required = (try? await blocking { try self.store.typedSettings() })?.totpRequired(for: c.role) ?? Setting.totpRequired(for: c.role, value: "privileged")
            if let secret = c.totpSecret {
                let unused = try? await blocking { try otp.flatMap { try self.store.unusedTOTPStep(secret: secret, code: $0, user: c.name) } }
                if let step = unused ?? nil, await sessions.useTOTPStep(step, user: c.name) {
                    method = .passwordTOTP
                    usedStep = step
                } else {
                    failure = otp?.isEmpty ?? true ? "one-time code missing" : "wrong or reused one-time code"
                }
            } else if required {
                failure = "a one-time code is required for the \(c.role.rawValue) role and the user has none enrolled"
            }
        }
        if let failure {
            let started = await throttle.fail(account: account, address: address, now: now)
            var details: [String: JSONValue] = ["reason": .string(failure), "address": .string(address), "throttled": .bool(started)]
            // The subject is a name only when it could be one; anything else a client typed is
            // kept JSON-escaped in the details (a NUL or a control character cannot enter a subject).
            let validName = (try? UserName.validate(account)) != nil
            if !validName { details["attempted_name"] = .string(account) }
            let subject = validName ? account : "(not a user name)"
            let logged = details
            try? await blocking {
                try self.store.acting(as: Actor(name: "(unauthenticated)", osUser: self.store.actor.osUser, auth: AuthMethod.none))
                    .recordSession(.sessionFail, user: subject, details: logged)
            }
            logger.notice("sign-in failed", metadata: ["address": .string(address), "reason": .string(failure)])
            let message = failure.hasPrefix("a one-time code is required") ? "a one-time code is required for your role: ask an admin to enrol you (`custos user totp NAME`)"
                : "wrong username, password or one-time code"
            throw LoginRefusal(status: 401, message: message)
        }
        guard let c = credential else { throw LoginRefusal(status: 401, message: "wrong username, password or one-time code") }
        await throttle.succeed(account: account)
        var details: [String: JSONValue] = ["address": .string(address), "method": .string(method.rawValue)]
        if let usedStep { details["totp_step"] = .integer(usedStep) }
        // The login entry and the kept session, in one transaction.
        return try await sessions.create(user: c.name, role: c.role, auth: method, stamp: c.stamp, now: now, details: details)
    }

    func logout(_ p: Principal, reason: String) async {
        guard let id = p.sessionID, await sessions.end(id) != nil else { return }
        try? await blocking { try self.acting(p).closeSession(idSHA256: Sessions.digest(id), user: p.user, reason: reason) }
    }

    /// The principal of a request: its bearer token, else its session cookie.
    func authenticate(_ request: Request, address: String) async -> Principal? {
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            guard let user = try? await blocking({ try self.store.tokenUser(token) }) else {
                // A revoked token, or one of a disabled (or now privileged) user: refused, and logged.
                await refuseAnonymously(key: "token \(address)", verb: "bearer token",
                                        reason: "a bearer token that acts for nobody (unknown, revoked, or its user disabled or privileged)")
                return nil
            }
            return Principal(user: user.name, role: user.role, auth: .token, sessionID: nil, csrf: nil)
        }
        guard let id = request.cookies[CustosServer.cookie]?.value else { return nil }
        switch await sessions.lookup(id, now: now) {
        case .live(let p, let recheck):
            // A session lives only while what it was opened on holds: a password or TOTP
            // changed (by the CLI too), a role changed or the user disabled ends it (checked
            // at most once a second; every store call also refuses a disabled user at once).
            guard let stamp = recheck else { return p }
            let current = try? await blocking { try self.store.credential(user: p.user)?.stamp }
            guard current == stamp else {
                _ = await sessions.end(id)
                try? await blocking { try self.acting(p).closeSession(idSHA256: Sessions.digest(id), user: p.user, reason: "credentials, role or standing changed") }
                return nil
            }
            return p
        case .expired(let p):
            try? await blocking { try self.acting(p).closeSession(idSHA256: Sessions.digest(id), user: p.user, reason: "session expired") }
            return nil
        case .unknown: return nil
        }
    }

    func sessionCookie(_ p: Principal) -> String {
        "\(CustosServer.cookie)=\(p.sessionID ?? ""); Path=/; HttpOnly; SameSite=Strict" + (configuration.secureCookies ? "; Secure" : "")
    }

    var clearedCookie: String {
        "\(CustosServer.cookie)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + (configuration.secureCookies ? "; Secure" : "")
    }

    /// Records a refusal of someone not signed in, at most once a minute per `key`.
    func refuseAnonymously(key: String, verb: String, reason: String) async {
        guard await refusals.due(key, now: now) else { return }
        let anonymous = store.acting(as: Actor(name: "(unauthenticated)", osUser: store.actor.osUser, auth: AuthMethod.none))
        try? await blocking {
            try anonymous.recordRefusal(.unauthenticated(actor: "(unauthenticated)", reason: reason), verb: verb)
        }
    }

    /// Records a refused request (a missing CSRF token, a role without the permission) as the
    /// `refused` custody entry `write` records for the rules' own refusals.
    func refuse(_ p: Principal, _ error: CustosError, verb: String) async -> CustosError {
        try? await blocking { try self.acting(p).recordRefusal(error, verb: verb) }
        return error
    }

    /// What `serve` does on its own while it runs: once a minute, when retention (run here or by
    /// `custos retention run` elsewhere) erased evidence that is not yet wiped from the WAL
    /// (a reader held an old snapshot), it tries the wipe again until it succeeds.
    public func maintain() async {
        var wiped = -1
        while !Task.isCancelled {
            if let erased = try? await blocking({ try self.store.erasedCount() }), erased != wiped {
                do {
                    if let pending = try await blocking({ try self.store.wipeErased(patience: 500) }) {
                        logger.warning("erased evidence not yet wiped: \(pending)")
                    } else {
                        wiped = erased
                    }
                } catch {
                    logger.warning("erased evidence not yet wiped: \(error)")
                }
            }
            try? await Task.sleep(for: .seconds(60))
        }
    }

    // MARK: routes

    public func router() throws -> Router<CustosContext> {
        let router = Router(context: CustosContext.self)
        router.add(middleware: RequestLogMiddleware(logger: logger))
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: ProblemMiddleware(logger: logger))
        router.add(middleware: AuthMiddleware(server: self))
        let spec = EmbeddedResources.data("api/openapi.yaml") ?? Data()
        router.get("api/v1/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(bytes: spec)))
        }
        // Compact JSON (the runtime's default pretty-prints): an ingest answer has a line per record.
        try API(server: self).registerHandlers(on: router, serverURL: URL(string: "/api/v1")!, configuration: .init(jsonEncodingOptions: [.sortedKeys]))
        Console(server: self).register(on: router)
        return router
    }

    /// How long a connection may sit idle (no bytes either way) before it is closed.
    public static let idleTimeout: TimeAmount = .seconds(60)

    /// Paths a request may reach without signing in.
    static func isPublic(_ method: HTTPRequest.Method, _ path: String) -> Bool {
        path == "/login" || path.hasPrefix("/assets/") || path == "/api/v1/openapi.yaml"
            || (path == "/api/v1/session" && method == .post)
    }
}

/// Runs blocking work (SQLite, bcrypt) off the concurrency pool.

// MARK: middleware

/// Sets the request's principal (bearer token or session) and address; refuses an API request
/// without one (401) and sends a console request to the sign-in page; refuses a state-changing
/// API request of a session without its CSRF token (the console's forms carry theirs).
struct AuthMiddleware: RouterMiddleware {
    let server: CustosServer

    func handle(_ request: Request, context: CustosContext, next: (Request, CustosContext) async throws -> Response) async throws -> Response {
        let address = context.remoteAddress?.ipAddress ?? "unknown"
        let path = request.uri.path
        let principal = await server.authenticate(request, address: address)
        let box = CookieBox()
        var response = try await Principal.$cookieBox.withValue(box) { try await authorised(request, context, principal, address, path, next: next) }
        if let cookie = box.value { response.headers[.setCookie] = cookie }
        return response
    }

    private func authorised(_ request: Request, _ context: CustosContext, _ principal: Principal?, _ address: String, _ path: String,
                            next: (Request, CustosContext) async throws -> Response) async throws -> Response {
        try await Principal.$address.withValue(address) {
            try await Principal.$current.withValue(principal) {
                let unsafe = ![.get, .head, .options].contains(request.method)
                // A state-changing request from another site (a cross-site form, a forced
                // sign-in) is refused whatever it carries: by the browser's Sec-Fetch-Site, or
                // an Origin naming another host. (Under `Referrer-Policy: no-referrer` browsers
                // send `Origin: null` even for the console's own forms, so null says nothing.)
                if unsafe {
                    let origin = request.headers[.origin] ?? "null"
                    let host = request.head.authority ?? ""
                    let foreignOrigin = origin != "null" && URL(string: origin).map({ "\($0.host ?? "")\($0.port.map { ":\($0)" } ?? "")" }) != host
                    if request.headers[.init("Sec-Fetch-Site")!] == "cross-site" || foreignOrigin {
                        let refusal = CustosError.forbidden(actor: principal?.user ?? "(not signed in)", role: principal?.role ?? .moderator,
                                                            needs: "a request from another site (\(origin)) may not change anything")
                        if let principal { throw await server.refuse(principal, refusal, verb: "\(request.method) \(path)") }
                        await server.refuseAnonymously(key: "cross-site \(address)", verb: "\(request.method) \(path)", reason: refusal.description)
                        throw refusal
                    }
                }
                // Bodies bounded before they are read: a client that has not signed in sends a
                // sign-in of a few KiB, not 64 MiB.
                var request = request
                try BodyLimit.apply(to: &request, signedIn: principal != nil, path: path)
                guard let p = principal else {
                    if CustosServer.isPublic(request.method, path) { return try await next(request, context) }
                    if path.hasPrefix("/api/") { throw CustosError.unauthenticated(actor: "", reason: "sign in first (POST /api/v1/session) or send a bearer token") }
                    return Response(status: .seeOther, headers: [.location: "/login"])
                }
                if unsafe, path.hasPrefix("/api/"), let csrf = p.csrf, request.headers[.init("X-CSRF-Token")!] != csrf {
                    throw await server.refuse(p, .forbidden(actor: p.user, role: p.role, needs: "a state-changing request needs the session's CSRF token in X-CSRF-Token"), verb: "\(request.method) \(path)")
                }
                return try await next(request, context)
            }
        }
    }
}

/// How much of a request body the server reads, by route, decided before a byte is read: a
/// declared length over it is refused at once (413), a streamed body is cut where it passes
/// it, and a body that keeps trickling past `deadline` is cut too (408). Only a signed-in
/// client's ingest may send 64 MiB (`FlagIntake.maxBody`, whose own cut answers for it).
enum BodyLimit {
    /// A sign-in, a console form or a JSON request of someone not signed in.
    static let anonymous = 16 << 10
    /// Any other request of a signed-in client (a decision's reason is capped far below it).
    static let signedIn = 256 << 10
    /// The time a whole body may take to arrive (an ingest of 64 MiB on a slow link included).
    static let deadline: Duration = .seconds(300)

    static func apply(to request: inout Request, signedIn: Bool, path: String) throws {
        // A signed-in client's ingest: the ingest stream enforces its own 64 MiB.
        if signedIn && path == "/api/v1/flags" { return }
        let limit = signedIn ? BodyLimit.signedIn : anonymous
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw HTTPError(.contentTooLarge, message: "a request body here may be at most \(limit) bytes")
        }
        request.body = RequestBody(asyncSequence: Limited(base: request.body, limit: limit, deadline: ContinuousClock.now + deadline))
    }

    struct Limited: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let base: RequestBody
        let limit: Int
        let deadline: ContinuousClock.Instant

        struct AsyncIterator: AsyncIteratorProtocol {
            var base: RequestBody.AsyncIterator
            let limit: Int
            let deadline: ContinuousClock.Instant
            var seen = 0
            mutating func next() async throws -> ByteBuffer? {
                guard let chunk = try await base.next() else { return nil }
                seen += chunk.readableBytes
                if seen > limit { throw HTTPError(.contentTooLarge, message: "a request body here may be at most \(limit) bytes") }
                if ContinuousClock.now > deadline { throw HTTPError(.requestTimeout, message: "the request body took too long to arrive") }
                return chunk
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), limit: limit, deadline: deadline) }
    }
}

/// Every error as RFC 9457 problem+json (API) or a plain page (console), by its typed case.
struct ProblemMiddleware: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: CustosContext, next: (Request, CustosContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let (status, title, detail, retry) = ProblemMiddleware.classify(error)
            if status >= 500 { logger.error("request failed", metadata: ["path": .string(request.uri.path), "error": .string("\(error)")]) }
            var headers: HTTPFields = [:]
            if let retry { headers[.retryAfter] = String(retry) }
            if request.uri.path.hasPrefix("/api/") {
                headers[.contentType] = "application/problem+json"
                let body = JSONValue.object(["type": .string("about:blank"), "title": .string(title), "status": .integer(Int64(status)), "detail": .string(detail)])
                return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.canonicalString)))
            }
            headers[.contentType] = "text/html; charset=utf-8"
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: Pages.errorPage(status: status, title: title, detail: detail))))
        }
    }

    static func classify(_ error: Error) -> (Int, String, String, Int64?) {
        switch error {
        case let e as CustosError:
            let status = switch e.kind {
            case .unauthenticated: 401
            case .forbidden: 403
            case .notFound: 404
            case .invalidState, .conflict: 409
            case .invalidInput: 422
            case .storage: 500
            }
            return (status, title(status), e.kind == .storage ? "the store could not complete the request" : e.description, nil)
        case let e as LoginRefusal:
            return (e.status, title(e.status), e.message, e.retryAfter)
        case let e as ServerError:
            if e.underlyingError is CustosError || e.underlyingError is LoginRefusal || e.underlyingError is HTTPError {
                return classify(e.underlyingError)
            }
            return (422, title(422), "the request does not match the API: \(e.causeDescription)", nil)
        case let e as HTTPError:
            return (Int(e.status.code), e.status.reasonPhrase, e.body ?? e.status.reasonPhrase, nil)
        case is DecodingError:
            return (422, title(422), "the request body is not what the API expects", nil)
        default:
            return (500, title(500), "the server could not complete the request", nil)
        }
    }

    static func title(_ status: Int) -> String {
        switch status {
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        default: "Internal Server Error"
        }
    }
}

/// The console's and the API's response headers (console.md): a CSP without inline script,
/// no framing, no referrer, and nothing cached (every page may show evidence).
struct SecurityHeadersMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: CustosContext, next: (Request, CustosContext) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.contentSecurityPolicy] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        response.headers[.init("X-Frame-Options")!] = "DENY"
        if !request.uri.path.hasPrefix("/assets/") { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

/// One line per request: method, path (no query), status, milliseconds, user. Never a body,
/// a password, a token or a cookie.
struct RequestLogMiddleware: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: CustosContext, next: (Request, CustosContext) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let response = try await next(request, context)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        logger.info("\(request.method) \(request.uri.path) \(response.status.code) \(String(format: "%.1f", ms))ms")
        return response
    }
}
