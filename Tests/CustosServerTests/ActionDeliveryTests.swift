import CustosAgencies
import CustosCore
@testable import CustosServer
import CustosStore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Testing

/// A platform's receiver that misbehaves on request: each path is one behaviour.
final class FaultyReceiver: @unchecked Sendable {
    struct Received { let path: String; let headers: [String: String]; let body: [UInt8] }
    private let lock = NSLock()
    private var _received: [Received] = []
    var received: [Received] { lock.withLock { _received } }
    private(set) var port = 0
    private var task: Task<Void, Error>?
    static let big = [UInt8]((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })

    func start() async throws {
        _ = FaultyReceiver.big.count  // made before any request times it
        let router = Router()
        for mode in ["ok", "ack", "slow", "fail500", "busy", "gone", "redirect", "big"] {
            router.post(.init(stringLiteral: mode)) { [self] request, _ -> Response in
                let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
                var headers: [String: String] = [:]
                for field in request.headers { headers[field.name.canonicalName] = field.value }
                lock.withLock { _received.append(Received(path: mode, headers: headers, body: body)) }
                switch mode {
                case "ack":
                    return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"status":"done","reference":"P-1","disabled_at":"2026-12-01T10:00:00Z","user_notified":false}"#)))
                case "slow": try await Task.sleep(for: .seconds(3)); return Response(status: .ok)
                case "fail500": return Response(status: .internalServerError)
                case "busy": return Response(status: .tooManyRequests, headers: [.retryAfter: "120"])
                case "gone": return Response(status: .gone)
                case "redirect": return Response(status: .found, headers: [.location: "http://127.0.0.1:\(port)/ok"])
                case "big": return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: FaultyReceiver.big)))
                default: return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "{}")))
                }
            }
        }
        let ready = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "receiver"),
                              onServerRunning: { channel in ready.continuation.yield(channel.localAddress?.port ?? 0) })
        task = Task { try await app.run() }
        for await p in ready.stream { port = p; break }
    }
    func stop() { task?.cancel() }
}

@Suite(.serialized) struct ActionDelivery {
    /// The reference vector of Standard Webhooks (also what the `standardwebhooks` package signs).
    @Test func signaturesAreStandardWebhooks() throws {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", body = Array(#"{"test": 2432232314}"#.utf8)
        let sig = try StandardWebhooks.signature(secret: secret, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330, body: body)
        #expect(sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        let headers = ["webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330", "webhook-signature": "v1,bogus " + sig]
        #expect(try StandardWebhooks.verify(secret: secret, headers: headers, body: body, now: 1614265330 + 299))
        #expect(try !StandardWebhooks.verify(secret: secret, headers: headers, body: body, now: 1614265330 + 301))  // replayed later
        #expect(try !StandardWebhooks.verify(secret: secret, headers: headers, body: body + [0x20], now: 1614265330))  // altered
        let s = StandardWebhooks.newSecret()
        #expect(s.hasPrefix("whsec_") && Data(base64Encoded: String(s.dropFirst(6)))?.count == 32)
        #expect(throws: CustosError.self) { try StandardWebhooks.key("whsec_c2hvcnQ=") }
    }

    struct Case: Sendable, CustomStringConvertible {
        let mode: String
        let scheme: String
        let state: ActionState
        var description: String { "\(scheme)://…/\(mode)" }
    }

    /// Issue 25, item 5: each faulty or hostile receiver, delivered to for real over loopback.
    @Test(arguments: [
        Case(mode: "ok", scheme: "http", state: .delivered), Case(mode: "ack", scheme: "http", state: .acknowledged),
        Case(mode: "slow", scheme: "http", state: .failed), Case(mode: "fail500", scheme: "http", state: .failed),
        Case(mode: "busy", scheme: "http", state: .failed), Case(mode: "gone", scheme: "http", state: .dead),
        Case(mode: "redirect", scheme: "http", state: .failed), Case(mode: "big", scheme: "http", state: .delivered),
        Case(mode: "ok", scheme: "https", state: .failed),
    ])
    func aFaultyReceiver(_ c: Case) async throws {
        let f = try ServeFixture()
        let receiver = FaultyReceiver()
        try await receiver.start()
        defer { receiver.stop() }
        let secret = try f.store.addActionEndpoint(name: "p", url: "\(c.scheme)://127.0.0.1:\(receiver.port)/\(c.mode)", kind: .restrictAccount,
                                                   triggers: nil, categories: [])
        try Ingestor(store: f.store).ingestJSONLines(try #require(FileHandle(forReadingAtPath: try sample(f).path)), name: "s", baseDirectory: nil)
        let mia = try Store.open(path: f.db, actor: Actor(name: "mia", osUser: "t"))
        mia.clock = f.store.clock
        _ = try mia.claim("artemis:artemis-2026-000127")
        _ = try mia.decide("artemis:artemis-2026-000127", outcome: .confirm, reason: "r", category: .grooming, urgent: "meeting", annotations: [])
        var deliverer = ActionDeliverer(store: f.store)
        // A generous timeout (the suite runs beside others), but not for the receiver that takes 3 s.
        deliverer.timeout = .seconds(c.mode == "slow" ? 1 : 10)
        #expect(try await deliverer.deliverDue() == 1)
        let r = try #require(try f.store.actionRequests().first)
        #expect(r.state == c.state, "\(c): \(r.words)")
        let got = receiver.received
        switch (c.scheme, c.mode) {
        case ("https", _):
            // Not downgraded: the plain-http receiver never saw a request.
            #expect(got.isEmpty && r.lastError != nil, "\(r.words)")
        case (_, "redirect"):
            #expect(got.map(\.path) == ["redirect"] && r.lastStatus == 302 && r.lastError == "redirect not followed")
        case (_, "slow"):
            #expect(r.lastError?.contains("timed out") == true)
        case (_, "busy"):
            #expect(r.nextAttemptAt == Timestamp.utcString(millis: f.now + 120_000), "\(r.words)")
        case (_, "gone"):
            #expect(try f.store.actionEndpoints().first?.disabled == true)
        case (_, "ack"):
            #expect(r.answer == ActionAnswer(reference: "P-1", disabledAt: "2026-12-01T10:00:00.000Z", userNotified: false))
        case (_, "big"):
            let attempt = try #require(try f.store.custodyEntries(subjects: [r.id]).last)
            #expect(attempt.details.contains(SHA256Hex.of(Array(FaultyReceiver.big.prefix(ActionDeliverer.answerLimit)))))
        default: break
        }
        // Every request that arrived is the one requested, signed with the endpoint's secret.
        for g in got {
            #expect(g.headers["webhook-id"] == r.id && g.body == Array(r.body.utf8))
            #expect(try StandardWebhooks.verify(secret: secret, headers: g.headers, body: g.body, now: Int64(Date().timeIntervalSince1970)))
        }
        // A failed request is sent again with the same id, signed afresh.
        if c.state == .failed, c.scheme == "http" {
            f.now += 3 * 3_600_000
            _ = try await deliverer.deliverDue()
            let ids = receiver.received.map { $0.headers["webhook-id"] }
            #expect(ids.count == got.count + 1 && Set(ids) == [r.id])
        }
    }

    func sample(_ f: ServeFixture) throws -> URL {
        let file = f.dir.appendingPathComponent("s.jsonl")
        try Data(ServeFixture.sampleNDJSON.utf8).write(to: file)
        return file
    }
}

@Suite struct ActionsInTheConsole {
    /// The flag page says what was requested and answered; a blind second reviewer sees neither
    /// it nor its entries; a lead retries a dead action from the page (logged, with how they signed in).
    @Test func theFlagPageShowsActionsAndALeadRetriesADeadOne() async throws {
        let f = try ServeFixture()
        let file = f.dir.appendingPathComponent("s.jsonl")
        try Data(ServeFixture.sampleNDJSON.utf8).write(to: file)
        try Ingestor(store: f.store).ingestJSONLines(try #require(FileHandle(forReadingAtPath: file.path)), name: "s", baseDirectory: nil)
        _ = try f.store.addActionEndpoint(name: "restrict", url: "http://127.0.0.1:9/r", kind: .restrictAccount, triggers: nil, categories: [])
        let key = "artemis:artemis-2026-000127"
        let mia = try Store.open(path: f.db, actor: Actor(name: "mia", osUser: "t"))
        mia.clock = f.store.clock
        _ = try mia.claim(key)
        _ = try mia.decide(key, outcome: .confirm, reason: "r", category: .grooming, urgent: "meeting", annotations: [])
        let d = try #require(try f.store.leaseActions(limit: 1).first)
        try f.store.recordActionOutcomes([ActionOutcome(id: d.id, attempt: 1, status: 410, durationMillis: 1, answer: nil, error: nil, retryAfter: nil)])
        #expect(try f.store.deadActionCount() == 1)
        // Blind: mo may still decide the flag; he sees that a restriction was asked (the flag is
        // urgent, as the queue shows) but not its entries, whose bodies carry mia's category.
        let mo = try Store.open(path: f.db, actor: Actor(name: "mo", osUser: "t"))
        #expect(try mo.actionRequests().count == 1)
        let moEntries = try mo.readCustodyLog().filter { $0.subjectID == d.id }
        #expect(moEntries.count == 2 && moEntries.allSatisfy { $0.details.contains("withheld") && !$0.details.contains("grooming") })
        try await f.run { client in
            func signIn(_ user: String) async throws -> String {
                let login = try await client.execute(uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                                     body: ByteBuffer(string: "username=\(user)&password=\(ServeFixture.passwords[user] ?? "")"))
                return String(try #require(login.headers[.setCookie]).split(separator: ";")[0])
            }
            let moPage = String(buffer: try await client.execute(uri: "/flags/\(path(key))", method: .get, headers: [.cookie: try await signIn("mo")]).body)
            #expect(moPage.contains("restrict-account dead") && !moPage.contains("grooming") && !moPage.contains(">Retry</button>"))
            let lee = try await signIn("lee")
            let page = String(buffer: try await client.execute(uri: "/flags/\(path(key))", method: .get, headers: [.cookie: lee]).body)
            let actionsHTML = page.components(separatedBy: "id=\"actions-h\"").dropFirst().first?.prefix(1500) ?? ""
            #expect(page.contains("restrict-account dead after 1 attempts (HTTP 410)") && page.contains(">Retry</button>"), "\(actionsHTML)")
            let csrf = try #require(page.components(separatedBy: "name=\"csrf\" value=\"").dropFirst().first?.split(separator: "\"").first)
            let retry = try await client.execute(uri: "/actions/\(d.id)/retry", method: .post, headers: [.cookie: lee, .contentType: "application/x-www-form-urlencoded"],
                                                 body: ByteBuffer(string: "csrf=\(csrf)&flag=\(path(key))&reason=endpoint+fixed"))
            #expect(retry.status == .seeOther && retry.headers[.location] == "/flags/artemis:artemis-2026-000127", "\(String(describing: retry.headers[.location]))")
            let stats = String(buffer: try await client.execute(uri: "/stats", method: .get, headers: [.cookie: lee]).body)
            #expect(stats.contains("Platform actions given up"))
        }
        #expect(try f.store.actionRequests().first?.state == .pending)
        #expect(try f.entries().contains { $0.action == "action.retry" && $0.actor == "lee" && $0.auth == "session:password" && $0.details.contains("endpoint fixed") })
    }
}
