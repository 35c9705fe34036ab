import CustosCore
import Foundation
import GRDB

/// Reads a byte stream line by line with a bounded buffer, so memory stays flat.
public final class LineReader: @unchecked Sendable {
    /// The next chunk of the stream; nil or empty at its end.
    private let read: () throws -> Data?
    private var buffer = [UInt8]()
    private var start = 0
    private var eof = false
    public private(set) var lineNumber = 0
    /// Why reading stopped early (a folder, an I/O error, a request body cut off); nil at a
    /// normal end of input.
    public private(set) var readError: Error?
    public private(set) var bytesRead: Int64 = 0
    private let lock = NSLock()
    private var _bytesReadShared: Int64 = 0
    /// Bytes read so far, readable from another thread.
    public var bytesReadSoFar: Int64 { lock.withLock { _bytesReadShared } }
    let maxLine: Int

    public convenience init(handle: FileHandle, maxLine: Int = RecordLimits.maxLineBytes) {
        self.init(maxLine: maxLine) { try handle.read(upToCount: 1 << 20) }
    }

    public init(maxLine: Int = RecordLimits.maxLineBytes, read: @escaping () throws -> Data?) {
        self.read = read
        self.maxLine = maxLine
    }

    public enum Line: Sendable {
        case line([UInt8])
        /// A line longer than the limit; its bytes were skipped.
        case tooLong(Int)
    }

    public func next() -> Line? {
        var skipped = 0
        var scanFrom = start
        while true {
            if let nl = buffer[scanFrom...].firstIndex(of: 0x0A) {
                lineNumber += 1
                defer { start = nl + 1 }
                let length = skipped + nl - start
                if length > maxLine { return .tooLong(length) }
                var end = nl
                if end > start && buffer[end - 1] == 0x0D { end -= 1 }
                return .line(Array(buffer[start..<end]))
            }
            if eof {
                guard start < buffer.count || skipped > 0 else { return nil }
                lineNumber += 1
                defer { start = buffer.count }
                let length = skipped + buffer.count - start
                if length > maxLine { return .tooLong(length) }
                return .line(Array(buffer[start...]))
            }
            if buffer.count - start > maxLine {
                // Too long already: drop what we have and keep counting until the newline.
                skipped += buffer.count - start
                buffer.removeAll(keepingCapacity: true)
                start = 0
            } else if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            scanFrom = buffer.count
            let chunk: Data
            do { chunk = try read() ?? Data() } catch {
                readError = error
                chunk = Data()
            }
            if chunk.isEmpty { eof = true } else {
                buffer.append(contentsOf: chunk)
                bytesRead += Int64(chunk.count)
                let n = bytesRead
                lock.withLock { _bytesReadShared = n }
            }
        }
    }
}

/// Counts and per-record outcomes of one ingest run.
public struct IngestSummary: Sendable {
    public var ingested = 0
    public var duplicate = 0
    public var rejected = 0
}

/// One rejected record: where, why, and its bytes as received.
public struct Rejection: Error, Sendable {
    public let location: String
    public let reason: String
    public let raw: [UInt8]
    public init(location: String, reason: String, raw: [UInt8]) { self.location = location; self.reason = reason; self.raw = raw }
}

/// Ingests flag records in batches: each record is validated fully (attachments read and
/// checked) before anything is written; a batch commits its records and their custody
/// entries together. A record is never half-stored.
public final class Ingestor {
    let store: Store
    /// Records per transaction: large batches mean fewer commits, and so fewer rewrites of the
    /// index pages a batch touches (the evidence-hash index is in random order).
    public var batchSize = 2000
    public var onReject: (Rejection) -> Void = { _ in }
    public var onProgress: (_ records: Int, _ bytes: Int64) -> Void = { _, _ in }
    /// Hears each record stored (or found already stored: `duplicate`), by its location.
    public var onStored: (_ location: String, _ key: String, _ duplicate: Bool) -> Void = { _, _, _ in }
    public private(set) var summary = IngestSummary()

    /// A record validated and canonicalised, its attachments read and checked: everything but
    /// the write.
    public struct Prepared: Sendable {
        let row: IngestRow
        let location: String
        let raw: [UInt8]
        var record: CanonicalFlag { row.record }

        /// Roughly what the record holds in memory: its bytes, its evidence document twice and its attachments.
        var bytes: Int { raw.count + 2 * row.record.evidence.count + row.blobs.values.reduce(0) { $0 + $1.count } }
    }

    /// A parsed chunk holds at most `chunkLines` lines (the first `firstChunkLines`) or about `chunkBytes`.
    static let chunkLines = 256
    static let firstChunkLines = 32
    static let chunkBytes = 4 << 20
    static let queueBytes = 48 << 20
    static let batchBytes = 32 << 20

    private var pending: [Prepared] = []
    private var pendingBytes = 0

    public init(store: Store) { self.store = store }

    /// Ingests a JSON Lines stream. `name` is used in messages; `baseDirectory` resolves
    /// attachment paths. A second thread reads lines and has them parsed on every core while
    /// this one writes, with at most a few chunks in flight, so memory stays flat.
    public func ingestJSONLines(_ handle: FileHandle, name: String, baseDirectory: URL?) throws {
        try ingestJSONLines(LineReader(handle: handle), name: name, baseDirectory: baseDirectory)
    }

    /// Ingests the JSON Lines `reader` yields (a file, or a request body as it arrives). If
    /// reading stops early, what was read is ingested, then the error is thrown: a CustosError
    /// as it is, any other as a storage error naming `name`.
    public func ingestJSONLines(_ reader: LineReader, name: String, baseDirectory: URL?) throws {
        // In flight at most: the producer's chunk (≤ chunkBytes or one record), the queue
        // (≤ queueBytes or one chunk), the consumer's chunk and the pending batch (≤ batchBytes
        // or one record), so memory is bounded in bytes whatever the records' sizes.
        let chunks = BoundedQueue<[Result<Prepared, Rejection>]>(capacity: 16, capacityBytes: Ingestor.queueBytes)
        let producer = Thread {
            let parsers = ParallelParse(baseDirectory: baseDirectory)
            var lines: [(location: String, line: LineReader.Line)] = []
            var lineBytes = 0
            // The writer waits for the first chunk: it is small, so writing starts within a
            // few milliseconds (an API request pays this wait each time); chunks then double.
            var chunkLines = Ingestor.firstChunkLines
            func send() {
                let chunk = parsers.prepare(lines)
                chunks.put(chunk, bytes: chunk.reduce(0) { $0 + ((try? $1.get().bytes) ?? 0) } + lineBytes)
                lines.removeAll(keepingCapacity: true)
                lineBytes = 0
                chunkLines = min(Ingestor.chunkLines, 2 * chunkLines)
            }
            while let line = reader.next() {
                if case .line(let bytes) = line, bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                if case .line(let bytes) = line { lineBytes += bytes.count }
                lines.append(("\(name):\(reader.lineNumber)", line))
                if lines.count >= chunkLines || lineBytes >= Ingestor.chunkBytes { send() }
                if chunks.cancelled { return }
            }
            send()
            chunks.finish()
        }
        producer.start()
        defer { chunks.cancel() }
        var count = 0
        try bulk {
            // Each transaction starts with the next parsed chunk and takes the chunks parsed
            // while it writes, so writing overlaps parsing and batches stay large (see `write`).
            while let chunk = chunks.take() {
                try write(chunk, more: { chunks.take(waitingAtMost: Ingestor.pause) }) { n in
                    count += n
                    onProgress(count, reader.bytesReadSoFar)
                }
            }
        }
        if let problem = reader.readError {
            if let e = problem as? CustosError { throw e }
            throw CustosError.storage(cause: "\(name): reading stopped: \(problem.localizedDescription)")
        }
    }

    /// Runs an ingest with durability paid once: batches commit in WAL at synchronous=NORMAL
    /// (each commit atomic; a crash of this process loses nothing committed), and before the
    /// run returns, and so before the command reports anything stored, the WAL is written to
    /// disk (fsync). A power loss mid-run loses at most batches the command never reported;
    /// a re-run stores them (records already stored are duplicates).
    func bulk(_ body: () throws -> Void) throws {
        try store.withLargeWAL {
            do { try body() } catch {
                try? store.syncLog()  // what was committed stays stored: on disk too
                throw error
            }
            try store.syncLog()
        }
    }

    /// Ingests a PAN 2012 corpus stream (`name` is used in messages). The bytes are checked
    /// to be UTF-8 first, so a bad byte is named with its line; stdin is spooled to a temporary
    /// file for the two passes.
    public func ingestPan12(_ handle: FileHandle, name: String, platform: String, startDay day: Int64) throws {
        var failure: Error?
        let reader = Pan12Reader(platform: platform, date: day) { item in
            guard failure == nil else { return }
            let location = "\(name):\(item.line)"
            switch item.result {
            case .failure(let e):
                self.reject(Rejection(location: location, reason: "conversation \(quoted(item.conversationID)): \(e)", raw: []))
            case .success(let json):
                do { try self.offer(line: json.canonicalBytes, location: location, baseDirectory: nil) }
                catch { failure = error }
            }
        }
        var path = name
        var spool: URL?
        if name == "<stdin>" {
            let t = FileManager.default.temporaryDirectory.appendingPathComponent("custos-stdin-\(UUID().uuidString).xml")
            _ = FileManager.default.createFile(atPath: t.path, contents: nil)
            let out = try FileHandle(forWritingTo: t)
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { try out.write(contentsOf: chunk) }
            try out.close()
            spool = t
            path = t.path
        }
        defer { if let spool { try? FileManager.default.removeItem(at: spool) } }
        guard let check = FileHandle(forReadingAtPath: path) else { throw CustosError.storage(cause: "cannot read \(name)") }
        var utf8 = UTF8Validator()
        while let chunk = try check.read(upToCount: 1 << 20), !chunk.isEmpty {
            guard utf8.feed(chunk) else {
                reject(Rejection(location: "\(name):\(utf8.line)", reason: "invalid UTF-8 at byte \(utf8.offset + 1); the file was not read", raw: []))
                return
            }
        }
        guard utf8.complete else {
            reject(Rejection(location: "\(name):\(utf8.line)", reason: "the file ends inside a UTF-8 sequence; the file was not read", raw: []))
            return
        }
        var ok = true
        try bulk {
            ok = reader.parse(path: path)
            if let failure { throw failure }
            try flush()
        }
        if !ok {
            reject(Rejection(location: name, reason: reader.xmlError ?? "malformed XML; the rest of the file was not read", raw: []))
        }
    }

    /// Validates one record's bytes (a PAN12 conversation) and queues it for the next batch.
    public func offer(line: [UInt8], location: String, baseDirectory: URL?) throws {
        var tape = JSONTape(), writer = CanonicalWriter()
        switch Ingestor.prepare(line: line, location: location, baseDirectory: baseDirectory, tape: &tape, writer: &writer) {
        case .success(let p): try enqueue(p)
        case .failure(let r): reject(r)
        }
    }

    /// Everything about a record that does not touch the store: parse, validate and
    /// canonicalise in one pass, then read and check its attachments. Thread-safe (`tape` and
    /// `writer` are the calling thread's).
    static func prepare(line: [UInt8], location: String, baseDirectory: URL?, tape: inout JSONTape, writer: inout CanonicalWriter) -> Result<Prepared, Rejection> {
        let record: CanonicalFlag
        do {
            record = try line.withUnsafeBufferPointer { (b) throws(CustosCore.RecordError) in try CanonicalFlag.read(b, tape: &tape, writer: &writer) }
        } catch {
            return .failure(Rejection(location: location, reason: error.description, raw: line))
        }
        var blobs: [String: Data] = [:]
        for placed in record.attachments {
            let a = placed.attachment
            guard let path = a.path else { continue }
            switch Ingestor.readAttachment(path: path, base: baseDirectory, expectedSHA: a.sha256, expectedSize: a.size) {
            case .success(let data): blobs[a.sha256] = data
            case .failure(let e):
                return .failure(Rejection(location: location, reason: "conversation.messages[\(placed.message)].attachments[\(placed.index)]: \(e.description)", raw: line))
            }
        }
        return .success(Prepared(row: IngestRow(record: record, blobs: blobs, source: location), location: location, raw: line))
    }

    func enqueue(_ p: Prepared) throws {
        // The same key twice in one batch needs nothing here: `write` judges the second against
        // the first, stored earlier in the same transaction.
        pending.append(p)
        pendingBytes += p.bytes
        if pending.count >= batchSize || pendingBytes >= Ingestor.batchBytes { try flush() }
    }

    static func readAttachment(path: String, base: URL?, expectedSHA: String, expectedSize: Int64) -> Result<Data, CustosError> {
        guard let base else { return .failure(CustosError.invalidInput(field: "", reason: "attachment path \(quoted(path)) given, but the input is stdin; attachments need a file input")) }
        let url = base.appendingPathComponent(path).standardizedFileURL
        let root = base.standardizedFileURL.path
        // Refuse anything that resolves (through symlinks too) outside the input's folder.
        let resolved = url.resolvingSymlinksInPath().path
        let resolvedRoot = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        guard resolved.hasPrefix(resolvedRoot.hasSuffix("/") ? resolvedRoot : resolvedRoot + "/") else {
            return .failure(CustosError.invalidInput(field: "", reason: "attachment path \(quoted(path)) leaves the input file's folder"))
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDir), !isDir.boolValue else {
            return .failure(CustosError.invalidInput(field: "", reason: "attachment file \(quoted(path)) not found"))
        }
        if let attrs = try? FileManager.default.attributesOfItem(atPath: resolved),
           let size = (attrs[.size] as? NSNumber)?.int64Value, size != expectedSize {
            return .failure(CustosError.invalidInput(field: "", reason: "attachment size mismatch: file has \(size) bytes, record says \(expectedSize)"))
        }
        guard let data = FileManager.default.contents(atPath: resolved) else {
            return .failure(CustosError.invalidInput(field: "", reason: "cannot read attachment file \(quoted(path))"))
        }
        guard data.count == expectedSize else {
            return .failure(CustosError.invalidInput(field: "", reason: "attachment size mismatch: file has \(data.count) bytes, record says \(expectedSize)"))
        }
        let actual = SHA256Hex.of(data)
        guard actual == expectedSHA else {
            return .failure(CustosError.invalidInput(field: "", reason: "attachment sha256 mismatch: file hashes to \(actual), record says \(expectedSHA)"))
        }
        return .success(data)
    }

    public func reject(_ r: Rejection) {
        summary.rejected += 1
        onReject(r)
    }

    /// Writes the queued records in one transaction.
    public func flush() throws {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
        try write(batch.map { .success($0) }, more: { nil })
    }

    /// How long a transaction waits for the next parsed chunk before it commits, and how long
    /// it may stay open: a request body that arrives slowly never holds the store's one write
    /// lock for long (the console's claims and decisions wait for it).
    static let pause = 0.02
    static let longestTransaction = 0.25

    /// One transaction: the records of `first`, then those of each chunk `more` yields, until
    /// the batch is full (batchSize records or batchBytes), `more` has nothing (the input
    /// ended, or nothing was parsed within `pause`), or the transaction has been open for
    /// `longestTransaction`. The same key twice in one transaction is judged against the first
    /// (a duplicate, or a conflict). Rejections are reported as met; stored records after the
    /// commit. `taken` hears each chunk's size.
    func write(_ first: [Result<Prepared, Rejection>], more: () -> [Result<Prepared, Rejection>]?,
               taken: (Int) -> Void = { _ in }) throws {
        guard first.contains(where: { (try? $0.get()) != nil }) else {
            for case .failure(let r) in first { reject(r) }
            taken(first.count)
            return
        }
        let opened = DispatchTime.now().uptimeNanoseconds
        let written = try store.write(durable: false) { db, log in
            try store.requireRole(db: db, log: log, .ingest)
            var written: [(Prepared, IngestResult)] = []
            var bytes = 0
            var chunk: [Result<Prepared, Rejection>]? = first
            while let items = chunk {
                for item in items {
                    switch item {
                    case .success(let p):
                        written.append((p, try store.insert(p.row, db: db, log: log)))
                        bytes += p.bytes
                    case .failure(let r): reject(r)
                    }
                }
                taken(items.count)
                let open = Double(DispatchTime.now().uptimeNanoseconds - opened) / 1e9
                guard written.count < batchSize, bytes < Ingestor.batchBytes, open < Ingestor.longestTransaction else { break }
                chunk = more()
            }
            return written
        }
        for (item, result) in written {
            switch result {
            case .ingested: summary.ingested += 1; onStored(item.location, item.row.key, false)
            case .duplicate: summary.duplicate += 1; onStored(item.location, item.row.key, true)
            case .conflict(let stored):
                reject(Rejection(location: item.location,
                                 reason: "conflict: flag \(quoted(item.row.key)) is already stored with different content (stored record sha256 \(stored.prefix(16))…, this one \(item.record.recordHash.prefix(16))…); the stored record is unchanged",
                                 raw: item.raw))
            }
        }
    }
}

/// Parses a chunk of lines on every core: each worker has its own tape and writer (reused
/// from chunk to chunk), the results keep the lines' order.
final class ParallelParse: @unchecked Sendable {
    let baseDirectory: URL?
    let workers: Int
    /// One tape and writer per worker; worker `w` alone touches `states[w]`.
    private let states: UnsafeMutablePointer<(tape: JSONTape, writer: CanonicalWriter)>

    init(baseDirectory: URL?) {
        self.baseDirectory = baseDirectory
        workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        states = .allocate(capacity: workers)
        states.initialize(repeating: (JSONTape(), CanonicalWriter()), count: workers)
    }

    deinit {
        states.deinitialize(count: workers)
        states.deallocate()
    }

    /// The lines' results, in their order. Worker `w` parses the `w`th slice into its own
    /// part of the results.
    func prepare(_ lines: [(location: String, line: LineReader.Line)]) -> [Result<Ingestor.Prepared, Rejection>] {
        let slices = min(workers, lines.count)
        guard slices > 0 else { return [] }
        let results = Results(count: lines.count)
        DispatchQueue.concurrentPerform(iterations: slices) { w in
            for i in (w * lines.count / slices)..<((w + 1) * lines.count / slices) {
                let (location, line) = lines[i]
                switch line {
                case .tooLong(let n):
                    results.slots[i] = .failure(Rejection(location: location, reason: "line of \(n) bytes exceeds the limit of \(RecordLimits.maxLineBytes)", raw: []))
                case .line(let bytes):
                    results.slots[i] = Ingestor.prepare(line: bytes, location: location, baseDirectory: baseDirectory,
                                                        tape: &states[w].tape, writer: &states[w].writer)
                }
            }
        }
        return (0..<lines.count).compactMap { results.slots[$0] }
    }

    /// Result slots written by the workers, each slot by one worker only.
    final class Results: @unchecked Sendable {
        let slots: UnsafeMutablePointer<Result<Ingestor.Prepared, Rejection>?>
        let count: Int
        init(count: Int) {
            self.count = count
            slots = .allocate(capacity: count)
            slots.initialize(repeating: nil, count: count)
        }
        deinit {
            slots.deinitialize(count: count)
            slots.deallocate()
        }
    }
}

/// A blocking queue between one producer and one consumer, bounded in items and in bytes (an
/// item larger than the byte bound still passes, alone).
final class BoundedQueue<T>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [(item: T, bytes: Int)] = []
    private var bytes = 0
    private var finished = false
    private var _cancelled = false
    let capacity: Int
    let capacityBytes: Int

    init(capacity: Int, capacityBytes: Int = .max) { self.capacity = capacity; self.capacityBytes = capacityBytes }

    var cancelled: Bool { condition.withLock { _cancelled } }

    func put(_ item: T, bytes size: Int = 0) {
        condition.lock()
        while !items.isEmpty && (items.count >= capacity || bytes + size > capacityBytes) && !_cancelled { condition.wait() }
        if !_cancelled { items.append((item, size)); bytes += size }
        condition.broadcast()
        condition.unlock()
    }

    func finish() { condition.withLock { finished = true; condition.broadcast() } }

    /// Stops the producer (the consumer failed or returned early).
    func cancel() { condition.withLock { _cancelled = true; items.removeAll(); bytes = 0; condition.broadcast() } }

    /// The next item, or nil once the producer has finished and everything was taken; with
    /// `seconds`, also nil when nothing came within them.
    func take(waitingAtMost seconds: Double? = nil) -> T? {
        condition.lock()
        defer { condition.unlock() }
        // (Foundation's wait(until: .distantFuture) traps on Linux: no deadline is a plain wait.)
        let deadline = seconds.map { Date(timeIntervalSinceNow: $0) }
        while items.isEmpty && !finished {
            if let deadline { if !condition.wait(until: deadline) { break } } else { condition.wait() }
        }
        if items.isEmpty { return nil }
        let (item, size) = items.removeFirst()
        bytes -= size
        condition.broadcast()
        return item
    }
}
