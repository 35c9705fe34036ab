import AsyncHTTPClient
import CustosCore
import CustosStore
import Foundation
import NIOCore
import NIOHTTP1

/// Delivers requested platform actions as Standard Webhooks: leases due requests from the store
/// (so only one deliverer sends a request at a time), POSTs each, signed afresh per attempt with
/// the same `webhook-id`, and records what came of it. Redirects are not followed (the shared
/// client's configuration), https is verified and never downgraded, and at most 64 KiB of an
/// answer is read.
public struct ActionDeliverer: Sendable {
    public let store: Store
    public var timeout: Duration = .seconds(10)
    public var batch = ActionDeliverer.defaultBatch
    /// Requests leased and sent at once.
    public static let defaultBatch = 32
    public var client: HTTPClient = outsideClient
    public static let answerLimit = 64 * 1024

    public init(store: Store) { self.store = store }

    /// One round: leases what is due, sends it concurrently, records the outcomes. Returns how
    /// many were attempted (0: nothing due).
    @discardableResult
    public func deliverDue() async throws -> Int {
        // The lease outlasts the attempt (bounded by the timeout) and its recording: a live deliverer is never overtaken.
        let store = self.store, batch = self.batch, lease = Int64(timeout.components.seconds) * 2000 + 5_000
        let leased = try await blocking { try store.leaseActions(limit: batch, leaseMillis: lease) }
        guard !leased.isEmpty else { return 0 }
        let outcomes = await withTaskGroup(of: ActionOutcome.self) { group in
            for d in leased { group.addTask { await self.send(d) } }
            var out: [ActionOutcome] = []
            for await o in group { out.append(o) }
            return out
        }
        try await blocking { try store.recordActionOutcomes(outcomes) }
        return leased.count
    }

    /// Delivers until nothing is due now (`custos actions deliver`). Returns how many attempts.
    public func deliverAllDue() async throws -> Int {
        var total = 0
        while true {
            let n = try await deliverDue()
            if n == 0 { return total }
            total += n
        }
    }

    /// Delivers in the background until cancelled (`custos serve`). After a round that was not
    /// full it waits `gather` before the next, so that requests made meanwhile go out together:
    /// each round is two write transactions (the lease, the outcomes), and leasing each request
    /// as soon as its decision commits would double the writes the console's decisions wait
    /// behind. A protective action still leaves within `gather` of its decision.
    public func run(idle: Duration = .seconds(1), gather: Duration = .milliseconds(250), onError: @Sendable (Error) -> Void) async {
        while !Task.isCancelled {
            do {
                let n = try await deliverDue()
                if n >= batch { continue }
                if n > 0 { try? await Task.sleep(for: gather); continue }
            } catch { onError(error) }
            try? await Task.sleep(for: idle)
        }
    }

    /// One attempt, bounded by `timeout` from connect to the last byte read.
    func send(_ d: ActionDelivery) async -> ActionOutcome {
        let clock = ContinuousClock(), start = clock.now
        func millis() -> Int64 { let c = (clock.now - start).components; return c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000 }
        let timeout = self.timeout
        do {
            let result = try await withThrowingTaskGroup(of: (Int, [UInt8], String?)?.self) { group in
                group.addTask { try await self.post(d) }
                // The client's own deadline comes first, so its error (a refused certificate, say) is the one recorded.
                group.addTask { try await Task.sleep(for: timeout + .seconds(2)); return nil }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
            guard let (status, answer, retryAfter) = result else {
                return ActionOutcome(id: d.id, attempt: d.attempt, status: nil, durationMillis: millis(), answer: nil,
                                     error: "timed out after \(timeout.components.seconds) s", retryAfter: nil)
            }
            return ActionOutcome(id: d.id, attempt: d.attempt, status: status, durationMillis: millis(), answer: answer, error: nil, retryAfter: retryAfter)
        } catch {
            return ActionOutcome(id: d.id, attempt: d.attempt, status: nil, durationMillis: millis(), answer: nil,
                                 error: ActionDeliverer.describe(error, timeout: timeout), retryAfter: nil)
        }
    }

    private func post(_ d: ActionDelivery) async throws -> (Int, [UInt8], String?) {
        let body = Array(d.body.utf8)
        var request = HTTPClientRequest(url: d.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "custos")
        for (name, value) in try StandardWebhooks.headers(secrets: d.secrets, id: d.id, timestamp: Int64(Date().timeIntervalSince1970), body: body) {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
        var answer: [UInt8] = []
        for try await chunk in response.body {
            answer += chunk.readableBytesView.prefix(ActionDeliverer.answerLimit - answer.count)
            if answer.count >= ActionDeliverer.answerLimit { break }  // the rest is not read
        }
        return (Int(response.status.code), answer, response.headers.first(name: "Retry-After"))
    }

    static func describe(_ error: Error, timeout: Duration) -> String {
        if let e = error as? HTTPClientError {
            if e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout { return "timed out after \(timeout.components.seconds) s (\(e))" }
            return "HTTP client: \(e)"
        }
        return String(describing: error).prefix(300).description
    }
}
