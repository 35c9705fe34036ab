import CustosCore
import Foundation
import Testing

/// The Reporting API's answers as the spec records them, and the order of a submission's steps.
@Suite struct ReportingAPITests {
    typealias R = ReportingAPI.Response

    @Test func readsTheRecordedAnswers() {
        let submit = R.parse(httpStatus: 200, body: Array("<reportResponse><responseCode>0</responseCode><responseDescription>Success</responseDescription><reportId>7855763</reportId></reportResponse>".utf8),
                             contentType: "application/xml;charset=ISO-8859-1")
        #expect(submit.code == 0 && submit.reportID == "7855763" && submit.description == "Success")
        let done = R.parse(httpStatus: 200, body: Array("<reportDoneResponse><responseCode>0</responseCode><reportId>7855778</reportId><files/></reportDoneResponse>".utf8), contentType: nil)
        #expect(done.reportID == "7855778" && done.files.isEmpty && done.fileID == nil)
        let files = R.parse(httpStatus: 200, body: Array("<reportDoneResponse><responseCode>0</responseCode><reportId>9</reportId><files><fileId>a1</fileId><fileId>b2</fileId></files></reportDoneResponse>".utf8), contentType: nil)
        #expect(files.files == ["a1", "b2"])
        let upload = R.parse(httpStatus: 200, body: Array("<reportResponse><responseCode>0</responseCode><reportId>9</reportId><fileId>f-1</fileId><hash>0CC175B9C0F1B6A831C399E269772661</hash></reportResponse>".utf8), contentType: nil)
        #expect(upload.fileID == "f-1" && upload.hash == "0cc175b9c0f1b6a831c399e269772661")
        // ISO-8859-1 bytes decode by the declared charset; entities are decoded.
        let latin = R.parse(httpStatus: 200, body: Array("<reportResponse><responseCode>4100</responseCode><responseDescription>caf".utf8) + [0xE9] + Array(" &lt;x&gt; &amp;</responseDescription></reportResponse>".utf8),
                            contentType: "application/xml; charset=ISO-8859-1")
        #expect(latin.description == "café <x> &")
        #expect(R.parse(httpStatus: 401, body: [], contentType: nil).code == nil)
    }

    @Test func eachAnswerHasAVerdict() {
        func v(_ step: ReportingAPI.Step, _ status: Int, _ code: Int?, report: String? = "1", file: String? = "f") -> ReportingAPI.Verdict {
            ReportingAPI.verdict(step, R(httpStatus: status, code: code, description: "d", reportID: report, fileID: file))
        }
        #expect(v(.submit, 200, 0) == .ok)
        #expect(v(.submit, 200, 0, report: nil) != .ok)
        #expect(v(.finish, 200, 5102) == .alreadyDone)
        #expect(v(.retract, 200, 5101) == .alreadyDone)
        #expect(v(.upload, 200, 5102).isStop)
        if case .retry = v(.upload, 503, nil) {} else { Issue.record("503 is retried") }
        if case .retry = v(.fileinfo, 200, 1000) {} else { Issue.record("1000 is retried") }
        if case .fix(let m) = v(.submit, 200, 4100) { #expect(m.contains("4100") && m.contains(": d")) } else { Issue.record("4100 is fix-and-retry") }
        if case .expired = v(.upload, 200, 5001) {} else { Issue.record("5001: the report is gone") }
        #expect(v(.submit, 401, nil).isStop)
        #expect(v(.submit, 200, 3100).isStop)
        #expect(v(.finish, 200, 7777).isStop)
    }

    @Test func stepsFollowWhatWasRecorded() {
        typealias F = ReportingAPI.FileProgress
        #expect(ReportingAPI.next(reportID: nil, files: [F()], finished: false) == .submit)
        #expect(ReportingAPI.next(reportID: "1", files: [F(), F()], finished: false) == .upload(file: 0))
        #expect(ReportingAPI.next(reportID: "1", files: [F(fileID: "a"), F()], finished: false) == .fileinfo(file: 0))
        #expect(ReportingAPI.next(reportID: "1", files: [F(fileID: "a", detailsSent: true), F()], finished: false) == .upload(file: 1))
        #expect(ReportingAPI.next(reportID: "1", files: [F(fileID: "a", detailsSent: true)], finished: false) == .finish)
        #expect(ReportingAPI.next(reportID: "1", files: [], finished: false) == .finish)
        #expect(ReportingAPI.next(reportID: "1", files: [], finished: true) == .done)
    }

    @Test func netrcFindsTheHostsCredentials() {
        let text = """
            machine exttest.cybertip.org
              login esp-test password s3cret
            macdef init
            cd /pub

            machine other.example login a password b
            default login anon password anon@
            """
        #expect(Netrc.credentials(host: "exttest.cybertip.org", in: text)! == ("esp-test", "s3cret"))
        #expect(Netrc.credentials(host: "OTHER.example", in: text)! == ("a", "b"))
        #expect(Netrc.credentials(host: "report.cybertip.org", in: text)! == ("anon", "anon@"))
        #expect(Netrc.credentials(host: "x", in: "machine x login only") == nil)
    }
}

extension ReportingAPI.Verdict {
    var isStop: Bool { if case .stop = self { true } else { false } }
}
