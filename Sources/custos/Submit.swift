import ArgumentParser
import CustosCore
import CustosAgencies
import CustosStore
import Foundation

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a case to NCMEC through the CyberTipline Reporting API (compliance); run it again to resume. Other agencies: the packet and the manual route.",
        discussion: """
            Exports the case's packet (as `export`), then submit → upload and fileinfo for each file (one CSV transcript per \
            conversation, and each attachment) → finish, recording every step in the custody log before the next one. A run \
            that stops anywhere resumes from the last recorded step; a finished submission is never sent again. \
            Credentials come from a netrc file (--netrc, $CUSTOS_NETRC, ~/.netrc) that only its owner may read. \
            Exit status: 0 finished (or already finished); 75 stopped on a transient failure (run again to resume); 65 NCMEC \
            rejected the report (the validator's message is shown and recorded); 77 credentials or authorisation.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The case, e.g. C-000001.") var caseID: String
    @Option(help: "The agency code.") var agency: String
    @Option(help: "test or production (NCMEC's two services; separate credentials).") var environment: ReportingAPI.Environment = .test
    @Option(help: "The Reporting API's base URL, overriding --environment (tests, private relays).") var endpoint: String?
    @Option(help: "The netrc file with the credentials for the endpoint's host.") var netrc: String?
    @Option(help: "Seconds to wait for each answer.") var timeout: Double = 60
    @Option(help: "Seconds before the first retry of a transient failure (doubling each time).") var backoff: Double = 1
    @Flag(help: "Retract the case's unfinished report instead.") var retract = false
    @Flag(help: "The case was reported already: send it again as a new report (a supplement naming the earlier one).") var supplement = false
    @Option(help: "Where packets and submission files are kept (default: packets/ beside the store).") var packets: String?
    @Option(help: "The signing key file (default: the one init wrote, or $CUSTOS_KEY).") var key: String?

    func run() throws {
        let store = try global.open(key: key)
        // Refused (and logged) before any packet, file or credential is touched.
        try store.requirePermission(.export)
        let folder = packets.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: store.path).deletingLastPathComponent().appendingPathComponent("packets")
        guard agency == "NCMEC" else {
            // No public API for the others (../shared/spec/cybertipline-api.md): the honest route is the packet.
            let out = folder.appendingPathComponent("\(caseID)-\(agency)-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let r = try ReferralExport.run(store: store, caseID: caseID, agency: agency, out: out, zip: true, templates: nil, xsd: nil,
                                           key: try store.signingKey(path: global.keyPath(key)), warn: printError)
            print("\(agency) has no public reporting API: send the packet through its portal or secure channel, then record its reference with")
            print("  custos referral receipt \(caseID) --agency \(agency) --reference REFERENCE")
            print("packet \(r.packetID): \(r.zip?.path ?? r.directory.path)")
            return
        }
        let base = (endpoint ?? environment.baseURL).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard let url = URL(string: base), let host = url.host, url.scheme == "https" || url.scheme == "http" else {
            throw CustosError.invalidInput(field: "--endpoint", reason: "\(quoted(base)) is not an http(s) URL")
        }
        let (login, password) = try Submitter.credentials(host: host, file: netrc)
        var options = Submitter.Options(endpoint: base, login: login, password: password, folder: folder, keyPath: global.keyPath(key))
        options.timeout = timeout
        options.backoff = backoff
        let submitter = Submitter(store: store, options: options, say: { print(terminalSafe($0)) })
        do {
            let record = try waitFor {
                retract ? try await submitter.retract(caseID: caseID, agency: agency) : try await submitter.submit(caseID: caseID, agency: agency, supplement: supplement)
            }
            if retract { print("submission \(record.id) retracted") }
        } catch let stopped as Submitter.Stopped {
            let code: Int32 = switch stopped.kind {
            case .retryLater: ExitStatus.tempfail
            case .fix: ExitStatus.invalidInput
            case .credentials: ExitStatus.forbidden
            }
            throw CLIError(stopped.message, code: code)
        }
    }
}

struct Submissions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Every submission to an agency's API: its state, report id, last error and next step.")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false

    func run() throws {
        let all = try global.open(.read).submissions()
        func next(_ s: SubmissionRecord) -> String {
            switch s.nextStep {
            case .done: s.state == .finished ? "none (finished)" : "none (retracted)"
            case .submit: "submit (open a report): run `custos submit \(s.caseID) --agency \(s.agency)`"
            case .upload(let i): "upload file \(i + 1) of \(s.files.count): run `custos submit \(s.caseID) --agency \(s.agency)`"
            case .fileinfo(let i): "describe file \(i + 1) of \(s.files.count): run `custos submit \(s.caseID) --agency \(s.agency)`"
            case .finish: "finish: run `custos submit \(s.caseID) --agency \(s.agency)`"
            }
        }
        if json {
            printJSON(.array(all.map { s in .object([
                ("id", .integer(s.id)), ("case", .string(s.caseID)), ("agency", .string(s.agency)), ("packet", .string(s.packetID)),
                ("endpoint", .string(s.endpoint)), ("report_id", s.reportID.map { .string($0) }), ("state", .string(s.state.rawValue)),
                ("last_error", s.lastError.map { .string($0) }), ("next_step", .string(next(s))), ("updated_at", .string(s.updatedAt)),
                ("files", .integer(Int64(s.files.count))), ("files_uploaded", .integer(Int64(s.files.filter { $0.fileID != nil }.count))),
            ]) }))
            return
        }
        for s in all {
            print("#\(s.id) \(s.caseID) \(s.agency) \(s.state.rawValue) report \(s.reportID ?? "-") files \(s.files.filter { $0.fileID != nil }.count)/\(s.files.count) updated \(s.updatedAt)")
            if let e = s.lastError { print("    last error: \(terminalSafe(e))") }
            print("    next: \(next(s))")
        }
    }
}

extension ReportingAPI.Environment: ExpressibleByArgument {}

/// Runs async work from a synchronous command and waits for it.
func waitFor<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    guard let result = box.result else { throw CustosError.storage(cause: "the task produced no result") }
    return try result.get()
}

private final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }
