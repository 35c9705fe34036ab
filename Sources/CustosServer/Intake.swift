import CustosAgencies
import CustosCore
import CustosStore
import Foundation
import Hummingbird
import OpenAPIRuntime

/// Flags sent over the API: the same contract and the same per-record checks as `custos ingest`
/// (the one Ingestor, the same parsing threads and writer), answered line by line. The body is
/// not collected first: it streams into the Ingestor's line reader as it arrives, so records
/// are parsed and written while the rest is still on the wire.
enum FlagIntake {
    /// The most one request may carry: its per-line answer is held in memory.
    static let maxBody = 64 << 20

    /// At most `buffered` bytes wait between the socket and the parser.
    static func ingest(_ body: HTTPBody, store: Store, maxBody: Int = FlagIntake.maxBody,
                       buffered: Int = 8 << 20) async throws -> Components.Schemas.IngestResult {
        if case .known(let length) = body.length, length > maxBody { throw tooLarge(maxBody, lines: nil) }
        let stream = BodyStream(capacityBytes: buffered)
        let feeding = Task {
            var total = 0
            do {
                for try await chunk in body {
                    total += chunk.count
                    // Without a Content-Length the limit can only be found on the way: what
                    // was read before it is ingested as usual, and the answer says so.
                    if total > maxBody {
                        stream.finish(throwing: tooLarge(maxBody, lines: "the lines before the cut were ingested, each stored or refused as usual; sent again, they are found stored"))
                        return
                    }
                    guard await stream.send(Data(chunk)) else { return }  // the ingest stopped
                }
                stream.finish(throwing: nil)
            } catch {
                stream.finish(throwing: CustosError.invalidInput(field: "body", reason: "the request body stopped arriving (\(error)); the lines before the cut were ingested"))
            }
        }
        defer { feeding.cancel() }
        return try await blocking {
            defer { stream.close() }
            // A body that ended badly stops the reading; the answer names the body's fault.
            do { return try ingest(LineReader { try stream.read() }, store: store) } catch { throw stream.failure ?? error }
        }
    }

    /// 413, as the API document says.
    static func tooLarge(_ limit: Int, lines: String?) -> HTTPError {
        HTTPError(.contentTooLarge, message: "the request body is larger than \(limit >> 20 > 0 ? "\(limit >> 20) MiB" : "\(limit) bytes"); send it in batches" + (lines.map { " (\($0))" } ?? ""))
    }

    private static func ingest(_ reader: LineReader, store: Store) throws -> Components.Schemas.IngestResult {
        var lines: [Int: Components.Schemas.IngestLine] = [:]
        func number(_ location: String) -> Int { Int(location.split(separator: ":").last ?? "") ?? 0 }
        let ingestor = Ingestor(store: store)
        ingestor.onReject = { r in
            let n = number(r.location)
            lines[n] = .init(line: n, result: .rejected, reason: r.reason)
        }
        ingestor.onStored = { location, key, duplicate in
            let n = number(location)
            lines[n] = .init(line: n, result: duplicate ? .duplicate : .ingested, key: key)
        }
        try ingestor.ingestJSONLines(reader, name: "line", baseDirectory: nil)
        let s = ingestor.summary
        return .init(ingested: s.ingested, duplicate: s.duplicate, rejected: s.rejected, lines: lines.keys.sorted().compactMap { lines[$0] })
    }
}

/// A request body on its way from the server's event loop (async, `send`) to the Ingestor's
/// line reader (a blocking thread, `read`), at most `capacityBytes` in between: when it is
/// full the sender is suspended, not a thread blocked.
final class BodyStream: @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [Data] = []
    private var head = 0
    private var bytes = 0
    private var ended = false
    private var _failure: Error?
    private var closed = false
    private var waitingSender: CheckedContinuation<Void, Never>?
    let capacityBytes: Int

    init(capacityBytes: Int) { self.capacityBytes = capacityBytes }

    /// Queues a chunk; false once the reader has closed the stream (stop sending).
    func send(_ chunk: Data) async -> Bool {
        while true {
            let admitted: Bool? = condition.withLock {
                if closed { return false }
                guard bytes < capacityBytes else { return nil }
                chunks.append(chunk)
                bytes += chunk.count
                condition.broadcast()
                return true
            }
            if let admitted { return admitted }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                condition.lock()
                if closed || bytes < capacityBytes {
                    condition.unlock()
                    c.resume()
                } else {
                    waitingSender = c
                    condition.unlock()
                }
            }
        }
    }

    /// What ended the body early, if anything did.
    var failure: Error? { condition.withLock { ended ? _failure : nil } }

    /// The end of the body: `error` nil at its normal end.
    func finish(throwing error: Error?) {
        condition.withLock {
            ended = true
            _failure = error
            condition.broadcast()
        }
    }

    /// The next chunk (blocking), nil at the end; throws what ended the body early.
    func read() throws -> Data? {
        condition.lock()
        while head == chunks.count && !ended && !closed { condition.wait() }
        guard head < chunks.count else {
            let failure = _failure
            condition.unlock()
            if let failure { throw failure }
            return nil
        }
        let chunk = chunks[head]
        head += 1
        if head > 64 { chunks.removeFirst(head); head = 0 }
        bytes -= chunk.count
        let sender = waitingSender
        waitingSender = nil
        condition.unlock()
        sender?.resume()
        return chunk
    }

    /// The reader is done (or gave up): a waiting sender is released and later sends refused.
    func close() {
        condition.lock()
        closed = true
        chunks.removeAll()
        head = 0
        bytes = 0
        let sender = waitingSender
        waitingSender = nil
        condition.unlock()
        sender?.resume()
    }
}
