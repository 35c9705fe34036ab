import CustosCore
import CustosPackets
import CustosAgencies
@testable import CustosServer
import CustosStore
import Foundation
import Hummingbird
import HummingbirdOTP
import HummingbirdTesting
import NIOCore
import Testing

/// `custos submit` against the Reporting API double: every fault ends, after as many runs as
/// it takes, in exactly one finished report with every file described, matching the store.
final class SubmitFixture: @unchecked Sendable {
    let dir: URL
    let db: String
    let double = ReportingDouble()

    static var binary: URL {
        if let b = ProcessInfo.processInfo.environment["CUSTOS_BIN"] { return URL(fileURLWithPath: b) }
        return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("custos")
    }

    init() async throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-submit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        db = dir.appendingPathComponent("demo.db").path
        // The demo: a case C-000001 confirmed, routed to NCMEC, exported once; cora is compliance.
        let p = Process()
        p.executableURL = SubmitFixture.binary
        p.arguments = ["demo", "--dir", dir.path]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        try await double.start()
    }

    deinit {
        double.stop()
        if let r = try? Store.open(path: db, actor: Actor(name: "cora", osUser: "t"), access: .verify).verify(), !r.ok {
            Issue.record("the store does not verify after submitting: \(r.problems)")
        }
        try? FileManager.default.removeItem(at: dir)
    }

    func store() throws -> Store { try Store.open(path: db, actor: Actor(name: "cora", osUser: "t")) }

    func submitter(attempts: Int = 4, password: String? = nil) throws -> Submitter {
        var o = Submitter.Options(endpoint: double.endpoint, login: double.login, password: password ?? double.password,
                                  folder: dir.appendingPathComponent("packets"))
        o.attempts = attempts
        o.backoff = 0.05
        o.timeout = 3  // a lost answer (5 s) times out; an answer slowed by the other suites running beside this one does not
        return Submitter(store: try store(), options: o, say: { _ in })
    }

    /// Runs submit until it finishes (at most `runs` times); the runs that stopped, by kind.
    @discardableResult
    func submitUntilDone(runs: Int = 5, attempts: Int = 4) async throws -> [Submitter.Stopped.Kind] {
        var stops: [Submitter.Stopped.Kind] = []
        for _ in 0..<runs {
            do {
                _ = try await submitter(attempts: attempts).submit(caseID: "C-000001", agency: "NCMEC")
                return stops
            } catch let s as Submitter.Stopped {
                stops.append(s.kind)
            }
        }
        Issue.record("submit did not finish in \(runs) runs")
        return stops
    }

    /// Exactly one finished report at the double, every file uploaded with its details, and
    /// the store's record naming the same report and files; the report id is the receipt.
    func expectOneFinishedReport() throws {
        let finished = double.finished
        #expect(finished.count == 1, "finished reports at the double: \(finished.map(\.0))")
        guard let (id, report) = finished.first else { return }
        let record = try #require(try store().latestSubmission(caseName: "C-000001", agency: "NCMEC"))
        #expect(record.state == .finished && record.reportID == String(id))
        #expect(record.files.count >= 1 && record.files.count == report.files.count)
        #expect(Set(record.files.compactMap(\.fileID)) == Set(report.files.keys))
        #expect(report.files.values.allSatisfy { $0.details != nil })
        for f in record.files { #expect(report.files[f.fileID ?? ""]?.md5 == f.md5) }
        #expect(try store().receipts(caseName: "C-000001").contains { $0.agency == "NCMEC" && $0.reference == String(id) })
        #expect(report.xml.contains("xsi:noNamespaceSchemaLocation=\"https://report.cybertip.org/ispws/xsd\""))
    }
}

@Suite(.serialized) struct SubmitToNCMEC {
    /// Issue 26, item 4: each file's `fileViewedByEsp` is what the custody log says: true for an
    /// attachment a reviewer revealed unblurred, false for one only ever shown blurred.
    @Test(arguments: [true, false])
    func fileViewedByEspIsWhatTheLogSays(revealed: Bool) async throws {
        let f = try await SubmitFixture()
        // The demo's C-000002 holds the flag whose conversation carries the sticker attachment.
        let detail = try f.store().caseDetail("C-000002")
        let (key, sha) = try #require(detail.flags.flatMap { fl in fl.conversation.messages.flatMap(\.attachments).map { (fl.key, $0.sha256) } }.first)
        let alice = try Store.open(path: f.db, actor: Actor(name: "alice", osUser: "t"))
        _ = try alice.readAttachment(flag: key, sha256: sha, purpose: AttachmentViews.blurred)
        if revealed { _ = try alice.readAttachment(flag: key, sha256: sha, purpose: AttachmentViews.revealed) }
        let record = try await f.submitter().submit(caseID: "C-000002", agency: "NCMEC")
        #expect(record.state == .finished)
        let report = try #require(f.double.finished.first?.1)
        #expect(record.files.contains { $0.sha256 == sha })
        for file in record.files {
            let details = try #require(report.files[file.fileID ?? ""]?.details)
            let expected = file.name.hasPrefix("transcript-") || (revealed && file.sha256 == sha)
            #expect(details.contains("<fileViewedByEsp>\(expected)</fileViewedByEsp>"), "\(file.name): \(details)")
        }
    }

    /// Issue 26, item 3: the demo's C-000003 holds the flag whose photo matched demo-known; its
    /// file details (schema-valid, the double checks) carry the photo's MD5 as originalFileHash
    /// and the match, and the transcript carries neither.
    @Test func eachAttachmentCarriesItsMD5AndItsMatch() async throws {
        let f = try await SubmitFixture()
        let record = try await f.submitter().submit(caseID: "C-000003", agency: "NCMEC")
        #expect(record.state == .finished)
        let report = try #require(f.double.finished.first?.1)
        let photo = try #require(record.files.first { !$0.name.hasPrefix("transcript-") })
        let details = try #require(report.files[photo.fileID ?? ""]?.details)
        #expect(details.contains("<originalFileHash hashType=\"MD5\">\(photo.md5)</originalFileHash>"), "\(details)")
        #expect(details.contains("<additionalInfo>Known material: matches demo-known (pdq distance 16), listed hash ac520593"), "\(details)")
        for t in record.files where t.name.hasPrefix("transcript-") {
            #expect(report.files[t.fileID ?? ""]?.details?.contains("originalFileHash") == false)
        }
    }

    /// Acceptance: the first upload answers 503, and finish is processed but its answer lost;
    /// one finished report, found again as 5102 on the retried finish.
    @Test func a503AndALostFinishAnswerEndInOneFinishedReport() async throws {
        let f = try await SubmitFixture()
        f.double.fail("upload", .status(503))
        f.double.fail("finish", .lostAnswer(seconds: 5))
        try await f.submitUntilDone()
        try f.expectOneFinishedReport()
        #expect(f.double.calls.filter { $0 == "submit" }.count == 1)
        #expect(f.double.calls.filter { $0 == "finish" }.count == 2)
        // A finished submission is not sent again.
        let before = f.double.calls.count
        _ = try await f.submitter().submit(caseID: "C-000001", agency: "NCMEC")
        #expect(f.double.calls.count == before)
        let steps = try f.store().custodyEntries(subjects: ["C-000001"]).filter { $0.action.hasPrefix("submission.") }
        #expect(steps.first?.action == CustodyAction.submissionBegin.rawValue)
        #expect(steps.contains { $0.details.contains("\"md5_match\":true") })
    }

    /// Acceptance: the answer to submit is lost; the next run opens a new report and finishes
    /// it; the unanswered one stays unfinished (NCMEC lets it expire).
    @Test func aLostSubmitAnswerEndsInOneFinishedReport() async throws {
        let f = try await SubmitFixture()
        f.double.fail("submit", .lostAnswer(seconds: 5))
        let stops = try await f.submitUntilDone(attempts: 1)
        #expect(stops == [.retryLater])
        try f.expectOneFinishedReport()
        #expect(f.double.reports.count == 2)
        #expect(f.double.reports.values.filter { !$0.finished && !$0.retracted }.count == 1)
        // The second run recorded why it opened a new report.
        #expect(try f.store().custodyEntries(subjects: ["C-000001"]).contains { $0.details.contains("\"step\":\"submit-unknown\"") })
    }

    /// A run that stops between uploads resumes from the next file with the same report.
    @Test func aRunStoppedBetweenUploadsResumes() async throws {
        let f = try await SubmitFixture()
        f.double.fail("upload", .status(200), .status(502))  // the first upload is fine; the second fails
        // .status(200) with no body is not a reportResponse: retried like a transient failure.
        let stops = try await f.submitUntilDone(attempts: 1)
        #expect(stops.count == 2 && stops.allSatisfy { $0 == .retryLater })
        try f.expectOneFinishedReport()
        #expect(f.double.reports.count == 1)
        let record = try #require(try f.store().latestSubmission(caseName: "C-000001", agency: "NCMEC"))
        #expect(record.lastError == nil)
    }

    /// A rejected report is not retried: the validator's message is the recorded last error,
    /// and nothing is finished; a wrong password stops before anything is opened.
    @Test func validationAndCredentialsStop() async throws {
        let f = try await SubmitFixture()
        f.double.fail("submit", .code(4100, "cvc-complex-type.2.4.a: One of '{incidentSummary}' is expected."))
        do {
            _ = try await f.submitter().submit(caseID: "C-000001", agency: "NCMEC")
            Issue.record("a 4100 answer should stop the run")
        } catch let s as Submitter.Stopped {
            #expect(s.kind == .fix && s.message.contains("cvc-complex-type.2.4.a"))
        }
        let record = try #require(try f.store().latestSubmission(caseName: "C-000001", agency: "NCMEC"))
        #expect(record.lastError?.contains("cvc-complex-type.2.4.a") == true)
        do {
            _ = try await f.submitter(password: "wrong-password-000").submit(caseID: "C-000001", agency: "NCMEC")
            Issue.record("a wrong password should stop the run")
        } catch let s as Submitter.Stopped {
            #expect(s.kind == .credentials && s.message.contains("authentication"))
        }
        #expect(f.double.finished.isEmpty)
        // No password anywhere in the store file.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: f.db)) + ((try? Data(contentsOf: URL(fileURLWithPath: f.db + "-wal"))) ?? Data())
        #expect(bytes.range(of: Data(f.double.password.utf8)) == nil && bytes.range(of: Data("wrong-password-000".utf8)) == nil)
        // Then the right credentials finish it.
        try await f.submitUntilDone()
        try f.expectOneFinishedReport()
    }

    /// An unfinished report can be retracted; the next submit starts a new one.
    @Test func retractThenSubmitAgain() async throws {
        let f = try await SubmitFixture()
        f.double.fail("upload", .status(503))
        _ = try? await f.submitter(attempts: 1).submit(caseID: "C-000001", agency: "NCMEC")
        let retracted = try await f.submitter().retract(caseID: "C-000001", agency: "NCMEC")
        #expect(retracted.state == .retracted)
        #expect(f.double.reports.values.filter(\.retracted).count == 1)
        try await f.submitUntilDone()
        try f.expectOneFinishedReport()
    }

    /// `kill -9` of `custos submit` while an upload is in flight, then a second run: one
    /// finished report. And a netrc others can read is refused before any call.
    @Test func killedMidUploadThenResumed() async throws {
        let f = try await SubmitFixture()
        let netrc = try f.double.netrc(in: f.dir)
        let open = try f.double.netrc(in: f.dir, mode: 0o644)
        func custos(_ args: [String]) throws -> Process {
            let p = Process()
            p.executableURL = SubmitFixture.binary
            p.arguments = args + ["--db", f.db, "--actor", "cora"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        let refused = try custos(["submit", "C-000001", "--agency", "NCMEC", "--endpoint", f.double.endpoint, "--netrc", open])
        refused.waitUntilExit()
        #expect(refused.terminationStatus == 65)
        #expect(f.double.calls.isEmpty)
        f.double.fail("upload", .status(200), .stall(seconds: 30))
        let first = try custos(["submit", "C-000001", "--agency", "NCMEC", "--endpoint", f.double.endpoint, "--netrc", netrc, "--backoff", "0.05"])
        for _ in 0..<200 where f.double.calls.filter({ $0 == "upload" }).count < 2 { try await Task.sleep(nanoseconds: 50_000_000) }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(f.double.finished.isEmpty)
        let second = try custos(["submit", "C-000001", "--agency", "NCMEC", "--endpoint", f.double.endpoint, "--netrc", netrc, "--backoff", "0.05"])
        second.waitUntilExit()
        #expect(second.terminationStatus == 0)
        try f.expectOneFinishedReport()
        // The killed run had sent an upload whose answer it never recorded: that report is
        // retracted (NCMEC might hold the file under an id nobody knows) and a clean one finished.
        #expect(f.double.reports.count == 2 && f.double.reports.values.filter(\.retracted).count == 1)
    }
}

extension SubmitToNCMEC {
    /// A later report about a person already reported (here the case's supplement, after a new
    /// flag joined it) names the earlier report in `priorCTReports`, where the double's schema
    /// check accepts it.
    @Test func aLaterReportNamesTheEarlierOne() async throws {
        let f = try await SubmitFixture()
        try await f.submitUntilDone()
        let first = try #require(f.double.finished.first?.0)
        let admin = try Store.open(path: f.db, actor: Actor(name: "cora", osUser: "t"))
        let person = try #require(try admin.caseDetail("C-000001").reported.first)
        let record = #"{"flag_id":"later-1","source":{"detector":"artemis"},"score":0.9,"detected_at":"2026-11-24T10:00:00Z","service":{"platform":"\#(person.platform)"},"conversation":{"id":"c-later","participants":[{"user_id":"\#(person.participant.userID)","role_hint":"suspected_adult"},{"user_id":"kid-9","role_hint":"suspected_minor","stated_age":12}],"messages":[{"id":"m1","sender":"\#(person.participant.userID)","sent_at":"2026-11-24T09:00:00Z","text":"don't tell anyone we talk"}]}}"#
        let file = f.dir.appendingPathComponent("later.jsonl")
        try Data((record + "\n").utf8).write(to: file)
        let lee = try Store.open(path: f.db, actor: Actor(name: "lee", osUser: "t"))
        let ingest = Ingestor(store: lee)
        try ingest.ingestJSONLines(try #require(FileHandle(forReadingAtPath: file.path)), name: "later", baseDirectory: nil)
        #expect(ingest.summary.ingested == 1)
        for who in ["alice", "bob"] {
            let s = try Store.open(path: f.db, actor: Actor(name: who, osUser: "t"))
            _ = try s.claim("artemis:later-1")
            _ = try s.decide("artemis:later-1", outcome: .confirm, reason: "secrecy with a 12-year-old", category: .grooming, urgent: nil, annotations: [])
        }
        let later = try #require(try admin.cases().first { $0.reportedAccounts.contains(person.participant.userID) && $0.flagCount > 1 })
        // Without --supplement a reported case is not sent again; with it, a new report.
        let calls = f.double.calls.count
        _ = try await f.submitter().submit(caseID: later.caseID, agency: "NCMEC")
        #expect(f.double.calls.count == calls)
        _ = try await f.submitter().submit(caseID: later.caseID, agency: "NCMEC", supplement: true)
        let second = try #require(f.double.finished.last)
        #expect(second.0 != first)
        #expect(second.1.xml.contains("<priorCTReports>\(first)</priorCTReports>"))
    }
}

extension SubmitToNCMEC {
    /// The console shows a failed submission with its error and offers Retry, which resumes it.
    @Test func theConsoleShowsAFailedSubmissionAndRetries() async throws {
        let f = try await SubmitFixture()
        f.double.fail("upload", .status(503))
        _ = try? await f.submitter(attempts: 1).submit(caseID: "C-000001", agency: "NCMEC")
        let store = try Store.open(path: f.db, actor: Actor(name: "cora", osUser: "t"))
        let secret = try #require(try store.credential(user: "cora")?.totpSecret)
        let server = CustosServer(store: store, configuration: .init(packets: f.dir.appendingPathComponent("packets"),
                                                                     reportingEndpoint: f.double.endpoint, netrc: try f.double.netrc(in: f.dir)))
        let app = Application(router: try server.router())
        try await app.test(.router) { client in
            let code = String(format: "%06d", TOTP(secret: secret).compute(date: Date()))
            let login = try await client.execute(uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                                 body: ByteBuffer(string: "username=cora&password=demo-cora-password&otp=\(code)"))
            #expect(login.status == .seeOther)
            let cookie = String(try #require(login.headers[.setCookie]).split(separator: ";")[0])
            let page = String(buffer: try await client.execute(uri: "/cases/C-000001", method: .get, headers: [.cookie: cookie]).body)
            #expect(page.contains("HTTP 503") && page.contains(">Retry</button>"))
            let csrf = try #require(page.components(separatedBy: "name=\"csrf\" value=\"").dropFirst().first?.split(separator: "\"").first)
            let retried = try await client.execute(uri: "/cases/C-000001/submit", method: .post,
                                                   headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: "csrf=\(csrf)"))
            #expect(String(buffer: retried.body).contains("finished: NCMEC report"))
        }
        try f.expectOneFinishedReport()
        #expect(try store.custodyEntries(subjects: ["C-000001"]).contains { $0.action == CustodyAction.submissionStep.rawValue && $0.auth == "session:password+totp" })
    }
}

extension SubmitToNCMEC {
    /// An upload processed but unanswered leaves a file NCMEC holds under an id we never
    /// learnt: the report is retracted and a clean one finished, every file described.
    @Test func aLostUploadAnswerRetractsAndStartsClean() async throws {
        let f = try await SubmitFixture()
        f.double.fail("upload", .lostAnswer(seconds: 5))
        try await f.submitUntilDone()
        try f.expectOneFinishedReport()
        #expect(f.double.reports.count == 2)
        #expect(f.double.reports.values.filter(\.retracted).count == 1)
    }
}

/// Issue 23, findings 1 and 13: one report per case, and a report goes nowhere but the endpoint.
extension SubmitToNCMEC {
    /// Two submits of one case at the same moment (two terminals, a double-clicked button): one
    /// runs, the other is refused before it exports or sends anything, and says who holds it.
    @Test func twoSubmitsAtOnceFinishOneReport() async throws {
        let f = try await SubmitFixture()
        f.double.fail("submit", .stall(seconds: 0.6))  // the first run is mid-flight when the second starts (within its 1 s timeout)
        let a = try f.submitter(), b = try f.submitter()
        async let first: Result<SubmissionRecord, Error> = { do { return .success(try await a.submit(caseID: "C-000001", agency: "NCMEC")) } catch { return .failure(error) } }()
        try await Task.sleep(nanoseconds: 200_000_000)
        let second: Result<SubmissionRecord, Error>
        do { second = .success(try await b.submit(caseID: "C-000001", agency: "NCMEC")) } catch { second = .failure(error) }
        let winner = await first
        #expect((try? winner.get())?.state == .finished)
        guard case .failure(let e as CustosError) = second else { Issue.record("the second submit was not refused: \(second)"); return }
        #expect(e.kind == .conflict && e.description.contains("is being submitted"), "\(e)")
        #expect(f.double.calls.filter { $0 == "submit" }.count == 1)
        try f.expectOneFinishedReport()
        // One packet exported for it, and the refusal is in the log.
        let entries = try f.store().custodyEntries()
        #expect(entries.filter { $0.action == CustodyAction.caseExport.rawValue && $0.subjectID == "C-000001" }.count == 2, "the demo's export and the submission's")
        #expect(entries.contains { $0.action == CustodyAction.refused.rawValue && $0.details.contains("is being submitted") })
    }

    /// A 307 from the endpoint is an answer, not a new address: nothing goes to the Location.
    @Test func aRedirectIsNotFollowed() async throws {
        let f = try await SubmitFixture()
        let elsewhere = ReportingDouble()
        try await elsewhere.start()
        defer { elsewhere.stop() }
        f.double.fail("submit", .redirect(to: elsewhere.endpoint.replacingOccurrences(of: "https:", with: "http:") + "/submit"))
        do {
            _ = try await f.submitter(attempts: 1).submit(caseID: "C-000001", agency: "NCMEC")
            Issue.record("submit went on after a redirect")
        } catch let stopped as Submitter.Stopped {
            #expect(stopped.kind == .fix && stopped.message.contains("redirect"), "\(stopped.message)")
        }
        #expect(elsewhere.calls.isEmpty, "\(elsewhere.calls)")
    }
}
