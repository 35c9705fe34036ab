import CustosCore
@testable import CustosStore
import Foundation
import GRDB
import Testing

/// Issue 25: platform actions as events through the one projection: requested in the
/// transaction of the decision that causes them, leased to one deliverer at a time, and every
/// outcome recorded. (Each Fixture is verified and rebuilt, table for table, when it ends.)
@Suite struct PlatformActions {
    func setUp(_ f: Fixture, flags: [String] = ["a"]) throws {
        for (u, r) in [("alice", Role.moderator), ("bob", .moderator), ("lee", .lead), ("cora", .compliance)] { try f.store().addUser(name: u, role: r) }
        try f.ingest(flags.map { flagLine(id: $0, text: "secret evidence text \($0)") }.joined(separator: "\n"))
    }

    func claimAndDecide(_ f: Fixture, _ who: String, _ flag: String, outcome: Outcome, reason: String, category: CustosCore.Category?, urgent: String?,
                        annotations: [Annotation]) throws {
        if who != "lee" { _ = try f.store(who).claim(flag) }
        _ = try f.store(who).decide(flag, outcome: outcome, reason: reason, category: category, urgent: urgent, annotations: annotations)
    }

    func requests(_ f: Fixture) throws -> [ActionRequestRecord] { try f.store().actionRequests() }

    @Test func anUrgentFirstDecisionRequestsTheRestrictionAtOnceAndConfirmationTheSuspension() throws {
        let f = try Fixture()
        try setUp(f)
        let restrictSecret = try f.store().addActionEndpoint(name: "restrict", url: "https://platform.example/hooks/restrict", kind: .restrictAccount, triggers: nil, categories: [])
        _ = try f.store().addActionEndpoint(name: "suspend", url: "https://platform.example/hooks/suspend", kind: .suspendAccount, triggers: nil, categories: [])
        #expect(restrictSecret.hasPrefix("whsec_"))
        try claimAndDecide(f, "alice", "det:a", outcome: .confirm, reason: "meeting", category: .grooming, urgent: "meeting tomorrow", annotations: [])
        var r = try requests(f)
        #expect(r.map(\.kind) == [.restrictAccount] && r[0].trigger == .flagUrgent && r[0].state == .pending)
        // The body names the accounts, the conversation, the flag and the entry that asked; never evidence text.
        let body = try JSONValue.parse(Array(r[0].body.utf8))
        #expect(body["type"]?.stringValue == "restrict-account")
        #expect(body["data"]?["accounts"] == .array([.string("u-1")]) && body["data"]?["conversations"] == .array([.string("conv-a")]))
        #expect(body["data"]?["flag"]?.stringValue == "det:a" && body["data"]?["urgent"] == .bool(true))
        let decide = try #require(try f.store().custodyEntries(subjects: ["det:a"]).last { $0.action == "flag.decide" })
        #expect(body["data"]?["custody_entry"] == .integer(decide.seq) && r[0].requestedSeq == decide.seq)
        #expect(!r[0].body.contains("secret evidence") && !r[0].body.contains("meeting"))
        // The secret is in no custody entry; its SHA-256 is.
        #expect(try f.sqlite("SELECT count(*) FROM custody WHERE details LIKE '%whsec_%'").1.hasPrefix("0"))
        #expect(try f.sqlite("SELECT count(*) FROM custody WHERE details LIKE '%\(SHA256Hex.of(restrictSecret))%'").1.hasPrefix("1"))
        try claimAndDecide(f, "bob", "det:a", outcome: .confirm, reason: "agree", category: .grooming, urgent: nil, annotations: [])
        r = try requests(f)
        #expect(r.map(\.kind) == [.restrictAccount, .suspendAccount] && r[1].trigger == .flagConfirmed && r[1].caseID == "C-000001")
    }

    @Test func aDismissalLiftsOnlyWhatAnEarlierActionRestricted() throws {
        let f = try Fixture()
        try setUp(f, flags: ["a", "b"])
        _ = try f.store().addActionEndpoint(name: "restrict", url: "http://127.0.0.1:9/r", kind: .restrictAccount, triggers: nil, categories: [])
        _ = try f.store().addActionEndpoint(name: "lift", url: "http://127.0.0.1:9/l", kind: .liftRestriction, triggers: nil, categories: [])
        try claimAndDecide(f, "alice", "det:a", outcome: .dismiss, reason: "fine", category: nil, urgent: nil, annotations: [])
        try claimAndDecide(f, "alice", "det:b", outcome: .confirm, reason: "x", category: .grooming, urgent: "threat", annotations: [])
        try claimAndDecide(f, "bob", "det:b", outcome: .dismiss, reason: "no", category: nil, urgent: nil, annotations: [])
        try claimAndDecide(f, "lee", "det:b", outcome: .dismiss, reason: "a relative", category: nil, urgent: nil, annotations: [])
        let r = try requests(f)
        #expect(r.map(\.kind) == [.restrictAccount, .liftRestriction] && r.allSatisfy { $0.flag == "det:b" })
    }

    @Test func categoriesAndDisabledEndpointsDecideWhatIsRequested() throws {
        let f = try Fixture()
        try setUp(f, flags: ["a", "b"])
        _ = try f.store().addActionEndpoint(name: "csam-only", url: "http://127.0.0.1:9/c", kind: .suspendAccount, triggers: [.flagUrgent], categories: [.csam])
        _ = try f.store().addActionEndpoint(name: "off", url: "http://127.0.0.1:9/o", kind: .restrictAccount, triggers: nil, categories: [])
        try f.store().setActionEndpoint(name: "off", disabled: true, reason: "maintenance")
        try claimAndDecide(f, "alice", "det:a", outcome: .confirm, reason: "x", category: .grooming, urgent: "u", annotations: [])
        #expect(try requests(f).isEmpty)
        try claimAndDecide(f, "alice", "det:b", outcome: .confirm, reason: "x", category: .csam, urgent: "u", annotations: [])
        #expect(try requests(f).map(\.endpoint) == ["csam-only"])
    }

    @Test func oneDelivererHoldsARequestUntilItsLeaseEnds() throws {
        let f = try Fixture()
        try setUp(f)
        _ = try f.store().addActionEndpoint(name: "restrict", url: "http://127.0.0.1:9/r", kind: .restrictAccount, triggers: nil, categories: [])
        try claimAndDecide(f, "alice", "det:a", outcome: .confirm, reason: "x", category: .grooming, urgent: "u", annotations: [])
        let first = try f.store("cora").leaseActions(limit: 10, leaseMillis: 60_000)
        #expect(first.count == 1 && first[0].attempt == 1 && first[0].secrets.count == 1)
        #expect(try f.store("admin").leaseActions(limit: 10).isEmpty)  // held
        f.now += 59_000
        #expect(try f.store().leaseActions(limit: 10).isEmpty)
        f.now += 2_000  // the first deliverer died: its lease ended
        let second = try f.store().leaseActions(limit: 10)
        #expect(second.map(\.id) == first.map(\.id) && second[0].attempt == 2 && second[0].body == first[0].body)
        // The dead deliverer's late report changes nothing; the live one's is recorded.
        try f.store("cora").recordActionOutcomes([ActionOutcome(id: first[0].id, attempt: 1, status: 200, durationMillis: 5, answer: nil, error: nil, retryAfter: nil)])
        #expect(try requests(f)[0].state == .sending)
        try f.store().recordActionOutcomes([ActionOutcome(id: first[0].id, attempt: 2, status: 200, durationMillis: 5,
                                                          answer: Array(#"{"status":"done","reference":"R-9","disabled_at":"2026-11-20T15:00:00Z","user_notified":true}"#.utf8),
                                                          error: nil, retryAfter: nil)])
        let r = try requests(f)[0]
        #expect(r.state == .acknowledged && r.answer?.reference == "R-9" && r.answer?.disabledAt == "2026-11-20T15:00:00.000Z" && r.answer?.userNotified == true)
        #expect(r.words.contains("restrict-account acknowledged") && r.words.contains("platform ref R-9"))
        // A moderator may not deliver (refused, logged).
        #expect(errorKind { _ = try f.store("alice").leaseActions(limit: 1) } == .forbidden)
    }

    @Test func failuresBackOffHonourRetryAfterAndDieAfterTheWindow() throws {
        let f = try Fixture()
        try setUp(f, flags: ["a", "b"])
        _ = try f.store().addActionEndpoint(name: "restrict", url: "http://127.0.0.1:9/r", kind: .restrictAccount, triggers: nil, categories: [])
        try claimAndDecide(f, "alice", "det:a", outcome: .confirm, reason: "x", category: .grooming, urgent: "u", annotations: [])
        var d = try f.store().leaseActions(limit: 1)
        try f.store().recordActionOutcomes([ActionOutcome(id: d[0].id, attempt: 1, status: 429, durationMillis: 3, answer: [], error: nil, retryAfter: "120")],
                                           random: { 0 })
        var r = try requests(f)[0]
        #expect(r.state == .failed && r.nextAttemptAt == Timestamp.utcString(millis: f.now + 120_000))
        #expect(try f.store().leaseActions(limit: 1).isEmpty)  // not yet due
        // Unreachable for three days: waits grow to an hour, then the request is dead (visible, countable).
        var attempts = 1
        while try requests(f)[0].state == .failed {
            f.now += 3_600_000
            d = try f.store().leaseActions(limit: 1)
            guard let one = d.first else { continue }
            attempts += 1
            try f.store().recordActionOutcomes([ActionOutcome(id: one.id, attempt: one.attempt, status: nil, durationMillis: 1, answer: nil, error: "connection refused", retryAfter: nil)])
        }
        r = try requests(f)[0]
        #expect(r.state == .dead && attempts > 60 && attempts < 80, "\(attempts) attempts")
        #expect(try f.store().deadActionCount() == 1)
        // A lead retries it (logged); a moderator cannot.
        #expect(errorKind { try f.store("alice").resolveAction(r.id, retry: true, reason: "back up") } == .forbidden)
        try f.store("lee").resolveAction(r.id, retry: true, reason: "the platform says it is back")
        #expect(try requests(f)[0].state == .pending)
        #expect(try f.store().leaseActions(limit: 1).count == 1)
    }

    @Test func aLeadCancelsOnlyWhatIsNeitherDoneNorBeingSent() throws {
        let f = try Fixture()
        try setUp(f, flags: ["a", "b"])
        _ = try f.store().addActionEndpoint(name: "restrict", url: "http://127.0.0.1:9/r", kind: .restrictAccount, triggers: nil, categories: [])
        try claimAndDecide(f, "alice", "det:a", outcome: .confirm, reason: "x", category: .grooming, urgent: "u", annotations: [])
        let id = try requests(f)[0].id
        #expect(errorKind { try f.store("lee").resolveAction(id, retry: true, reason: "r") } == .invalidState)  // pending: nothing to retry
        _ = try f.store().leaseActions(limit: 1, leaseMillis: 60_000)
        // Being sent under a running lease: not cancelled (the deliverer may be mid-request).
        #expect(errorKind { try f.store("lee").resolveAction(id, retry: false, reason: "stop") } == .invalidState)
        // The deliverer died; its lease ran out: a lead may cancel it, and no deliverer sends it again.
        f.now += 61_000
        try f.store("lee").resolveAction(id, retry: false, reason: "the account is gone")
        #expect(try requests(f)[0].state == .cancelled)
        #expect(try f.store().leaseActions(limit: 1).isEmpty)
        #expect(errorKind { try f.store("lee").resolveAction(id, retry: false, reason: "again") } == .invalidState)
    }

    @Test func goneDisablesTheEndpointAndAnUnreachableDayLosesNothing() throws {
        let f = try Fixture()
        try setUp(f, flags: ["a", "b"])
        _ = try f.store().addActionEndpoint(name: "restrict", url: "http://127.0.0.1:9/r", kind: .restrictAccount, triggers: nil, categories: [])
        try claimAndDecide(f, "alice", "det:a", outcome: .confirm, reason: "x", category: .grooming, urgent: "u", annotations: [])
        // Down for a day (every attempt refused), then up: delivered.
        let start = f.now
        while f.now < start + 86_400_000 {
            for d in try f.store().leaseActions(limit: 5) {
                try f.store().recordActionOutcomes([ActionOutcome(id: d.id, attempt: d.attempt, status: 503, durationMillis: 1, answer: nil, error: nil, retryAfter: nil)])
            }
            f.now += 600_000
        }
        #expect(try requests(f)[0].state == .failed)
        f.now += 3_600_000
        let d = try #require(try f.store().leaseActions(limit: 5).first)
        try f.store().recordActionOutcomes([ActionOutcome(id: d.id, attempt: d.attempt, status: 204, durationMillis: 1, answer: nil, error: nil, retryAfter: nil)])
        #expect(try requests(f)[0].state == .delivered)
        // 410 Gone: dead, and the endpoint disabled, saying so; later requests wait for it.
        try claimAndDecide(f, "alice", "det:b", outcome: .confirm, reason: "x", category: .grooming, urgent: "u", annotations: [])
        #expect(try requests(f).count == 2)
        let g = try #require(try f.store().leaseActions(limit: 5).first)
        try f.store().recordActionOutcomes([ActionOutcome(id: g.id, attempt: g.attempt, status: 410, durationMillis: 1, answer: nil, error: nil, retryAfter: nil)])
        let endpoint = try #require(try f.store().actionEndpoints().first)
        #expect(endpoint.disabled && endpoint.disabledReason?.contains("410 Gone") == true)
        #expect(try requests(f)[1].state == .dead)
    }

    @Test func badEndpointsAreRefusedAndNothingIsStored() throws {
        let f = try Fixture()
        try setUp(f)
        for url in ["ftp://h/x", "http://user:pw@h/x", "https:///nohost", "file:///etc/passwd", "http://h/x#frag", "http://h/ x", "not a url"] {
            #expect(errorKind { _ = try f.store().addActionEndpoint(name: "x", url: url, kind: .banAccount, triggers: nil, categories: []) } == .invalidInput, "\(url)")
        }
        for name in ["", "Upper", "msg_x", "a b", String(repeating: "a", count: 65)] {
            #expect(errorKind { _ = try f.store().addActionEndpoint(name: name, url: "http://h/", kind: .banAccount, triggers: nil, categories: []) } == .invalidInput)
        }
        #expect(errorKind { _ = try f.store("lee").addActionEndpoint(name: "x", url: "http://h/", kind: .banAccount, triggers: nil, categories: []) } == .forbidden)
        #expect(try f.store().actionEndpoints().isEmpty)
    }

    @Test func aRotatedSecretSignsBesideTheNewOneForADay() throws {
        let f = try Fixture()
        try setUp(f, flags: ["a", "b"])
        let old = try f.store().addActionEndpoint(name: "r", url: "http://127.0.0.1:9/r", kind: .restrictAccount, triggers: nil, categories: [])
        let new = try f.store().rotateActionSecret(name: "r")
        #expect(old != new)
        try claimAndDecide(f, "alice", "det:a", outcome: .confirm, reason: "x", category: .grooming, urgent: "u", annotations: [])
        #expect(try f.store().leaseActions(limit: 1).first?.secrets == [new, old])
        f.now += 86_400_000
        try claimAndDecide(f, "alice", "det:b", outcome: .confirm, reason: "x", category: .grooming, urgent: "u", annotations: [])
        #expect(try f.store().leaseActions(limit: 5).allSatisfy { $0.secrets == [new] })
    }

    @Test func whatARequestAskedCannotBeChangedAndEditsAreNamedByVerify() throws {
        let f = try Fixture()
        try setUp(f)
        _ = try f.store().addActionEndpoint(name: "r", url: "http://127.0.0.1:9/r", kind: .suspendAccount, triggers: [.flagUrgent], categories: [])
        try claimAndDecide(f, "alice", "det:a", outcome: .confirm, reason: "x", category: .grooming, urgent: "u", annotations: [])
        let (code, out) = try f.sqlite("UPDATE action_requests SET body = '{}'")
        #expect(code != 0 && out.contains("never changed"))
        f.editedBehindTheLog = true
        // An acknowledgement forged behind the log's back (what a referral's disablement rests on).
        #expect(try f.sqlite("UPDATE action_requests SET state = 'acknowledged', disabled_at = '2026-11-01T00:00:00Z', acknowledged_at = '2026-11-01T00:00:00Z'").0 == 0)
        let r = try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).verify()
        #expect(!r.ok && r.problems.contains { $0.contains("action_requests") }, "\(r.problems)")
        // A secret swapped behind the log's back is named too.
        #expect(try f.sqlite("UPDATE action_requests SET state = 'pending', disabled_at = NULL, acknowledged_at = NULL; UPDATE action_endpoints SET secret = 'whsec_attacker'").0 == 0)
        let r2 = try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).verify()
        #expect(r2.problems.contains { $0.contains("action_endpoints") }, "\(r2.problems)")
    }
}

extension PlatformActions {
    /// The case's events: referred (not again for a supplement), the preservation hold started by
    /// the first referral, extended, and ended once it has run out (found by the deliverer).
    @Test func referralsAndHoldsAskThePlatformToPreserve() throws {
        let f = try Fixture()
        try setUp(f)
        _ = try f.store().addActionEndpoint(name: "preserve", url: "http://127.0.0.1:9/p", kind: .preserveAccount, triggers: nil, categories: [])
        _ = try f.store().addActionEndpoint(name: "ban", url: "http://127.0.0.1:9/b", kind: .banAccount, triggers: nil, categories: [])
        try claimAndDecide(f, "alice", "det:a", outcome: .confirm, reason: "x", category: .grooming, urgent: nil, annotations: [])
        try claimAndDecide(f, "bob", "det:a", outcome: .confirm, reason: "y", category: .grooming, urgent: nil, annotations: [])
        let cora = try f.store("cora")
        for _ in 0..<2 {  // a referral, then a supplement
            let s = try cora.prepareReferral(caseName: "C-000001", agencyCode: "NCMEC", key: try cora.signingKey())
            try cora.recordReferral(s, tagManifestSHA256: String(repeating: "0", count: 64))
        }
        var r = try requests(f)
        #expect(r.map { "\($0.endpoint) \($0.trigger.rawValue)" } == ["ban case.referred", "preserve hold.started"])
        #expect(r.allSatisfy { $0.caseID == "C-000001" && $0.flag == nil })
        let body = try JSONValue.parse(Array(r[1].body.utf8))
        #expect(body["data"]?["accounts"] == .array([.string("u-1")]) && body["data"]?["conversations"] == .array([.string("conv-a")]))
        let until = f.now + 400 * 86_400_000
        try cora.extendHold(caseName: "C-000001", until: until, reason: "law enforcement request 2026-123")
        #expect(try requests(f).last?.trigger == .holdExtended)
        // Nothing ends before the extended end; then hold.ended, once.
        f.now = until - 1
        _ = try f.store().leaseActions(limit: 10)
        #expect(try !requests(f).contains { $0.trigger == .holdEnded })
        f.now = until + 1
        _ = try f.store().leaseActions(limit: 10)
        _ = try f.store().leaseActions(limit: 10)
        r = try requests(f)
        #expect(r.filter { $0.trigger == .holdEnded }.count == 1 && r.last?.trigger == .holdEnded)
        let extend = try #require(try f.store().custodyEntries(subjects: ["C-000001"]).last { $0.action == "hold.extend" })
        #expect(r.last?.requestedSeq == extend.seq)
    }
}
