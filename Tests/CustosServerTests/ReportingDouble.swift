import Crypto
import CustosCore
import CustosPackets
import Foundation
import Hummingbird
import NIOCore

/// A protocol double of NCMEC's CyberTipline Reporting API (../shared/spec/cybertipline-api.md),
/// on loopback: Basic auth, XML bodies validated against the CyberTipline schema, multipart
/// uploads answered with the MD5 of what arrived, the documented response codes, and faults
/// set per step (an HTTP status, a response code, or an answer that never comes after the
/// request was processed).
final class ReportingDouble: @unchecked Sendable {
    enum Fault: Sendable {
        case status(Int)
        case code(Int, String)
        /// Processes the request, then holds the answer back past the client's timeout.
        case lostAnswer(seconds: Double)
        /// Holds the request before processing it (a client killed meanwhile sends nothing more).
        case stall(seconds: Double)
        /// Answers 307 with this Location (a hijacked or misconfigured endpoint).
        case redirect(to: String)
    }

    struct Report {
        var xml: String
        var files: [String: (bytes: Data, md5: String, details: String?)] = [:]
        var fileOrder: [String] = []
        var finished = false
        var retracted = false
    }

    let login = "esp-user"
    let password = "esp-password-123"
    private let lock = NSLock()
    private var _reports: [Int: Report] = [:]
    private var _faults: [String: [Fault]] = [:]
    private var _calls: [String] = []
    private var nextReport = 7_855_760
    private var nextFile = 1
    private var task: Task<Void, Error>?
    private(set) var port = 0

    var reports: [Int: Report] { lock.withLock { _reports } }
    var calls: [String] { lock.withLock { _calls } }
    var finished: [(Int, Report)] { reports.filter { $0.value.finished }.sorted { $0.key < $1.key } }

    /// Faults for the next calls of `step`, in order; later calls behave.
    func fail(_ step: String, _ faults: Fault...) { lock.withLock { _faults[step, default: []] += faults } }

    private func nextFault(_ step: String) -> Fault? {
        lock.withLock {
            _calls.append(step)
            guard var queue = _faults[step], !queue.isEmpty else { return nil }
            let f = queue.removeFirst()
            _faults[step] = queue
            return f
        }
    }

    func start() async throws {
        let router = Router()
        for step in ["submit", "upload", "fileinfo", "finish", "retract"] {
            router.post(.init(stringLiteral: "ispws/" + step)) { [self] request, _ in try await self.handle(step, request) }
        }
        let ready = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "double"),
                              onServerRunning: { channel in ready.continuation.yield(channel.localAddress?.port ?? 0) })
        task = Task { try await app.run() }
        for await p in ready.stream { port = p; break }
    }

    func stop() { task?.cancel() }

    var endpoint: String { "http://127.0.0.1:\(port)/ispws" }

    func netrc(in dir: URL, password: String? = nil, mode: Int = 0o600) throws -> String {
        let path = dir.appendingPathComponent("netrc-\(UUID().uuidString.prefix(6))").path
        try Data("machine 127.0.0.1\n  login \(login)\n  password \(password ?? self.password)\n".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode_t(mode))
        return path
    }

    // MARK: the protocol

    private func answer(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/xml;charset=ISO-8859-1", .init("Request-ID")!: UUID().uuidString],
                 body: .init(byteBuffer: ByteBuffer(bytes: Array(body.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }))))
    }

    private func response(_ code: Int, _ description: String, report: Int? = nil, extra: String = "") -> String {
        "<reportResponse><responseCode>\(code)</responseCode><responseDescription>\(Escape.xml(description))</responseDescription>"
            + (report.map { "<reportId>\($0)</reportId>" } ?? "") + extra + "</reportResponse>"
    }

    private func handle(_ step: String, _ request: Request) async throws -> Response {
        let fault = nextFault(step)
        if case .stall(let s)? = fault { try await Task.sleep(nanoseconds: UInt64(s * 1e9)) }
        guard let auth = request.headers[.authorization], auth == "Basic " + Data("\(login):\(password)".utf8).base64EncodedString() else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Basic realm=\"ESP Web Services\""])
        }
        switch fault {
        case .status(let s)?: return Response(status: .init(code: s))
        case .code(let c, let d)?: return answer(response(c, d))
        case .redirect(let location)?: return Response(status: .temporaryRedirect, headers: [.location: location])
        default: break
        }
        let body = Data(buffer: try await request.body.collect(upTo: 64 << 20))
        let result = process(step, body, contentType: request.headers[.contentType] ?? "")
        if case .lostAnswer(let s)? = fault { try await Task.sleep(nanoseconds: UInt64(s * 1e9)) }
        return result
    }

    private func process(_ step: String, _ body: Data, contentType: String) -> Response {
        lock.withLock {
            switch step {
            case "submit":
                if let problem = SchemaCheck.validate(xml: body, xsdPath: nil) { return answer(response(4100, problem)) }
                nextReport += 1
                _reports[nextReport] = Report(xml: String(decoding: body, as: UTF8.self))
                return answer(response(0, "Success", report: nextReport))
            case "upload":
                guard let (fields, file) = ReportingDouble.multipart(body, contentType: contentType), let id = fields["id"].flatMap({ Int($0) }), let file else {
                    return answer(response(4000, "malformed upload"))
                }
                guard var r = _reports[id], !r.finished, !r.retracted else { return answer(response(5001, "report does not exist")) }
                let fileID = "f\(nextFile)"
                nextFile += 1
                let md5 = Hex.encode(Insecure.MD5.hash(data: file))
                r.files[fileID] = (file, md5, nil)
                r.fileOrder.append(fileID)
                _reports[id] = r
                return answer(response(0, "Success", report: id, extra: "<fileId>\(fileID)</fileId><hash>\(md5.uppercased())</hash>"))
            case "fileinfo":
                if let problem = SchemaCheck.validate(xml: body, xsdPath: nil) { return answer(response(4100, problem)) }
                let text = String(decoding: body, as: UTF8.self)
                guard let id = ReportingAPI.Response.parse(httpStatus: 200, body: Array(body), contentType: nil).reportID.flatMap({ Int($0) }),
                      let fileID = ReportingAPI.Response.elements("fileId", in: text).first, var r = _reports[id], r.files[fileID] != nil else {
                    return answer(response(5002, "file does not exist"))
                }
                r.files[fileID]?.details = text
                _reports[id] = r
                return answer(response(0, "Success", report: id))
            case "finish", "retract":
                let form = String(decoding: body, as: UTF8.self)
                guard let id = form.split(separator: "&").first(where: { $0.hasPrefix("id=") }).flatMap({ Int($0.dropFirst(3)) }), var r = _reports[id] else {
                    return answer(response(5001, "report does not exist"))
                }
                if step == "finish" {
                    if r.finished { return answer(response(5102, "report already finished")) }
                    if r.retracted { return answer(response(5101, "report already retracted")) }
                    r.finished = true
                    _reports[id] = r
                    return answer("<reportDoneResponse><responseCode>0</responseCode><reportId>\(id)</reportId><files>"
                                  + r.fileOrder.map { "<fileId>\($0)</fileId>" }.joined() + "</files></reportDoneResponse>")
                }
                if r.retracted { return answer(response(5101, "report already retracted")) }
                if r.finished { return answer(response(5102, "report already finished")) }
                r.retracted = true
                _reports[id] = r
                return answer(response(0, "Success", report: id))
            default:
                return Response(status: .notFound)
            }
        }
    }

    /// A multipart/form-data body's text fields and its `file` part.
    static func multipart(_ body: Data, contentType: String) -> ([String: String], Data?)? {
        guard let b = contentType.components(separatedBy: "boundary=").last, contentType.contains("boundary=") else { return nil }
        let delimiter = Data("--\(b)".utf8)
        var fields: [String: String] = [:]
        var file: Data?
        var rest = body[...]
        while let start = rest.range(of: delimiter) {
            rest = rest[start.upperBound...]
            if rest.starts(with: Data("--".utf8)) { break }
            guard let headerEnd = rest.range(of: Data("\r\n\r\n".utf8)), let next = rest.range(of: delimiter) else { break }
            let headers = String(decoding: rest[rest.startIndex..<headerEnd.lowerBound], as: UTF8.self)
            var content = rest[headerEnd.upperBound..<next.lowerBound]
            if content.suffix(2) == Data("\r\n".utf8) { content = content.dropLast(2) }
            if headers.contains("name=\"file\"") { file = Data(content) } else if let name = headers.components(separatedBy: "name=\"").last?.split(separator: "\"").first {
                fields[String(name)] = String(decoding: content, as: UTF8.self)
            }
            rest = rest[next.lowerBound...]
        }
        return (fields, file)
    }
}
