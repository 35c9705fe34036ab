import CustosCore
@testable import CustosServer
import CustosStore
import CustosTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Issue 23's findings against `serve`, each as the hostile client or the second operator did it.
@Suite struct ServeHardening {
    /// Finding 10: a client that has not signed in cannot make the server read megabytes.
    @Test func bodiesAreBoundedBeforeTheyAreRead() async throws {
        let f = try ServeFixture()
        try await f.run { client in
            let big = ByteBuffer(repeating: UInt8(ascii: "a"), count: 1 << 20)
            let declared = try await client.execute(uri: "/api/v1/session", method: .post,
                                                    headers: [.contentType: "application/json", .contentLength: String(big.readableBytes)], body: big)
            #expect(declared.status == .contentTooLarge)
            let streamed = try await client.execute(uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"], body: big)
            #expect(streamed.status == .contentTooLarge)
            // A signed-in client's decision form is bounded too; ingest is not (its own limit is 64 MiB).
            let mia = try await session(client, "mia")
            let r = try await client.execute(uri: "/api/v1/flags/next", method: .post, headers: mia.headers, body: ByteBuffer(repeating: 0x20, count: 300 << 10))
            #expect(r.status == .contentTooLarge)
        }
    }

    /// Finding 18: a reason longer than the API document allows is refused, not logged forever.
    @Test func aReasonOverTheLimitIsRefused() async throws {
        let f = try ServeFixture()
        let file = f.dir.appendingPathComponent("s.jsonl")
        try Data(ServeFixture.sampleNDJSON.utf8).write(to: file)
        try Ingestor(store: f.store).ingestJSONLines(try #require(FileHandle(forReadingAtPath: file.path)), name: "s", baseDirectory: nil)
        try await f.run { client in
            let mia = try await session(client, "mia")
            let key = try #require(try json(try await client.execute(uri: "/api/v1/flags/next", method: .post, headers: mia.headers))["key"] as? String)
            let long = String(repeating: "x", count: 4001)
            let r = try await client.execute(uri: "/api/v1/flags/\(path(key))/decision", method: .post, headers: mia.headers,
                                             body: ByteBuffer(string: "{\"outcome\":\"dismiss\",\"reason\":\"\(long)\"}"))
            #expect(r.status == .unprocessableContent, "\(String(buffer: r.body))")
            #expect(try !f.entries().contains { $0.details.contains(long) })
        }
    }

    /// Finding 23: a detector's account cannot open a console session, password or not.
    @Test func aDetectorCannotSignIn() async throws {
        let f = try ServeFixture()
        try f.store.acting(as: Actor(name: "admin", osUser: "admin")).addUser(name: "det9", role: .lead)
        try f.store.acting(as: Actor(name: "admin", osUser: "admin")).setPassword(user: "det9", password: "det9-password-12")
        // Turned into a detector behind the password's back (as an older custos could leave
        // a detector with a password): still no session.
        f.editedBehindTheLog = true
        _ = try runTool(["sqlite3", f.db, "DROP TRIGGER IF EXISTS users_no_update; UPDATE users SET role = 'detector' WHERE name = 'det9'"])
        try await f.run { client in
            let r = try await signIn(client, "det9", password: "det9-password-12")
            #expect(r.status == .unauthorized)
        }
        #expect(try f.entries().last { $0.action == CustodyAction.sessionFail.rawValue }?.details.contains("bearer token") == true)
    }

    /// Finding 15: a password changed with the CLI ends the user's console sessions; a TOTP code
    /// used before a restart is refused after it.
    @Test func credentialsChangedElsewhereEndSessionsAndCodesStayUsedAcrossRestarts() async throws {
        let f = try ServeFixture()
        let code = try f.totp("cam")
        try await f.run { client in
            let mia = try await session(client, "mia")
            #expect(try await client.execute(uri: "/api/v1/queue", method: .get, headers: mia.headers).status == .ok)
            try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin")).setPassword(user: "mia", password: "mia-new-password-1")
            f.now += Sessions.recheckMillis
            #expect(try await client.execute(uri: "/api/v1/queue", method: .get, headers: mia.headers).status == .unauthorized)
            _ = try await session(client, "cam", otp: code)
        }
        #expect(try f.entries().contains { $0.action == CustodyAction.sessionLogout.rawValue && $0.subjectID == "mia" && $0.details.contains("credentials") })
        // A new server on the same store: a restart.
        let restarted = CustosServer(store: f.store, configuration: .init(packets: f.dir.appendingPathComponent("packets")))
        try await Application(router: try restarted.router()).test(.router) { client in
            let r = try await signIn(client, "cam", otp: code)
            #expect(r.status == .unauthorized)
        }
    }

    /// Finding 11: a session alone cannot change its own password, and the answer says so.
    @Test func theAdminFormRefusesOthersBeforeChangingAnything() async throws {
        let f = try ServeFixture()
        try await f.run { client in
            let mia = try await session(client, "mia")
            let before = try f.store.credential(user: "mia")?.stamp
            let r = try await client.execute(uri: "/admin/users/mia/password", method: .post, headers: [.cookie: mia.cookie, .contentType: "application/x-www-form-urlencoded"],
                                             body: ByteBuffer(string: "csrf=\(mia.csrf)&password=mallory-password-1"))
            #expect(r.status == .forbidden)
            #expect(try f.store.credential(user: "mia")?.stamp == before)
            #expect(try !f.entries().contains { $0.action == CustodyAction.userPassword.rawValue && $0.subjectID == "mia" && $0.actor == "mia" })
        }
    }

    /// Finding 12: refusals of the not-signed-in are logged (once a minute per address);
    /// finding 21: a moderator's submit is refused and logged, naming no server path.
    @Test func refusalsAreLoggedAndRevealNoPaths() async throws {
        let f = try ServeFixture()
        try await f.run { client in
            for _ in 0..<3 {
                let r = try await client.execute(uri: "/api/v1/session", method: .post, headers: [.contentType: "application/json", .origin: "https://evil.example"],
                                                 body: ByteBuffer(string: "{\"username\":\"mia\",\"password\":\"x\"}"))
                #expect(r.status == .forbidden)
            }
            for _ in 0..<7 { _ = try await signIn(client, "mo", password: "wrong-password-000") }
            let bogus = try await client.execute(uri: "/api/v1/queue", method: .get, headers: [.authorization: "Bearer custos_not-a-token"])
            #expect(bogus.status == .unauthorized)
            let mia = try await session(client, "mia")
            let submit = try await client.execute(uri: "/cases/C-000001/submit", method: .post, headers: [.cookie: mia.cookie, .contentType: "application/x-www-form-urlencoded"],
                                                  body: ByteBuffer(string: "csrf=\(mia.csrf)"))
            #expect(submit.status == .forbidden)
            #expect(!String(buffer: submit.body).contains("netrc"))
        }
        let refused = try f.entries().filter { $0.action == CustodyAction.refused.rawValue }
        #expect(refused.filter { $0.details.contains("another site") }.count == 1, "\(refused.map(\.details))")
        #expect(refused.filter { $0.details.contains("too many failed sign-ins") }.count == 1, "\(refused.map(\.details))")
        #expect(refused.contains { $0.actor == "mia" && $0.details.contains("export") })
        #expect(refused.contains { $0.details.contains("acts for nobody") })
    }
}

/// Finding 11's other half: a user changes their own password where the console asks for the
/// current one and a code, and a wrong proof changes nothing.
@Suite struct SelfServicePassword {
    @Test func theCurrentPasswordAndACodeAreAskedAndAWrongOneChangesNothing() async throws {
        let f = try ServeFixture()
        try await f.run { client in
            let cam = try await session(client, "cam", otp: try f.totp("cam"))
            let form: HTTPFields = [.cookie: cam.cookie, .contentType: "application/x-www-form-urlencoded"]
            let before = try f.store.credential(user: "cam")?.stamp
            // The right password, but the code already used to sign in: refused.
            let reused = try await client.execute(uri: "/preferences/password", method: .post, headers: form,
                                                  body: ByteBuffer(string: "csrf=\(cam.csrf)&current=cam-password-123&otp=\(try f.totp("cam"))&password=cam-new-password-1"))
            #expect(reused.status == .unprocessableContent)
            #expect(try f.store.credential(user: "cam")?.stamp == before)
            f.now += 30_000
            let wrong = try await client.execute(uri: "/preferences/password", method: .post, headers: form,
                                                 body: ByteBuffer(string: "csrf=\(cam.csrf)&current=not-my-password&otp=\(try f.totp("cam"))&password=cam-new-password-1"))
            #expect(wrong.status == .unprocessableContent)
            #expect(try f.store.credential(user: "cam")?.stamp == before)
            f.now += 30_000
            let changed = try await client.execute(uri: "/preferences/password", method: .post, headers: form,
                                                   body: ByteBuffer(string: "csrf=\(cam.csrf)&current=cam-password-123&otp=\(try f.totp("cam"))&password=cam-new-password-1"))
            #expect(changed.status == .seeOther && changed.headers[.location] == "/login")
            #expect(try f.store.credential(user: "cam")?.stamp != before)
            // The session ended with the change; the new password signs in.
            #expect(try await client.execute(uri: "/api/v1/stats", method: .get, headers: cam.headers).status == .unauthorized)
            f.now += 30_000
            let again = try await signIn(client, "cam", otp: try f.totp("cam"), password: "cam-new-password-1")
            #expect(again.status == .ok)
        }
        let refusals = try f.entries().filter { $0.action == CustodyAction.refused.rawValue && $0.actor == "cam" }
        #expect(refusals.count == 2, "\(refusals.map(\.details))")
        #expect(try f.entries().contains { $0.action == CustodyAction.userPassword.rawValue && $0.actor == "cam" && $0.details.contains("password+totp") })
    }
}

/// Issue 27, item 4: a restart of `serve` signs nobody out, keeps a used TOTP code used and
/// forgets no throttle; the store keeps only the SHA-256 of a session's id.
@Suite struct SessionsSurviveARestart {
    @Test func aRestartKeepsSessionsCodesAndWaits() async throws {
        let f = try ServeFixture()
        let code = try f.totp("cam")
        final class Box: @unchecked Sendable { var session = Session(cookie: "", csrf: "") }
        let box = Box()
        try await f.run { client in
            box.session = try await session(client, "cam", otp: code)
            for _ in 0..<5 { _ = try await signIn(client, "mia", password: "not-her-password") }
            #expect(try await signIn(client, "mia").status == .tooManyRequests)
        }
        let cam = box.session
        // The restart: a new server on the store opened afresh.
        let reopened = try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), readers: true)
        reopened.clock = f.store.clock
        let server = CustosServer(store: reopened, configuration: .init(packets: f.dir.appendingPathComponent("packets")))
        try await Application(router: try server.router()).test(.router) { client in
            // Still signed in, with the same CSRF token.
            let me = try await client.execute(uri: "/api/v1/queue", method: .get, headers: [.cookie: cam.cookie])
            #expect(me.status == .ok)
            let page = String(buffer: try await client.execute(uri: "/queue", method: .get, headers: [.cookie: cam.cookie]).body)
            #expect(page.contains("value=\"\(cam.csrf)\""))
            // The code cam used stays used.
            #expect(try await signIn(client, "cam", otp: code).status == .unauthorized)
            // mia still waits.
            #expect(try await signIn(client, "mia").status == .tooManyRequests)
            // Signing out ends the kept session too.
            #expect(try await client.execute(uri: "/api/v1/session", method: .delete, headers: cam.headers).status == .noContent)
        }
        let again = CustosServer(store: reopened, configuration: .init(packets: f.dir.appendingPathComponent("packets")))
        try await Application(router: try again.router()).test(.router) { client in
            let status = try await client.execute(uri: "/api/v1/queue", method: .get, headers: [.cookie: cam.cookie]).status
            #expect(status == .unauthorized)
        }
        // No cookie in the store or its log: only the SHA-256 of the id, in both.
        let id = String(cam.cookie.split(separator: "=", maxSplits: 1)[1])
        let (_, dump) = try runTool(["sqlite3", f.db, ".dump"])
        #expect(!dump.contains(id) && !dump.contains(cam.csrf))
        #expect(try f.entries().contains { $0.action == "session.login" && $0.subjectID == "cam" && $0.details.contains(Sessions.digest(id)) })
    }

    /// A session row added behind the log's back (no login entry records it) opens nothing.
    @Test func aForgedSessionRowOpensNothing() async throws {
        let f = try ServeFixture()
        let id = "forged-session-id-0123456789abcdefghijklmnop"
        f.editedBehindTheLog = true
        let (code, _) = try runTool(["sqlite3", f.db, "INSERT INTO console_sessions VALUES ('\(Sessions.digest(id))', 'adam', 'session:password+totp', 'x', \(f.now), \(f.now), 1)"])
        #expect(code == 0)
        try await f.run { client in
            let status = try await client.execute(uri: "/api/v1/queue", method: .get, headers: [.cookie: "custos_session=\(id)"]).status
            #expect(status == .unauthorized)
        }
    }
}
