import ArgumentParser
import CustosCore
import CustosStore
import Foundation

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a store and the organisation's Ed25519 signing key; you become its first admin.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The organisation's name (reporter in referrals).") var org: String
    @Option(name: .customLong("contact-email"), help: "The organisation's contact email for agencies.") var contactEmail: String
    @Option(help: "Where to write the signing key (default: beside the store, STORE.signing.key).") var key: String?

    func run() throws {
        try guarded {
            let store: Store
            do {
                store = try Store.create(path: global.path, keyPath: key, org: org, contactEmail: contactEmail, actor: global.actorValue)
            } catch { throw CLIError(error) }
            let o = try store.organisation()
            print("created store \(global.path)")
            print("signing key  \(o.keyFile) (mode 0600; keep it safe)")
            print("log origin   \(o.origin)")
            print("first admin  \(global.actorValue.osUser)")
        }
    }
}

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "key", abstract: "The organisation's signing key.", subcommands: [KeyShow.self])
}

struct KeyShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the public key (fingerprint, or PEM SubjectPublicKeyInfo with --pem).")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print the PEM public key (openssl pkey -pubin reads it).") var pem = false

    func run() throws {
        try guarded {
            let store = try global.open()
            let key = try store.publicKey()
            if pem { print(KeyEncoding.publicKeyPEM(key), terminator: "") } else {
                print("Ed25519 \(KeyEncoding.fingerprint(key))")
                print("origin  \(try store.organisation().origin)")
            }
        }
    }
}

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store flag records (JSON Lines, or PAN 2012 XML).",
        discussion: "Exit status: 0 every record was stored or already present; 3 some records were rejected (the others were stored); 1 a fatal error stopped the run (records already committed stay stored).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Input files; - reads standard input.") var files: [String]
    @Option(help: "jsonl or pan12.") var format: String = "jsonl"
    @Option(help: "Append rejected records, verbatim, to this file.") var rejects: String?
    @Option(help: "PAN 2012: the platform the corpus came from.") var platform: String = "PAN2012"
    @Option(help: "PAN 2012: the date of each conversation's first message (YYYY-MM-DD).") var date: String?

    func validate() throws {
        guard ["jsonl", "pan12"].contains(format) else { throw ValidationError("--format must be jsonl or pan12") }
        if format == "pan12", date.flatMap(Timestamp.parseDate) == nil {
            throw ValidationError("--format pan12 needs --date YYYY-MM-DD (the corpus has times without dates)")
        }
    }

    func run() throws {
        try guarded {
            let store = try global.open()
            var rejectsHandle: FileHandle?
            if let rejects {
                if !FileManager.default.fileExists(atPath: rejects) { _ = FileManager.default.createFile(atPath: rejects, contents: nil) }
                guard let h = FileHandle(forWritingAtPath: rejects) else { throw CLIError("cannot write the rejects file \(rejects)") }
                h.seekToEndOfFile()
                rejectsHandle = h
            }
            let ingestor = Ingestor(store: store)
            let tty = isatty(STDERR_FILENO) == 1
            ingestor.onReject = { r in
                FileHandle.standardError.write(Data("\(r.location): \(r.reason)\n".utf8))
                if let h = rejectsHandle, !r.raw.isEmpty { h.write(Data(r.raw + [0x0A])) }
            }
            for file in files {
                let handle: FileHandle
                let base: URL?
                if file == "-" {
                    handle = FileHandle.standardInput
                    base = nil
                } else {
                    guard let h = FileHandle(forReadingAtPath: file) else { throw CLIError("cannot read \(file)") }
                    handle = h
                    base = URL(fileURLWithPath: file).deletingLastPathComponent()
                }
                let size = file == "-" ? 0 : ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value ?? 0)
                if tty && size > 8 << 20 {
                    ingestor.onProgress = { n, bytes in
                        let pct = size > 0 ? Int(bytes * 100 / size) : 0
                        FileHandle.standardError.write(Data("\r\(file): \(n) records, \(pct)%".utf8))
                    }
                } else { ingestor.onProgress = { _, _ in } }
                let name = file == "-" ? "<stdin>" : file
                do {
                    if format == "pan12" {
                        try ingestPan12(handle: handle, name: name, ingestor: ingestor)
                    } else {
                        try ingestor.ingestJSONLines(handle, name: name, baseDirectory: base)
                    }
                } catch {
                    throw CLIError("\(name): \(error)")
                }
                if tty && size > 8 << 20 { FileHandle.standardError.write(Data("\n".utf8)) }
            }
            let s = ingestor.summary
            print("ingested \(s.ingested), duplicate \(s.duplicate), rejected \(s.rejected)")
            if s.rejected > 0 { throw ExitCode(3) }
        }
    }

    func ingestPan12(handle: FileHandle, name: String, ingestor: Ingestor) throws {
        let day = Timestamp.parseDate(date!)!
        var failure: Error?
        let reader = Pan12Reader(platform: platform, date: day) { item in
            guard failure == nil else { return }
            let location = "\(name):\(item.line)"
            switch item.result {
            case .failure(let e):
                ingestor.reject(Rejection(location: location, reason: "conversation \(quoted(item.conversationID)): \(e)", raw: []))
            case .success(let json):
                do { try ingestor.offer(json: json, location: location, raw: Array(json.canonicalString.utf8), baseDirectory: nil) }
                catch { failure = error }
            }
        }
        // FoundationXML trusts its input to be UTF-8 (and crashes on some that is not), so
        // check the bytes first; stdin is spooled to a temporary file for the two passes.
        var path = name
        var spool: URL?
        if name == "<stdin>" {
            let t = FileManager.default.temporaryDirectory.appendingPathComponent("custos-stdin-\(UUID().uuidString).xml")
            _ = FileManager.default.createFile(atPath: t.path, contents: nil)
            let out = try FileHandle(forWritingTo: t)
            while case let chunk = handle.readData(ofLength: 1 << 20), !chunk.isEmpty { out.write(chunk) }
            try out.close()
            spool = t
            path = t.path
        }
        defer { if let spool { try? FileManager.default.removeItem(at: spool) } }
        guard let check = FileHandle(forReadingAtPath: path) else { throw CLIError("cannot read \(name)") }
        var utf8 = UTF8Validator()
        while case let chunk = check.readData(ofLength: 1 << 20), !chunk.isEmpty {
            guard utf8.feed(chunk) else {
                ingestor.reject(Rejection(location: "\(name):\(utf8.line)", reason: "invalid UTF-8 at byte \(utf8.offset + 1); the file was not read", raw: []))
                return
            }
        }
        guard utf8.complete else {
            ingestor.reject(Rejection(location: "\(name):\(utf8.line)", reason: "the file ends inside a UTF-8 sequence; the file was not read", raw: []))
            return
        }
        let stream = InputStream(fileAtPath: path)!
        let ok = reader.parse(stream: stream)
        if let failure { throw failure }
        try ingestor.flush()
        if !ok {
            ingestor.reject(Rejection(location: name, reason: reader.xmlError ?? "malformed XML; the rest of the file was not read", raw: []))
        }
    }
}

struct Flags: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List stored flags.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "One JSON array for scripts.") var json = false
    @Option(help: "At most this many.") var limit: Int?

    func run() throws {
        try guarded {
            let flags = try global.open().flags(limit: limit)
            if json {
                printJSON(.array(flags.map { f in .object([
                    ("flag", .string(f.key)), ("flag_id", .string(f.flagID)), ("detector", .string(f.detector)),
                    ("score", f.score.map { .number($0) }), ("status", .string(f.status)), ("platform", .string(f.platform)),
                    ("messages", .integer(Int64(f.messageCount))), ("evidence_hash", .string(f.evidenceHash)),
                    ("detected_at", .string(f.detectedAt)), ("urgent", .bool(f.urgent)),
                ]) }))
                return
            }
            print(pad("FLAG", 34) + pad("DETECTOR", 10) + pad("SCORE", 7) + pad("STATUS", 14) + pad("PLATFORM", 14) + pad("MSGS", 6) + "EVIDENCE")
            for f in flags {
                print(pad(terminalSafe(f.flagID), 34) + pad(terminalSafe(f.detector), 10) + pad(f.score.map { String(format: "%.2f", $0) } ?? "-", 7)
                      + pad(f.status + (f.urgent ? "!" : ""), 14) + pad(terminalSafe(f.platform), 14) + pad(String(f.messageCount), 6)
                      + String(f.evidenceHash.prefix(12)))
            }
        }
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

/// Makes untrusted text safe for a terminal: control and bidi-override characters shown as escapes.
func terminalSafe(_ s: String) -> String {
    var out = ""
    for scalar in s.unicodeScalars {
        if (scalar.value < 0x20 && scalar != "\t") || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
            || (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value) {
            out += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a flag's conversation as a transcript (the read is logged in the custody log).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "FLAG: detector:flag_id, or a flag_id used by one detector.") var flag: String
    @Option(help: "Why you are reading it (recorded).") var purpose: String = "review"
    @Flag(help: "Print the conversation's canonical JSON (the evidence-hash input) instead.") var canonical = false

    func run() throws {
        try guarded {
            let f = try global.open().readFlag(flag, purpose: purpose)
            if canonical { FileHandle.standardOutput.write(f.canonicalConversation); return }
            print(Transcript.render(f, terminal: true))
        }
    }
}

enum Transcript {
    /// A readable transcript with full dates: UTC, and the sender's original offset.
    static func render(_ f: StoredFlag, terminal: Bool) -> String {
        let safe: (String) -> String = { terminal ? terminalSafe($0) : $0 }
        let c = f.conversation
        var lines: [String] = []
        lines.append("Flag \(safe(f.key))  score \(f.score.map { String(format: "%.2f", $0) } ?? "unscored")  detected \(f.detectedAt)")
        lines.append("Platform \(safe(f.platform))\(f.surface.map { " / " + safe($0) } ?? "")  conversation \(safe(c.id))")
        lines.append("Evidence hash \(f.evidenceHash)")
        lines.append("Participants:")
        for p in c.participants {
            var d = "  \(safe(p.userID))"
            if let s = p.screenName { d += " @\(safe(s))" }
            if let n = p.displayName { d += " \"\(safe(n))\"" }
            if let r = p.roleHint { d += " [\(r.rawValue)]" }
            if let a = p.statedAge { d += " age \(a)" }
            if let cc = p.country { d += " \(cc)" }
            lines.append(d)
        }
        lines.append("Messages (UTC; original offset in brackets):")
        for m in c.messages {
            let utc = Timestamp.format(millis: m.sentAt.epochMillis, offsetMinutes: 0)
            let orig = m.sentAt.offsetMinutes == 0 ? "" : " [\(m.sentAt.text)]"
            lines.append("  \(utc)\(orig) \(safe(m.sender)): \(safe(m.text))")
            for a in m.attachments {
                lines.append("      attachment \(safe(a.name ?? "(unnamed)")) \(safe(a.mediaType ?? "")) \(a.size) bytes sha256 \(a.sha256)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

struct Gen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write synthetic flag records as JSON Lines to standard output (deterministic per seed).")
    @Option(help: "How many flags.") var flags: Int
    @Option(help: "Messages per conversation.") var messages: Int = 20
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Make every flag report this account id on one platform (one case).") var reported: String?

    func validate() throws {
        guard flags >= 0 else { throw ValidationError("--flags must be ≥ 0") }
        guard messages >= 1 else { throw ValidationError("--messages must be ≥ 1") }
    }

    func run() throws {
        var buffer = Data()
        buffer.reserveCapacity(1 << 20)
        Generator(flags: flags, messages: messages, seed: seed, reported: reported).generate { line in
            buffer.append(contentsOf: line.utf8)
            buffer.append(0x0A)
            if buffer.count > 1 << 20 { FileHandle.standardOutput.write(buffer); buffer.removeAll(keepingCapacity: true) }
        }
        FileHandle.standardOutput.write(buffer)
    }
}
