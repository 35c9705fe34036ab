import CustosCore
@testable import CustosStore
import Foundation
import Testing

/// A store with alice and bob (moderators), lee (lead) and cora (compliance).
func team() throws -> Fixture {
    let f = try Fixture()
    let admin = try f.store()
    for (n, r) in [("alice", Role.moderator), ("bob", .moderator), ("lee", .lead), ("cora", .compliance)] {
        try admin.addUser(name: n, role: r)
    }
    return f
}

func state(_ f: Fixture, _ flag: String) throws -> String {
    try f.sqlite("SELECT s.status FROM flag_state s JOIN flags f ON f.id = s.flag WHERE f.flag_id = '\(flag)'").1
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite struct Roles {
    @Test func unknownAndDisabledActorsAreRefused() throws {
        let f = try team()
        try f.ingest(flagLine(id: "a") + "\n")
        do { _ = try f.store("mallory"); Issue.record("expected refusal") } catch { #expect("\(error)".contains("unknown user")) }
        try f.store().disableUser(name: "bob")
        do { _ = try f.store("bob").claim(nil); Issue.record("expected refusal") } catch { #expect("\(error)".contains("disabled")) }
    }

    @Test func moderatorsCannotAddUsersOrManageAgenciesAndNothingChanges() throws {
        let f = try team()
        let before = try f.store().custodySize()
        do { try f.store("alice").addUser(name: "eve", role: .admin); Issue.record("expected refusal") } catch {
            #expect("\(error)".contains("alice is a moderator"))
        }
        #expect(errorKind { try f.store("alice").setAgency(code: "NCMEC", name: nil, jurisdictions: nil, profile: nil, route: .never, retentionDays: nil) } == .forbidden)
        #expect(errorKind { try f.store("alice").setSetting("second-review", "off") } == .forbidden)
        // Each refusal is one `refused` entry naming who, what and why; nothing else changed.
        let added = try f.store().custodyEntries().filter { $0.seq >= before }
        #expect(added.map(\.action) == ["refused", "refused", "refused"])
        #expect(added.map { $0.subjectID } == ["alice", "alice", "alice"])
        #expect(added[0].details.contains("addUser") && added[0].details.contains("needs the admin role"))
        #expect(try f.store().users().count == 5)
        #expect(try f.store().settings().contains { $0 == ("second-review", "required") })
    }
}

@Suite struct QueueAndClaims {
    @Test func queueOrderIsUrgentThenScoreThenOldest() throws {
        let f = try team()
        try f.ingest([
            flagLine(id: "low", score: 0.2, detected: "2026-11-20T10:00:00Z"),
            flagLine(id: "unscored-old", score: nil, detected: "2026-11-01T10:00:00Z"),
            flagLine(id: "high-new", score: 0.9, detected: "2026-11-21T10:00:00Z"),
            flagLine(id: "high-old", score: 0.9, detected: "2026-11-19T10:00:00Z"),
            flagLine(id: "unscored-new", score: nil, detected: "2026-11-22T10:00:00Z"),
        ].joined(separator: "\n") + "\n")
        #expect(try f.store("alice").queue(limit: 10).map(\.key) == ["det:high-old", "det:high-new", "det:low", "det:unscored-old", "det:unscored-new"])
        // An urgent escalation goes ahead of everything in the lead queue; once back, it leads the moderator queue.
        _ = try f.store("alice").claim("low")
        _ = try f.store("alice").decide("low", outcome: .escalate, reason: "threat to meet", category: nil, urgent: "meeting tonight", annotations: [])
        try f.store("lee").reopenEscalationForTest("low")
        #expect(try f.store("alice").queue(limit: 1).map(\.key) == ["det:low"])
    }

    @Test func claimsAreExclusiveAndLeasesExpire() throws {
        let f = try team()
        try f.ingest(flagLine(id: "a") + "\n" + flagLine(id: "b", score: 0.1) + "\n")
        let c = try f.store("alice").claim(nil)
        #expect(c.key == "det:a")
        #expect(try f.store("bob").claim(nil).key == "det:b")
        do { _ = try f.store("bob").claim("a"); Issue.record("expected refusal") } catch { #expect("\(error)".contains("claimed by alice")) }
        do { _ = try f.store("bob").decide("a", outcome: .dismiss, reason: "x", category: nil, urgent: nil, annotations: []); Issue.record("expected refusal") } catch {
            #expect("\(error)".contains("claimed by alice"))
        }
        #expect(errorKind { try f.store("bob").release("a") } == .conflict)
        #expect(try f.store("alice").queue(limit: 5).isEmpty)
        // 16 minutes later the 15-minute lease has lapsed: the flag is back in the queue.
        f.now += 16 * 60_000
        #expect(try f.store("bob").queue(limit: 5).map(\.key).contains("det:a"))
        #expect(try f.store("bob").claim("a").holder == "bob")
        #expect(errorKind { try f.store("alice").decide("a", outcome: .dismiss, reason: "late", category: nil, urgent: nil, annotations: []) } == .conflict)
        try f.store("lee").release("a")
        let actions = try f.store().custodyEntries(subjects: ["det:a"]).map(\.action)
        #expect(actions == ["flag.ingest", "flag.claim", "flag.claim", "flag.release"])
    }
}

@Suite struct Reassignment {
    @Test func aLeadHandsAClaimedFlagToAnotherReviewer() throws {
        let f = try team()
        try f.ingest(flagLine(id: "a") + "\n")
        _ = try f.store("alice").claim("a")
        #expect(errorKind { try f.store("alice").claim("a", for: "bob") } == .forbidden)
        let c = try f.store("lee").claim("a", for: "bob")
        #expect(c.holder == "bob")
        #expect(errorKind { try f.store("alice").decide("a", outcome: .dismiss, reason: "x", category: nil, urgent: nil, annotations: []) } == .conflict)
        #expect(try f.store("bob").decide("a", outcome: .dismiss, reason: "benign", category: nil, urgent: nil, annotations: []).status == .dismissed)
        let log = try f.store().custodyEntries(subjects: ["det:a"]).map(\.action)
        #expect(log == ["flag.ingest", "flag.claim", "flag.release", "flag.claim", "flag.decide"])
        #expect(errorKind { try f.store("lee").claim("a", for: "cora") } == .invalidInput)
    }
}

extension Store {
    /// Test helper: a lead sends an escalated flag back to moderators by dismissing and reopening.
    func reopenEscalationForTest(_ flag: String) throws {
        _ = try decide(flag, outcome: .dismiss, reason: "send back", category: nil, urgent: nil, annotations: [])
        try reopen(flag, reason: "needs a moderator's look")
    }
}

@Suite struct Decisions {
    @Test func fourEyesAndCaseFilingAndRouting() throws {
        let f = try team()
        try f.ingest(flagLine(id: "a", adultCountry: "GB") + "\n")
        _ = try f.store("alice").claim("a")
        do { _ = try f.store("alice").decide("a", outcome: .confirm, reason: "x", category: nil, urgent: nil, annotations: []); Issue.record("need category") } catch {
            #expect("\(error)".contains("--category"))
        }
        let first = try f.store("alice").decide("a", outcome: .confirm, reason: "grooming pattern", category: .grooming, urgent: nil, annotations: [.sextortion])
        #expect(first.status == .secondReview && first.caseID == nil)
        // alice cannot give the second confirmation of her own first one.
        #expect(errorKind { _ = try f.store("alice").claim("a") } == .invalidState)
        #expect(try f.store("alice").queue(limit: 5).count == 1)  // visible, but claim refuses her
        #expect(errorKind { _ = try f.store("alice").claim(nil) } == .notFound)
        _ = try f.store("bob").claim(nil)
        let second = try f.store("bob").decide("a", outcome: .confirm, reason: "agree", category: .grooming, urgent: nil, annotations: [])
        #expect(second.status == .confirmed && second.caseID == "C-000001")
        let cases = try f.store().cases()
        #expect(cases.count == 1 && cases[0].reportedAccounts == ["u-1"])
        #expect(cases[0].agencies.map(\.code) == ["NCA", "NCMEC"])
        do { _ = try f.store("bob").claim("a"); Issue.record("expected refusal") } catch { #expect("\(error)".contains("confirmed")) }
        do { _ = try f.store("lee").decide("a", outcome: .dismiss, reason: "x", category: nil, urgent: nil, annotations: []); Issue.record("expected refusal") } catch {
            #expect("\(error)".contains("confirmed"))
        }
        let detail = try f.store("cora").caseDetail("C-000001")
        #expect(detail.decisions.count == 2 && detail.annotations == ["sextortion"])
        #expect(detail.timeline.map(\.action).contains("case.route"))
        #expect(try f.store().verify().ok)
    }

    @Test func disagreementGoesToTheLeadAndOnlyALeadDecides() throws {
        let f = try team()
        try f.ingest(flagLine(id: "a") + "\n")
        _ = try f.store("alice").claim("a")
        _ = try f.store("alice").decide("a", outcome: .confirm, reason: "r", category: .grooming, urgent: nil, annotations: [])
        _ = try f.store("bob").claim("a")
        #expect(try f.store("bob").decide("a", outcome: .dismiss, reason: "benign", category: nil, urgent: nil, annotations: []).status == .leadReview)
        #expect(try state(f, "a") == "lead_review")
        do { _ = try f.store("alice").claim("a"); Issue.record("expected refusal") } catch { #expect("\(error)".contains("lead_review")) }
        do { _ = try f.store("bob").decide("a", outcome: .confirm, reason: "x", category: .grooming, urgent: nil, annotations: []); Issue.record("expected refusal") } catch {
            #expect("\(error)".contains("claim"))
        }
        #expect(try f.store("lee").queue(limit: 5, lead: true).map(\.key) == ["det:a"])
        let r = try f.store("lee").decide("a", outcome: .confirm, reason: "grooming", category: .grooming, urgent: nil, annotations: [])
        #expect(r.status == .confirmed && r.caseID != nil)
    }

    @Test func secondReviewOffMakesOneConfirmationFinal() throws {
        let f = try team()
        try f.store().setSetting("second-review", "off")
        try f.ingest(flagLine(id: "a") + "\n")
        _ = try f.store("alice").claim("a")
        #expect(try f.store("alice").decide("a", outcome: .confirm, reason: "r", category: .grooming, urgent: nil, annotations: []).status == .confirmed)
    }

    @Test func dismissalIsFinalAndALeadCanReopen() throws {
        let f = try team()
        try f.ingest(flagLine(id: "a") + "\n")
        _ = try f.store("alice").claim("a")
        #expect(try f.store("alice").decide("a", outcome: .dismiss, reason: "benign", category: nil, urgent: nil, annotations: []).status == .dismissed)
        #expect(errorKind { try f.store("alice").reopen("a", reason: "hmm") } == .forbidden)
        try f.store("lee").reopen("a", reason: "new report about this account")
        #expect(try state(f, "a") == "open")
        #expect(errorKind { try f.store("lee").reopen("a", reason: "again") } == .invalidState)
    }

    @Test func urgentFlagsJumpTheQueueAndBreachTheSLA() throws {
        let f = try team()
        try f.ingest(flagLine(id: "a", score: 0.99) + "\n" + flagLine(id: "b", score: 0.1) + "\n")
        _ = try f.store("alice").claim("b")
        _ = try f.store("alice").decide("b", outcome: .confirm, reason: "meeting", category: .grooming, urgent: "meeting arranged tonight", annotations: [])
        let q = try f.store("bob").queue(limit: 5)
        #expect(q.first?.key == "det:b" && q.first?.urgent == true)
        f.now += 2 * 3_600_000 + 20 * 86_400_000
        #expect(try f.store().stats(since: nil).urgentBreaches == ["det:b"])
    }
}

@Suite struct CasesAndRouting {
    func confirm(_ f: Fixture, _ flag: String) throws -> String? {
        _ = try f.store("alice").claim(flag)
        _ = try f.store("alice").decide(flag, outcome: .confirm, reason: "r", category: .grooming, urgent: nil, annotations: [])
        _ = try f.store("bob").claim(flag)
        return try f.store("bob").decide(flag, outcome: .confirm, reason: "r", category: .grooming, urgent: nil, annotations: []).caseID
    }

    @Test func sameAccountSamePlatformSharesACase() throws {
        let f = try team()
        try f.ingest([flagLine(id: "a", text: "1"), flagLine(id: "b", text: "2"), flagLine(id: "c", text: "3", adult: "u-7"),
                      flagLine(id: "d", text: "4", platform: "Other")].joined(separator: "\n") + "\n")
        #expect(try confirm(f, "a") == "C-000001")
        #expect(try confirm(f, "b") == "C-000001")
        #expect(try confirm(f, "c") == "C-000002")
        #expect(try confirm(f, "d") == "C-000003")
        #expect(try f.store().cases().map(\.flagCount) == [2, 1, 1])
    }

    @Test func routingRulesAreDataACompliancOfficerChanges() throws {
        let f = try team()
        try f.store("cora").setAgency(code: "NCMEC", name: nil, jurisdictions: nil, profile: nil, route: .jurisdiction, retentionDays: nil)
        try f.store("cora").addAgency(code: "BKA", name: "Bundeskriminalamt", jurisdictions: ["DE"], profile: .generic, route: .jurisdiction, retentionDays: 90)
        try f.ingest(flagLine(id: "a", adultCountry: "DE", minorCountry: "AU") + "\n")
        _ = try confirm(f, "a")
        #expect(try f.store().cases()[0].agencies.map(\.code) == ["ACCCE", "BKA"])
        #expect(errorKind { try f.store("cora").addAgency(code: "X", name: "x", jurisdictions: ["Germany"], profile: .generic, route: .always, retentionDays: 1) } == .invalidInput)
    }

    @Test func mergeAndSplitAreLogged() throws {
        let f = try team()
        try f.ingest([flagLine(id: "a", text: "1"), flagLine(id: "b", text: "2", adult: "u-7"), flagLine(id: "c", text: "3", adult: "u-7")].joined(separator: "\n") + "\n")
        _ = try confirm(f, "a"); _ = try confirm(f, "b"); _ = try confirm(f, "c")
        #expect(errorKind { try f.store("alice").mergeCases("C-000001", "C-000002") } == .forbidden)
        try f.store("cora").mergeCases("C-000001", "C-000002")
        let cases = try f.store().cases()
        #expect(cases[0].flagCount == 3 && cases[0].reportedAccounts == ["u-1", "u-7"] && cases[1].state == .merged)
        let new = try f.store("cora").splitCase("C-000001", flags: ["c"])
        #expect(new == "C-000003")
        #expect(try f.store().cases().first { $0.caseID == "C-000003" }?.reportedAccounts == ["u-7"])
        #expect(errorKind { try f.store("cora").splitCase("C-000001", flags: ["c"]) } == .invalidInput)
        let actions = try f.store().custodyEntries(subjects: ["C-000001"]).map(\.action)
        #expect(actions.contains("case.merge") && actions.contains("case.split"))
        #expect(try f.store().verify().ok)
    }

    @Test func statsComeFromDecisions() throws {
        let f = try team()
        try f.ingest(flagLine(id: "a") + "\n" + flagLine(id: "b", text: "x") + "\n")
        f.now += 10 * 60_000
        _ = try confirm(f, "a")
        let s = try f.store().stats(since: nil)
        #expect(s.queueDepth == 1)
        #expect(s.decisionsByOutcome["confirm"] == 2)
        #expect(s.decisionsByReviewer == ["alice": 1, "bob": 1])
        #expect(s.casesByAgency["NCMEC"] == 1)
        #expect(s.medianMinutesToFirstDecision != nil)
    }
}

@Suite struct FourEyesWithoutGaps {
    /// Whoever escalated a flag cannot settle it, leads included; settling a disagreement takes
    /// a third person; with second review off, a lead may settle their own escalation.
    @Test func noOneSettlesAFlagTheyAlreadyDecided() throws {
        let f = try team()
        try f.store().addUser(name: "lia", role: .lead)
        try f.ingest([flagLine(id: "a", text: "1"), flagLine(id: "b", text: "2"), flagLine(id: "c", text: "3")].joined(separator: "\n") + "\n")
        // A lead escalates, then tries to confirm alone.
        _ = try f.store("lee").claim("a")
        #expect(try f.store("lee").decide("a", outcome: .escalate, reason: "unsure", category: nil, urgent: nil, annotations: []).status == .leadReview)
        #expect(errorKind { _ = try f.store("lee").claim("a") } == .invalidState)
        #expect(errorKind { _ = try f.store("lee").decide("a", outcome: .confirm, reason: "alone", category: .grooming, urgent: nil, annotations: []) } == .invalidState)
        #expect(errorKind { _ = try f.store("lee").claim("a", for: "lee") } == .invalidState)
        // Each refusal by the rules is a custody entry naming who, what and why.
        let refusals = try f.store().custodyEntries(subjects: ["lee"]).filter { $0.action == CustodyAction.refused.rawValue }
        #expect(refusals.count == 3 && refusals.allSatisfy { $0.details.contains("four eyes") }, "\(refusals.map(\.details))")
        #expect(try f.store("lia").decide("a", outcome: .confirm, reason: "second pair of eyes", category: .grooming, urgent: nil, annotations: []).status == .confirmed)
        // alice confirms, lee (a lead, as second reviewer) dismisses: lee cannot settle it; lia can.
        _ = try f.store("alice").claim("b")
        _ = try f.store("alice").decide("b", outcome: .confirm, reason: "r", category: .grooming, urgent: nil, annotations: [])
        _ = try f.store("lee").claim("b")
        #expect(try f.store("lee").decide("b", outcome: .dismiss, reason: "no", category: nil, urgent: nil, annotations: []).status == .leadReview)
        #expect(errorKind { _ = try f.store("lee").decide("b", outcome: .dismiss, reason: "again", category: nil, urgent: nil, annotations: []) } == .invalidState)
        // The lead queue skips what lee already decided.
        let next = try f.store("lee").claim(nil)
        #expect(next.key == "det:c")
        #expect(try f.store("lia").decide("b", outcome: .confirm, reason: "third person", category: .grooming, urgent: nil, annotations: []).status == .confirmed)
        // With second review off, a lead settles their own escalation.
        try f.store().setSetting("second-review", "off")
        try f.store("lee").release("c")
        _ = try f.store("lee").claim("c")
        _ = try f.store("lee").decide("c", outcome: .escalate, reason: "check", category: nil, urgent: nil, annotations: [])
        #expect(try f.store("lee").decide("c", outcome: .dismiss, reason: "fine", category: nil, urgent: nil, annotations: []).status == .dismissed)
        #expect(try f.store().verify().ok)
    }
}
