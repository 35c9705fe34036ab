import AsyncHTTPClient
import Crypto
import CustosCore
import CustosPackets
import CustosStore
import Foundation
import NIOCore

/// `custos submit`: a referral sent through NCMEC's Reporting API (docs/submission.md), each
/// step recorded before the next begins, so a run that stops anywhere resumes where it
/// stopped and no referral is ever finished twice.
public struct Submitter: Sendable {
    public struct Options: Sendable {
        public var endpoint: String
        public var login: String
        public var password: String
        /// Where packets and their submission files are kept.
        public var folder: URL
        public var keyPath: String?
        public var timeout: TimeInterval = 60
        /// Attempts per step for transient failures (network errors, 5xx), and the first pause.
        public var attempts = 4
        public var backoff: TimeInterval = 1
        public init(endpoint: String, login: String, password: String, folder: URL, keyPath: String? = nil) {
            self.endpoint = endpoint; self.login = login; self.password = password; self.folder = folder; self.keyPath = keyPath
        }
    }

    /// A run that stopped: why, and what the recorded submission says to do next.
    public struct Stopped: Error, CustomStringConvertible {
        public enum Kind: Sendable { case retryLater, fix, credentials }
        public let kind: Kind
        public let message: String
        public var description: String { message }
    }

    let store: Store
    let options: Options
    let say: @Sendable (String) -> Void

    public init(store: Store, options: Options, say: @escaping @Sendable (String) -> Void) {
        self.store = store; self.options = options; self.say = say
    }

    /// Sends (or resumes sending) the case's referral to NCMEC; returns the finished record.
    /// A case already reported is sent again only as a `supplement` (a new packet and report,
    /// which names the earlier report in `priorCTReports`).
    public func submit(caseID: String, agency: String, supplement: Bool = false) async throws -> SubmissionRecord {
        try store.requirePermission(.export)
        let lock = try exclusive(caseID: caseID, agency: agency, verb: "submit")
        defer { lock.release() }
        var record = try resumeOrBegin(caseID: caseID, agency: agency, supplement: supplement)
        let client = outsideClient
        var restarts = 0
        while true {
            let step = record.nextStep
            do {
                if step == .done { return record }
                record = try await perform(step, record, client)
            } catch let lost as LostUpload {
                // NCMEC may hold a file we have no id for: its report would carry a file without
                // details. Retract it and open a clean one.
                restarts += 1
                guard restarts <= 2 else { throw Stopped(kind: .retryLater, message: lost.message) }
                if let report = record.reportID {
                    _ = try await call(client, .retract, body: .bytes(Data("id=\(report)".utf8)), contentType: "application/x-www-form-urlencoded")
                }
                record = try restart(record, reason: lost.message, details: ["retracted_report": record.reportID.map { .string($0) } ?? .null])
                say("\(lost.message): report retracted, opening a new one")
            } catch let expired as Expired {
                restarts += 1
                guard restarts <= 1 else { throw Stopped(kind: .retryLater, message: expired.message) }
                record = try restart(record, reason: expired.message)
                say("\(expired.message): opening a new report")
            } catch let stopped as Stopped {
                // A submit that got no answer stays marked as sent: the next run records that its
                // outcome is unknown before opening a new report.
                let unanswered = step == .submit && stopped.message.contains("no answer")
                _ = try? store.recordSubmission(record.id, step: "failed", details: ["at": .string(Submitter.describe(step)), "error": .string(stopped.message)]) {
                    $0.lastError = unanswered ? Submitter.submitSent + " (\(stopped.message))" : stopped.message
                }
                throw stopped
            }
        }
    }

    /// The open submission to resume, or a new one (a finished one is returned as it is, unless
    /// a supplement is asked for).
    private func resumeOrBegin(caseID: String, agency: String, supplement: Bool) throws -> SubmissionRecord {
        guard let latest = try store.latestSubmission(caseName: caseID, agency: agency), latest.state != .retracted,
              !(supplement && latest.state == .finished) else {
            let record = try begin(caseID: caseID, agency: agency)
            say("submission \(record.id): packet \(record.packetID), \(record.files.count) files")
            return record
        }
        if latest.state == .finished {
            say("case \(latest.caseID) was already submitted to \(agency): report \(latest.reportID ?? "?") (submission \(latest.id), finished \(latest.updatedAt)); nothing was sent (--supplement sends what changed since as a new report)")
            return latest
        }
        guard latest.endpoint == options.endpoint else {
            throw CustosError.conflict(subject: "submission \(latest.id)", reason: "is open at \(latest.endpoint); resume it with --endpoint \(latest.endpoint) (or retract it there)")
        }
        say("resuming submission \(latest.id) (report \(latest.reportID ?? "not yet opened"))")
        return latest
    }

    /// A report abandoned (lost upload, expired): every file to send again, in a new report.
    private func restart(_ record: SubmissionRecord, reason: String, details: [String: JSONValue] = [:]) throws -> SubmissionRecord {
        try store.recordSubmission(record.id, step: "restart", details: details.merging(["reason": .string(reason)]) { a, _ in a }) {
            $0.reportID = nil
            for i in $0.files.indices { $0.files[i].uploadSent = false; $0.files[i].fileID = nil; $0.files[i].detailsSent = false }
            $0.lastError = reason
        }
    }

    /// One step of the protocol, sent and recorded (each send is recorded as sent before it goes).
    private func perform(_ step: ReportingAPI.NextStep, _ record: SubmissionRecord, _ client: HTTPClient) async throws -> SubmissionRecord {
        switch step {
        case .done: return record
        case .submit: return try await sendSubmit(record, client)
        case .upload(let i): return try await upload(i, record, client)
        case .fileinfo(let i):
            let file = record.files[i]
            let transcript = file.name.hasPrefix("transcript-")
            let facts = transcript ? nil : try attachmentFacts(record)[file.sha256]
            let xml = Submitter.fileDetails(reportID: record.reportID ?? "", fileID: file.fileID ?? "", file: file,
                                            viewed: transcript || facts?["viewed_by_esp"] == .bool(true),
                                            matches: (facts?["matches"]?.arrayValue ?? []).compactMap(Submitter.matchWords))
            let r = try await call(client, .fileinfo, body: .bytes(Data(xml.utf8)), contentType: "text/xml; charset=utf-8")
            return try store.recordSubmission(record.id, step: "fileinfo", details: response(r).merging(["file": .integer(Int64(i))]) { a, _ in a }) {
                $0.files[i].detailsSent = true; $0.lastError = nil
            }
        case .finish: return try await finish(record, client)
        }
    }

    private func sendSubmit(_ record: SubmissionRecord, _ client: HTTPClient) async throws -> SubmissionRecord {
        var record = record
        let xml = try Data(contentsOf: packetFolder(record).appendingPathComponent("data/cybertipline-report.xml"))
        if record.lastError?.hasPrefix(Submitter.submitSent) == true {
            // A run sent submit and stopped before recording its answer.
            record = try store.recordSubmission(record.id, step: "submit-unknown", details: [
                "reason": .string("a previous run sent submit and stopped before recording its answer; if NCMEC opened a report then, it expires unfinished (24 hours after it was opened); a new report is opened")]) { $0.lastError = nil }
        }
        record = try store.recordSubmission(record.id, step: "submit-sent") { $0.lastError = Submitter.submitSent + " at \(Timestamp.utcString(millis: Int64(Date().timeIntervalSince1970 * 1000)))" }
        let r = try await call(client, .submit, body: .bytes(xml), contentType: "text/xml; charset=utf-8")
        guard let report = r.reportID else { throw Stopped(kind: .retryLater, message: "submit answered no report id") }
        record = try store.recordSubmission(record.id, step: "submit", details: response(r)) { $0.reportID = report; $0.lastError = nil }
        say("report \(report) opened")
        return record
    }

    private func upload(_ i: Int, _ record: SubmissionRecord, _ client: HTTPClient) async throws -> SubmissionRecord {
        var file = record.files[i]
        if file.uploadSent {
            // A run stopped after sending this upload and before its answer was recorded.
            throw LostUpload(message: "upload of \(file.name): a previous run sent it and stopped before the answer was recorded")
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file.path))
        guard SHA256Hex.of(bytes) == file.sha256 else {
            throw Stopped(kind: .fix, message: "\(file.path) changed since the submission began (its SHA-256 is not the recorded one)")
        }
        var record = try store.recordSubmission(record.id, step: "upload-sent", details: ["file": .integer(Int64(i))]) { $0.files[i].uploadSent = true }
        file = record.files[i]
        let (body, type) = Submitter.multipart(fields: [("id", record.reportID ?? "")], file: (file.name, bytes))
        let r: ReportingAPI.Response
        do {
            r = try await call(client, .upload, body: .bytes(body), contentType: type)
        } catch let stopped as Stopped {
            // Every attempt was answered, with a refusal: NCMEC holds no file from it.
            _ = try store.recordSubmission(record.id, step: "upload-refused", details: ["file": .integer(Int64(i))]) { $0.files[i].uploadSent = false }
            throw stopped
        }
        let theirs = r.hash ?? ""
        record = try store.recordSubmission(record.id, step: "upload",
                                            details: response(r).merging(["file": .integer(Int64(i)), "md5": .string(file.md5), "ncmec_md5": .string(theirs),
                                                                          "md5_match": .bool(theirs == file.md5)]) { a, _ in a }) {
            $0.files[i].fileID = r.fileID
            $0.lastError = theirs == file.md5 ? nil : "NCMEC's MD5 of \(file.name) is \(theirs), ours \(file.md5)"
        }
        if theirs != file.md5 {
            throw Stopped(kind: .fix, message: "NCMEC received \(file.name) with MD5 \(theirs.isEmpty ? "(none given)" : theirs), not \(file.md5); retract the report (`custos submit --retract`) and submit again")
        }
        say("uploaded \(file.name) as file \(r.fileID ?? "?")")
        return record
    }

    private func finish(_ record: SubmissionRecord, _ client: HTTPClient) async throws -> SubmissionRecord {
        let report = record.reportID ?? ""
        let r = try await call(client, .finish, body: .bytes(Data("id=\(report)".utf8)), contentType: "application/x-www-form-urlencoded")
        let ours = Set(record.files.compactMap(\.fileID)), theirs = Set(r.files)
        var facts = response(r)
        // A finish retried after a lost answer is told 5102 and lists no files: nothing to compare.
        if r.code == 0 {
            facts["files_missing"] = .array(ours.subtracting(theirs).sorted().map { .string($0) })
            facts["files_extra"] = .array(theirs.subtracting(ours).sorted().map { .string($0) })
        }
        let finished = try store.recordSubmission(record.id, step: "finish", details: facts) { $0.state = .finished; $0.lastError = nil }
        if r.code == 0, ours != theirs {
            say("warning: NCMEC's file list differs from ours (missing \(ours.subtracting(theirs).sorted()), extra \(theirs.subtracting(ours).sorted())); recorded")
        }
        say("report \(report) finished: recorded as the referral's receipt")
        return finished
    }

    /// Withdraws the open submission's report (`retract`), which NCMEC allows only before finish.
    public func retract(caseID: String, agency: String) async throws -> SubmissionRecord {
        let lock = try exclusive(caseID: caseID, agency: agency, verb: "retract")
        defer { lock.release() }
        guard let record = try store.latestSubmission(caseName: caseID, agency: agency), record.state == .open else {
            throw CustosError.invalidState(subject: "case \(caseID)", state: "without an open submission to \(agency)", reason: "only an unfinished report can be retracted")
        }
        guard let report = record.reportID else {
            return try store.recordSubmission(record.id, step: "retract", details: ["note": .string("no report was opened at NCMEC")]) { $0.state = .retracted }
        }
        let client = outsideClient
        do {
            let r = try await call(client, .retract, body: .bytes(Data("id=\(report)".utf8)), contentType: "application/x-www-form-urlencoded")
            return try store.recordSubmission(record.id, step: "retract", details: response(r)) { $0.state = .retracted; $0.lastError = nil }
        } catch let stopped as Stopped {
            try? store.recordSubmission(record.id, step: "failed", details: ["at": .string("retract"), "error": .string(stopped.message)]) { $0.lastError = stopped.message }
            throw stopped
        }
    }

    /// The case's submission to `agency`, for this run alone (`Store.submissionLock`); a run
    /// refused it is recorded as a refusal.
    func exclusive(caseID: String, agency: String, verb: String) throws -> FileLock {
        do {
            return try store.submissionLock(caseName: caseID, agency: agency)
        } catch let e as CustosError {
            try? store.recordRefusal(e, verb: verb)
            throw e
        }
    }

    /// The login and password for `host` from a netrc file only its owner may read (`file`,
    /// else $CUSTOS_NETRC, else ~/.netrc); refused before any network call otherwise.
    public static func credentials(host: String, file: String?) throws -> (String, String) {
        let path = file ?? ProcessInfo.processInfo.environment["CUSTOS_NETRC"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (FileManager.default.homeDirectoryForCurrentUser.path + "/.netrc")
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw CustosError.notFound(kind: "netrc file", name: path, hint: "give the Reporting API credentials in a netrc file (--netrc FILE)")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw CustosError.invalidInput(field: "--netrc", reason: "\(path) can be read by others (mode \(String(info.st_mode & 0o777, radix: 8))); run `chmod 600 \(path)`. Nothing was sent.")
        }
        guard info.st_size <= 1 << 20, let data = FileManager.default.contents(atPath: path) else {
            throw CustosError.invalidInput(field: "--netrc", reason: "\(path) cannot be read, or is larger than 1 MiB")
        }
        guard let c = Netrc.credentials(host: host, in: String(decoding: data, as: UTF8.self)) else {
            throw CustosError.notFound(kind: "netrc entry", name: host, hint: "add `machine \(host) login USER password PASSWORD` to \(path)")
        }
        return c
    }

    // MARK: the packet and its files

    /// Exports the packet (recorded as a referral, which starts its hold), writes one transcript
    /// per conversation beside it, and records the submission with its files.
    func begin(caseID: String, agency: String) throws -> SubmissionRecord {
        try FileManager.default.createDirectory(at: options.folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = try store.signingKey(path: options.keyPath)
        let out = options.folder.appendingPathComponent("\(caseID)-\(agency)-submission-\(UUID().uuidString.prefix(8))")
        let exported = try ReferralExport.run(store: store, caseID: caseID, agency: agency, out: out, zip: false, templates: nil, xsd: nil, key: key,
                                              warn: { self.say($0) })
        guard let snapshot = exported.snapshot else { throw CustosError.storage(cause: "the export returned no snapshot") }
        let filesDir = URL(fileURLWithPath: out.path + ".files")
        try FileManager.default.createDirectory(at: filesDir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        var files: [(name: String, path: String, sha256: String, md5: String)] = []
        func add(_ name: String, _ url: URL) throws {
            let bytes = try Data(contentsOf: url)
            files.append((name, url.path, SHA256Hex.of(bytes), Hex.encode(Insecure.MD5.hash(data: bytes))))
        }
        for flag in snapshot.flags {
            let name = "transcript-\(flag.evidenceHash.prefix(16)).csv"
            let url = filesDir.appendingPathComponent(name)
            try Data(TranscriptCSV.make(flag).utf8).write(to: url, options: .withoutOverwriting)
            try add(name, url)
        }
        var seen = Set<String>()
        for flag in snapshot.flags {
            for a in flag.conversation.messages.flatMap(\.attachments) where snapshot.attachments[a.sha256] != nil && seen.insert(a.sha256).inserted {
                try add(a.name.map(Escape.fileName) ?? a.sha256, exported.directory.appendingPathComponent(Report.attachmentFile(a.sha256)))
            }
        }
        return try store.beginSubmission(caseName: caseID, agency: agency, packetID: exported.packetID, endpoint: options.endpoint, files: files)
    }

    func packetFolder(_ record: SubmissionRecord) throws -> URL {
        guard let first = record.files.first.map({ URL(fileURLWithPath: $0.path).deletingLastPathComponent() }), first.path.hasSuffix(".files") else {
            // A submission with no files keeps its packet by its id's folder name.
            let candidates = (try? FileManager.default.contentsOfDirectory(at: options.folder, includingPropertiesForKeys: nil)) ?? []
            guard let dir = candidates.first(where: { $0.lastPathComponent.hasPrefix("\(record.caseID)-\(record.agency)-submission-") && !$0.path.hasSuffix(".files")
                && (try? String(contentsOf: $0.appendingPathComponent("data/report.json"), encoding: .utf8))?.contains(record.packetID) == true }) else {
                throw CustosError.notFound(kind: "packet folder", name: record.packetID, hint: "the submission's packet is kept under \(options.folder.path)")
            }
            return dir
        }
        return URL(fileURLWithPath: String(first.path.dropLast(".files".count)))
    }

    // MARK: the protocol

    /// The mark `last_error` carries while a submit is in flight (no column needed for it).
    static let submitSent = "submit sent; its answer is not recorded yet"

    struct Expired: Error { let message: String }
    /// An upload whose answer never came: NCMEC may have attached the file under an id we do not know.
    struct LostUpload: Error { let message: String }

    /// One call, retried with backoff while its answers are transient; returns a success (or
    /// an "already done"), throws `Stopped` or `Expired` otherwise. Retrying `submit` after a
    /// lost answer opens a second report; the first expires unfinished at NCMEC (the spec), so
    /// at most one report is ever finished.
    func call(_ client: HTTPClient, _ step: ReportingAPI.Step, body: HTTPClientRequest.Body, contentType: String) async throws -> ReportingAPI.Response {
        var pause = options.backoff
        var last = ""
        for attempt in 1...max(1, options.attempts) {
            var request = HTTPClientRequest(url: options.endpoint + "/" + step.rawValue)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Basic " + Data("\(options.login):\(options.password)".utf8).base64EncodedString())
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = body
            do {
                let response = try await client.execute(request, timeout: .milliseconds(Int64(options.timeout * 1000)))
                let bytes = try await response.body.collect(upTo: 4 << 20)
                let r = ReportingAPI.Response.parse(httpStatus: Int(response.status.code), body: Array(buffer: bytes),
                                                    contentType: response.headers.first(name: "Content-Type"), requestID: response.headers.first(name: "Request-ID"))
                switch ReportingAPI.verdict(step, r) {
                case .ok, .alreadyDone: return r
                case .retry(let why): last = why
                case .fix(let why): throw Stopped(kind: .fix, message: "\(step.rawValue): \(why)")
                case .stop(let why): throw Stopped(kind: .credentials, message: "\(step.rawValue): \(why)")
                case .expired(let why): throw Expired(message: "\(step.rawValue): \(why)")
                }
            } catch let e as Stopped {
                throw e
            } catch let e as Expired {
                throw e
            } catch {
                last = "no answer (\(error))"
                if step == .upload { throw LostUpload(message: "upload: \(last)") }
                if step == .submit { say("submit: \(last); its outcome is unknown: a retry opens a new report, and an unanswered one expires unfinished at NCMEC") }
            }
            if attempt < options.attempts {
                say("\(step.rawValue): \(last); trying again in \(String(format: "%.1f", pause)) s (attempt \(attempt + 1) of \(options.attempts))")
                try await Task.sleep(nanoseconds: UInt64(pause * 1e9))
                pause *= 2
            }
        }
        throw Stopped(kind: .retryLater, message: "\(step.rawValue): \(last) (after \(options.attempts) attempts); run `custos submit` again to resume")
    }

    func response(_ r: ReportingAPI.Response) -> [String: JSONValue] {
        var facts: [String: JSONValue] = ["http_status": .integer(Int64(r.httpStatus))]
        if let c = r.code { facts["response_code"] = .integer(Int64(c)) }
        if let d = r.description { facts["response_description"] = .string(d) }
        if let id = r.requestID { facts["request_id"] = .string(id) }
        if let report = r.reportID { facts["report_id"] = .string(report) }
        if let file = r.fileID { facts["file_id"] = .string(file) }
        return facts
    }

    static func describe(_ step: ReportingAPI.NextStep) -> String {
        switch step {
        case .submit: "submit"
        case .upload(let i): "upload of file \(i)"
        case .fileinfo(let i): "fileinfo of file \(i)"
        case .finish: "finish"
        case .done: "done"
        }
    }

    /// `multipart/form-data` (RFC 7578) with text fields and one file part named `file`.
    static func multipart(fields: [(String, String)], file: (name: String, bytes: Data)) -> (Data, String) {
        let boundary = "custos-" + UUID().uuidString
        var body = Data()
        func line(_ s: String) { body.append(Data((s + "\r\n").utf8)) }
        for (name, value) in fields {
            line("--\(boundary)")
            line("Content-Disposition: form-data; name=\"\(name)\"")
            line("")
            line(value)
        }
        let safeName = file.name.replacingOccurrences(of: "\"", with: "_").replacingOccurrences(of: "\r", with: "_").replacingOccurrences(of: "\n", with: "_")
        line("--\(boundary)")
        line("Content-Disposition: form-data; name=\"file\"; filename=\"\(safeName)\"")
        line("Content-Type: application/octet-stream")
        line("")
        body.append(file.bytes)
        line("")
        line("--\(boundary)--")
        return (body, "multipart/form-data; boundary=\(boundary)")
    }

    /// What the packet's report.json says of each attachment, by SHA-256: whether a person at the
    /// platform viewed it unblurred, and the hash lists it matched (`verify-packet` holds both to
    /// the packet's proven custody entries).
    func attachmentFacts(_ record: SubmissionRecord) throws -> [String: JSONValue] {
        let report = try JSONValue.parse(Data(contentsOf: try packetFolder(record).appendingPathComponent("data/report.json")))
        var out: [String: JSONValue] = [:]
        for a in report["attachments"]?.arrayValue ?? [] { if let sha = a["sha256"]?.stringValue { out[sha] = a } }
        return out
    }

    /// A report.json match in words, for the file's `additionalInfo`.
    static func matchWords(_ m: JSONValue) -> String? {
        guard let list = m["list"]?.stringValue, let kind = m["kind"]?.stringValue.flatMap(HashKind.init(rawValue:)),
              let hash = m["hash"]?.stringValue, let distance = m["distance"]?.intValue else { return nil }
        let match = KnownMatch(list: list, kind: kind, hash: hash, distance: Int(distance), label: m["label"]?.stringValue)
        return "Known material: \(match.words), listed hash \(hash)\(match.label.map { ", label \($0)" } ?? "")."
    }

    /// The `<fileDetails>` for one file (the schema's element order): what it is, whether a
    /// person at the platform viewed it (the transcript: the reviewers read the conversation;
    /// an attachment: only when the custody log records it revealed unblurred), its MD5 as
    /// uploaded, and the hash lists it matched.
    static func fileDetails(reportID: String, fileID: String, file: SubmissionRecord.File, viewed: Bool, matches: [String] = []) -> String {
        let transcript = file.name.hasPrefix("transcript-")
        let about = transcript
            ? "Transcript of a private conversation involving the reported person: one row per message (docs/submission.md). SHA-256 \(file.sha256)."
            : "Attachment sent in the reported conversation. SHA-256 \(file.sha256)."
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <fileDetails xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="https://report.cybertip.org/ispws/xsd">
              <reportId>\(Escape.xml(reportID))</reportId>
              <fileId>\(Escape.xml(fileID))</fileId>
              <fileName>\(Escape.xml(file.name))</fileName>
              <fileViewedByEsp>\(viewed ? "true" : "false")</fileViewedByEsp>
            \(transcript ? "" : "  <originalFileHash hashType=\"MD5\">\(Escape.xml(file.md5))</originalFileHash>\n")  <additionalInfo>\(Escape.xml(about))</additionalInfo>
            \(matches.map { "  <additionalInfo>\(Escape.xml($0))</additionalInfo>\n" }.joined())</fileDetails>

            """
    }
}

/// A conversation as CSV (RFC 4180), one row per message: what NCMEC receives as the
/// transcript file (docs/submission.md). A cell that a spreadsheet would read as a formula
/// (starting with = + - @ or a tab or carriage return) is prefixed with an apostrophe.
public enum TranscriptCSV {
    public static let header = ["message_id", "sent_at", "sent_at_utc", "sender", "sender_role", "recipients", "text", "attachments_sha256", "conversation_id", "platform"]

    public static func make(_ f: ReferralSnapshot.Flag) -> String {
        let roles = Dictionary(f.conversation.participants.map { ($0.userID, $0.roleHint?.rawValue ?? "unknown") }, uniquingKeysWith: { a, _ in a })
        let everyone = f.conversation.participants.map(\.userID)
        var rows = [header]
        for m in f.conversation.messages {
            rows.append([m.id, m.sentAt.text, Timestamp.utcString(millis: m.sentAt.epochMillis), m.sender, roles[m.sender] ?? "unknown",
                         everyone.filter { $0 != m.sender }.joined(separator: " "), m.text, m.attachments.map(\.sha256).joined(separator: " "),
                         f.conversation.id, f.platform])
        }
        return rows.map { $0.map(cell).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    static func cell(_ s: String) -> String {
        var v = s
        if let first = v.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { v = "'" + v }
        return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
