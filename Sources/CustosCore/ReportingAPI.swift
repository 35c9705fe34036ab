import Foundation

/// NCMEC's CyberTipline Reporting API, as ../shared/spec/cybertipline-api.md describes it: the
/// environments, the answers and what each means for the client, and the order of a
/// submission's steps as a pure function of what has been recorded. No I/O here.
public enum ReportingAPI {
    public enum Environment: String, Sendable, CaseIterable {
        case test, production
        public var baseURL: String {
            switch self {
            case .test: "https://exttest.cybertip.org/ispws"
            case .production: "https://report.cybertip.org/ispws"
            }
        }
    }

    public enum Step: String, Sendable, CaseIterable {
        case submit, upload, fileinfo, finish, retract
    }

    /// An answer: the HTTP status and what its XML body says.
    public struct Response: Sendable, Equatable {
        public var httpStatus: Int
        public var code: Int?
        public var description: String?
        public var reportID: String?
        public var fileID: String?
        /// NCMEC's MD5 of an uploaded file's bytes (hex).
        public var hash: String?
        /// A finished report's file ids.
        public var files: [String]
        public var requestID: String?

        public init(httpStatus: Int, code: Int? = nil, description: String? = nil, reportID: String? = nil, fileID: String? = nil,
                    hash: String? = nil, files: [String] = [], requestID: String? = nil) {
            self.httpStatus = httpStatus; self.code = code; self.description = description; self.reportID = reportID
            self.fileID = fileID; self.hash = hash; self.files = files; self.requestID = requestID
        }

        /// Reads a `<reportResponse>` or `<reportDoneResponse>` body, decoded by the declared
        /// charset (ISO-8859-1 has been seen; UTF-8 otherwise). A body that is not such a
        /// document (an empty 401, an HTML error page) leaves the fields nil.
        public static func parse(httpStatus: Int, body: [UInt8], contentType: String?, requestID: String? = nil) -> Response {
            let latin1 = contentType?.lowercased().replacingOccurrences(of: " ", with: "").contains("charset=iso-8859-1") == true
            let text = latin1 ? String(body.map { Character(Unicode.Scalar($0)) }) : String(decoding: body, as: UTF8.self)
            var r = Response(httpStatus: httpStatus, requestID: requestID)
            r.code = element("responseCode", in: text).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            r.description = element("responseDescription", in: text)
            r.reportID = element("reportId", in: text)?.trimmingCharacters(in: .whitespacesAndNewlines)
            r.hash = element("hash", in: text)?.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            if let files = element("files", in: text) {
                r.files = elements("fileId", in: files).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                r.fileID = nil
            } else {
                r.fileID = element("fileId", in: text)?.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return r
        }

        static func element(_ name: String, in text: String) -> String? { elements(name, in: text).first }

        /// The text of every `<name>…</name>` (entities decoded); `<name/>` is empty.
        public static func elements(_ name: String, in text: String) -> [String] {
            var out: [String] = []
            var rest = text[...]
            while let open = rest.range(of: "<\(name)") {
                let after = rest[open.upperBound...]
                guard let close = after.firstIndex(of: ">") else { break }
                let attributes = after[..<close]
                // Only this element, not one whose name starts the same (`<files>` vs `<file>`).
                if let c = attributes.first, !(c == " " || c == "/" || c == "\t" || c == "\n") && !attributes.isEmpty {
                    rest = after; continue
                }
                if attributes.hasSuffix("/") { out.append(""); rest = after[after.index(after: close)...]; continue }
                let body = after[after.index(after: close)...]
                guard let end = body.range(of: "</\(name)>") else { break }
                out.append(decodeEntities(String(body[..<end.lowerBound])))
                rest = body[end.upperBound...]
            }
            return out
        }

        static func decodeEntities(_ s: String) -> String {
            guard s.contains("&") else { return s }
            var out = s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            out = out.replacingOccurrences(of: "&amp;", with: "&")
            return out
        }
    }

    /// What an answer means for the step that got it.
    public enum Verdict: Sendable, Equatable {
        case ok
        /// The step had already been done (a retried `finish` answered 5102, `retract` 5101).
        case alreadyDone
        /// A transient failure: the same step may be tried again, after a pause.
        case retry(String)
        /// The report is wrong (the validator's message): fix it and run again.
        case fix(String)
        /// The report no longer exists at NCMEC (expired unfinished): start a new one.
        case expired(String)
        /// Credentials or authorisation: stop; nothing further will succeed.
        case stop(String)
    }

    public static func verdict(_ step: Step, _ r: Response) -> Verdict {
        let said = r.description.map { ": \($0)" } ?? ""
        if r.httpStatus == 401 || r.code == 2000 { return .stop("authentication failed (HTTP \(r.httpStatus)\(r.code.map { ", code \($0)" } ?? "")): check the user and password for this endpoint in the netrc file") }
        if r.httpStatus == 403 || [3000, 3100, 3300].contains(r.code ?? -1) {
            return .stop("not authorised (HTTP \(r.httpStatus)\(r.code.map { ", code \($0)" } ?? ""))\(said): NCMEC must enable these credentials for \(step == .submit ? "submissions" : "this step")")
        }
        if r.httpStatus >= 500 || r.httpStatus == 408 || r.httpStatus == 429 { return .retry("HTTP \(r.httpStatus)\(said)") }
        if (300..<400).contains(r.httpStatus) {
            return .fix("HTTP \(r.httpStatus): a redirect, not followed (a report goes only to the endpoint named, never elsewhere or over plain http)")
        }
        guard r.httpStatus == 200 else { return .fix("HTTP \(r.httpStatus)\(said)") }
        switch r.code {
        case 0?:
            switch step {
            case .submit: return r.reportID == nil ? .retry("the answer to submit carried no report id") : .ok
            case .upload: return r.fileID == nil ? .retry("the answer to upload carried no file id") : .ok
            default: return .ok
            }
        case 5102? where step == .finish, 5101? where step == .retract: return .alreadyDone
        case 5102?: return .stop("the report is already finished (5102)\(said)")
        case 5101?: return .stop("the report was retracted (5101)\(said)")
        case 1000?, 1100?, 1110?, 1111?, 1300?: return .retry("NCMEC could not process it (code \(r.code!))\(said)")
        case 1210?, 5001?, 5002?: return .expired("NCMEC no longer has it (code \(r.code!))\(said)")
        case 4000?, 4100?, 4110?, 4200?, 1001?: return .fix("NCMEC rejected it (code \(r.code!))\(said)")
        case let c?: return .stop("NCMEC answered code \(c)\(said)")
        case nil: return .retry("the answer was not a reportResponse (HTTP \(r.httpStatus))")
        }
    }

    /// One file of a submission as recorded.
    public struct FileProgress: Sendable, Equatable {
        public var fileID: String?
        public var detailsSent: Bool
        public init(fileID: String? = nil, detailsSent: Bool = false) { self.fileID = fileID; self.detailsSent = detailsSent }
    }

    public enum NextStep: Sendable, Equatable {
        case submit
        case upload(file: Int)
        case fileinfo(file: Int)
        case finish
        case done
    }

    /// The step after what has been recorded: a report id before any upload, each file
    /// uploaded then described, in order, then finish. A finished report has nothing left.
    public static func next(reportID: String?, files: [FileProgress], finished: Bool) -> NextStep {
        if finished { return .done }
        guard reportID != nil else { return .submit }
        for (i, f) in files.enumerated() {
            if f.fileID == nil { return .upload(file: i) }
            if !f.detailsSent { return .fileinfo(file: i) }
        }
        return .finish
    }
}

/// A netrc file (the format curl and ftp read): `machine HOST login USER password PASS`, and
/// `default`; `macdef` blocks are skipped.
public enum Netrc {
    public struct Entry: Sendable, Equatable {
        public var machine: String?
        public var login: String?
        public var password: String?
    }

    public static func parse(_ text: String) -> [Entry] {
        var entries: [Entry] = []
        var tokens: [Substring] = []
        var inMacro = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if inMacro { if line.trimmingCharacters(in: .whitespaces).isEmpty { inMacro = false }; continue }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if let i = words.firstIndex(of: "macdef") { tokens += words[..<i]; inMacro = true; continue }
            tokens += words
        }
        var i = 0
        while i < tokens.count {
            switch tokens[i] {
            case "machine":
                entries.append(Entry(machine: i + 1 < tokens.count ? String(tokens[i + 1]) : nil)); i += 2
            case "default":
                entries.append(Entry(machine: nil)); i += 1
            case "login", "password", "account":
                let value = i + 1 < tokens.count ? String(tokens[i + 1]) : nil
                if !entries.isEmpty {
                    if tokens[i] == "login" { entries[entries.count - 1].login = value }
                    if tokens[i] == "password" { entries[entries.count - 1].password = value }
                }
                i += 2
            default: i += 1
            }
        }
        return entries
    }

    /// The login and password for `host`: its `machine` entry, else `default`.
    public static func credentials(host: String, in text: String) -> (login: String, password: String)? {
        let entries = parse(text)
        let entry = entries.first { $0.machine?.lowercased() == host.lowercased() } ?? entries.first { $0.machine == nil }
        guard let login = entry?.login, let password = entry?.password else { return nil }
        return (login, password)
    }
}
