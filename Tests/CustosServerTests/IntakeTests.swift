import CustosCore
@testable import CustosServer
import CustosStore
import Foundation
import Hummingbird
import OpenAPIRuntime
import Testing

/// The API's ingest reads the request body as it arrives (no collecting, no spool file): these
/// feed `FlagIntake` bodies in awkward pieces, without a length, cut short or too large.
@Suite struct StreamedIntake {
    /// A body in `pieces` chunks of any size (cutting lines and UTF-8 sequences), of unknown
    /// length unless `length` is given, that fails with `failure` after the pieces if given.
    static func body(_ bytes: [UInt8], pieces: Int, length: HTTPBody.Length = .unknown, failure: Error? = nil) -> HTTPBody {
        let size = max(1, (bytes.count + pieces - 1) / pieces)
        let chunks = stride(from: 0, to: bytes.count, by: size).map { ArraySlice(bytes[$0..<min(bytes.count, $0 + size)]) }
        let stream = AsyncThrowingStream<ArraySlice<UInt8>, Error> { c in
            for chunk in chunks { c.yield(chunk) }
            c.finish(throwing: failure)
        }
        return HTTPBody(stream, length: length, iterationBehavior: .single)
    }

    struct Cut: Error, CustomStringConvertible { var description: String { "connection reset" } }

    static func detector(_ f: ServeFixture) throws -> Store {
        try Store.open(path: f.db, actor: Actor(name: "det", osUser: "det"))
    }

    static func flagCount(_ f: ServeFixture) throws -> Int { try f.store.flags().count }

    /// `count` generated records, each one JSON line's bytes.
    static func records(_ count: Int, messages: Int, seed: UInt64) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        Generator(flags: count, messages: messages, seed: seed).generate { lines.append(Array($0.utf8)) }
        return lines
    }

    /// Many records in pieces of 997 bytes through an 8 KiB buffer: every line is read whole
    /// across the cuts, the answers are the file path's, in line order.
    @Test func aBodyInPiecesIngestsLikeAFile() async throws {
        let f = try ServeFixture()
        let records = Self.records(120, messages: 3, seed: 7).map { String(decoding: $0, as: UTF8.self) }
        let lines = records[..<60] + ["{\"not\": \"a flag\"}"] + records[60...] + [records[0]]
        let bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
        let result = try await FlagIntake.ingest(Self.body(bytes, pieces: bytes.count / 997 + 1), store: Self.detector(f), buffered: 8 << 10)
        #expect(result.ingested == 120 && result.rejected == 1 && result.duplicate == 1)
        #expect(result.lines.map(\.line) == Array(1...122))
        #expect(result.lines[60].result == .rejected && result.lines[121].result == .duplicate)
        #expect(try Self.flagCount(f) == 120)
    }

    /// A Content-Length over the limit is refused before a byte is read: nothing stored.
    @Test func aDeclaredBodyOverTheLimitIsRefusedWhole() async throws {
        let f = try ServeFixture()
        let bytes = Array(ServeFixture.sampleNDJSON.utf8)
        await #expect { try await FlagIntake.ingest(Self.body(bytes, pieces: 3, length: .known(Int64(bytes.count))), store: Self.detector(f), maxBody: bytes.count - 1) }
            throws: { e in (e as? HTTPError)?.status == .contentTooLarge && "\(e)".contains("larger than") }
        #expect(try Self.flagCount(f) == 0)
    }

    /// Without a length the limit is met on the way: the whole lines before it are stored (the
    /// error says so), the line it cut is not, and the store verifies.
    @Test func anUndeclaredBodyOverTheLimitKeepsTheLinesBeforeIt() async throws {
        let f = try ServeFixture()
        let records = Self.records(40, messages: 2, seed: 8)
        let bytes = Array(records.map { $0 + [0x0A] }.joined())
        let limit = bytes.count / 2
        let whole = records.reduce(into: (n: 0, end: 0)) { acc, r in if acc.end + r.count + 1 <= limit - 1000 { acc.n += 1; acc.end += r.count + 1 } }.n
        await #expect { try await FlagIntake.ingest(Self.body(bytes, pieces: 40), store: Self.detector(f), maxBody: limit) }
            throws: { e in (e as? HTTPError)?.status == .contentTooLarge && "\(e)".contains("lines before the cut were ingested") }
        let stored = try Self.flagCount(f)
        #expect(stored >= whole && stored < 40)
        #expect(try f.store.verify().ok)
    }

    /// A client that goes away mid-body: what arrived whole is stored, then the error.
    @Test func aBodyThatStopsArrivingKeepsWhatArrivedWhole() async throws {
        let f = try ServeFixture()
        let records = Self.records(10, messages: 2, seed: 9)
        var bytes = Array(records.map { $0 + [0x0A] }.joined())
        bytes += Array(records[0].prefix(50))  // half a line, then the connection drops
        await #expect { try await FlagIntake.ingest(Self.body(bytes, pieces: 4, failure: Cut()), store: Self.detector(f)) }
            throws: { e in "\(e)".contains("stopped arriving") && "\(e)".contains("connection reset") }
        #expect(try Self.flagCount(f) == 10)
    }

    /// A sender beyond the buffer waits for the reader; closing releases it and refuses more.
    @Test func theBufferHoldsTheSenderAndClosingReleasesIt() async throws {
        let stream = BodyStream(capacityBytes: 10)
        #expect(await stream.send(Data(count: 8)))
        #expect(await stream.send(Data(count: 8)))  // under the bound when offered
        let third = Task { await stream.send(Data(count: 8)) }
        try await Task.sleep(nanoseconds: 50_000_000)
        #expect(try stream.read()?.count == 8)  // frees room: the third goes in
        #expect(await third.value)
        let fourth = Task { await stream.send(Data(count: 8)) }
        try await Task.sleep(nanoseconds: 50_000_000)
        stream.close()
        #expect(await fourth.value == false)
        #expect(await stream.send(Data(count: 1)) == false)
        #expect(try stream.read() == nil)
    }
}
