import Crypto
import CustosCore
import CustosTestSupport
@testable import CustosStore
import Foundation
import Testing

/// Retention: erased evidence leaves the file and its WAL, a hold is never broken, the log
/// still verifies, and the transparency report counts it from the log alone.
@Suite struct Retention {
    let day: Int64 = 86_400_000

    /// Flag a confirmed (and exported to NCMEC, a 365-day hold), flag b dismissed, flag c open.
    func workflow() throws -> Fixture {
        let f = try team()
        f.now = Int64(Date().timeIntervalSince1970 * 1000)
        try f.ingest([flagLine(id: "a", text: "secret-alpha"), flagLine(id: "b", text: "secret-bravo", adult: "u-5"),
                      flagLine(id: "c", text: "secret-charlie", adult: "u-6")].joined(separator: "\n") + "\n")
        for n in ["alice", "bob"] {
            _ = try f.store(n).claim("a")
            _ = try f.store(n).decide("a", outcome: .confirm, reason: "grooming", category: .grooming, urgent: nil, annotations: [])
        }
        _ = try f.store("alice").claim("b")
        _ = try f.store("alice").decide("b", outcome: .dismiss, reason: "benign", category: nil, urgent: nil, annotations: [])
        let s = try f.store("cora")
        let snapshot = try s.prepareReferral(caseName: "C-000001", agencyCode: "NCMEC", key: try s.signingKey())
        try s.recordReferral(snapshot, tagManifestSHA256: String(repeating: "0", count: 64))
        return f
    }

    @Test func aDismissedFlagIsErasedWhileAHeldOneStaysUntilItsHoldsEnd() throws {
        let f = try workflow()
        // Within the 30 days: nothing is due.
        f.now += 10 * day
        #expect(try f.store("cora").retention(dryRun: true).isEmpty)
        // After them: the dismissed flag only; the referred one is held, the open one is in review.
        f.now += 25 * day
        let due = try f.store("cora").retention(dryRun: true)
        #expect(due.map(\.flags) == [["det:b"]])
        #expect(try f.fileBytes().firstRange(of: Data("secret-bravo".utf8)) != nil)
        let erased = try f.store("cora").retention(dryRun: false)
        #expect(erased.map(\.flags) == [["det:b"]])
        // Gone from the database file and its WAL; the others are not.
        let bytes = try f.fileBytes()
        #expect(bytes.firstRange(of: Data("secret-bravo".utf8)) == nil)
        #expect(bytes.firstRange(of: Data("secret-alpha".utf8)) != nil)
        #expect(try f.store().verify().ok)
        #expect(errorKind { _ = try f.store("alice").readFlag("b", purpose: "test") } == .invalidState)
        #expect(try f.sqlite("SELECT count(*) FROM custody WHERE action = 'evidence.purge'").1 == "1\n")
        // An extended hold defers the referred flag past its year; then it goes too.
        f.now += 340 * day
        try f.store("cora").extendHold(caseName: "C-000001", until: f.now + 100 * day, reason: "LE request 42")
        f.now += 30 * day  // the referral's own hold has ended, the extension has not
        #expect(try f.store("cora").retention(dryRun: true).isEmpty)
        f.now += 80 * day
        #expect(try f.store("cora").retention(dryRun: false).map(\.flags) == [["det:a"]])
        #expect(try f.fileBytes().firstRange(of: Data("secret-alpha".utf8)) == nil)
        #expect(try f.store().verify().ok)
        // The case still shows its history; its export is refused.
        let detail = try f.store("cora").caseDetail("C-000001")
        #expect(detail.flags.isEmpty && detail.erased.count == 1 && detail.erased[0].contains("erased on"))
        #expect(detail.timeline.contains { $0.subjectID == "det:a" && $0.action == CustodyAction.evidencePurge.rawValue })
        #expect(detail.decisions.count == 2)
        #expect(errorKind { _ = try f.store("cora").prepareReferral(caseName: "C-000001", agencyCode: "NCMEC", key: try f.store().signingKey()) } == .invalidState)
        // The open flag was never due.
        #expect(try f.fileBytes().firstRange(of: Data("secret-charlie".utf8)) != nil)
    }

    @Test func onlyComplianceOrAdminErasesAndTheTriggersAllowNothingElse() throws {
        let f = try workflow()
        f.now += 40 * day
        #expect(errorKind { _ = try f.store("alice").retention(dryRun: false) } == .forbidden)
        // The evidence triggers still refuse an edit outside a purge.
        let (status, out) = try f.sqlite("UPDATE evidence SET document = '' WHERE conversation_id = 1")
        #expect(status != 0 && out.contains("refused"), "\(out)")
        #expect(try f.sqlite("DELETE FROM blobs").0 == 0)  // nothing to delete: no attachments here
    }

    /// The figures, recomputed from a log written by hand.
    @Test func theTransparencyReportIsAFoldOfTheLog() throws {
        let base: Int64 = 1_795_000_000_000
        func entry(_ seq: Int64, _ minutes: Int64, _ action: CustodyAction, _ subject: String, _ details: String) -> CustodyEntry {
            CustodyEntry(seq: seq, at: Timestamp.utcString(millis: base + minutes * 60_000), actor: "x", osUser: "x", action: action.rawValue,
                         subjectType: action.subjectType.rawValue, subjectID: subject, details: details, evidenceHash: nil)
        }
        let log = [
            entry(0, 0, .flagIngest, "d:1", "{}"), entry(1, 1, .flagIngest, "d:2", "{}"), entry(2, 2, .flagIngest, "d:3", "{}"),
            entry(3, 10, .flagDecide, "d:1", #"{"final":true,"outcome":"dismiss"}"#),
            entry(4, 20, .flagDecide, "d:2", #"{"final":false,"outcome":"escalate"}"#),
            entry(5, 61, .flagDecide, "d:2", #"{"final":true,"outcome":"confirm"}"#),
            entry(6, 70, .caseExport, "C-000001", #"{"agency":"NCMEC","hold_until":"2030-01-01T00:00:00.000Z","packet":"C-000001-NCMEC-1"}"#),
            entry(7, 80, .referralReceipt, "C-000001", #"{"agency":"NCMEC","reference":"T1"}"#),
            entry(8, 90, .evidencePurge, "d:1", #"{"reason":"r"}"#),
            entry(9, 60 * 24 * 40, .flagIngest, "d:4", "{}"),  // after the period
        ]
        let r = TransparencyReport.make(log, fromMillis: base, toMillis: base + 30 * day)
        #expect(r.flagsReceived == 3 && r.finalDecisions == ["dismiss": 1, "confirm": 1] && r.escalations == 1)
        #expect(r.medianSecondsToDecision == Int64(2100))  // the middle of 10 min and 60 min
        #expect(r.referralsByAgency == ["NCMEC": 1] && r.receiptsByAgency == ["NCMEC": 1] && r.activeHolds == 1 && r.erasures == 1)
        let later = TransparencyReport.make(log, fromMillis: base + 31 * day, toMillis: base + 60 * day)
        #expect(later.flagsReceived == 1 && later.finalDecisions.isEmpty && later.erasures == 0)
    }
}
