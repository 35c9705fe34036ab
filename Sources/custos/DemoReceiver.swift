import CustosCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The demo's stand-in for the platform: a loopback receiver that verifies each request's
/// Standard Webhooks signature against the secrets it was given (files `action add
/// --secret-out` wrote), and acknowledges it with what it "did".
enum DemoReceiver {
    final class State: @unchecked Sendable {
        let lock = NSLock()
        var port: Int?
        var count = 0
    }

    /// Starts the receiver; returns its port.
    static func start(secretFiles: [String]) throws -> Int {
        let state = State()
        let router = Router()
        router.post("hook") { request, _ -> Response in
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            var headers: [String: String] = [:]
            for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] { headers[name] = HTTPField.Name(name).flatMap { request.headers[$0] } }
            let secrets = secretFiles.compactMap { try? String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
            let now = Int64(Date().timeIntervalSince1970)
            guard secrets.contains(where: { (try? StandardWebhooks.verify(secret: $0, headers: headers, body: body, now: now)) == true }) else {
                return Response(status: .unauthorized)
            }
            let n = state.lock.withLock { state.count += 1; return state.count }
            let answer = JSONValue.object(["status": .string("done"), "reference": .string("DEMO-\(n)"),
                                           "disabled_at": .string(Timestamp.utcString(millis: now * 1000)), "user_notified": .bool(true)])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: answer.canonicalString)))
        }
        let ready = DispatchSemaphore(value: 0)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "demo-platform"),
                              onServerRunning: { channel in
                                  state.lock.withLock { state.port = channel.localAddress?.port }
                                  ready.signal()
                              })
        Task { try? await app.runService() }
        guard ready.wait(timeout: .now() + 10) == .success, let port = state.lock.withLock({ state.port }) else {
            throw CustosError.storage(cause: "the demo's receiver did not start")
        }
        return port
    }
}
