import CustosCore
@testable import CustosStore
import Foundation
import Testing

/// Issue 27, item 5: series by day or week over a range, and detector precision, from the store.
@Suite struct Trend {
    /// Four flags over four days, each decision made at a set time.
    func story() throws -> Fixture {
        let f = try Fixture()
        for (u, r) in [("alice", Role.moderator), ("bob", .moderator), ("lee", .lead)] { try f.store().addUser(name: u, role: r) }
        try f.ingest([flagLine(id: "a", score: 0.9, detected: "2026-11-01T10:00:00Z"), flagLine(id: "b", score: 0.3, detected: "2026-11-01T12:00:00Z"),
                      flagLine(id: "c", score: 0.55, detected: "2026-11-02T09:00:00Z"), flagLine(id: "d", score: nil, detected: "2026-11-03T09:00:00Z")]
            .joined(separator: "\n"))
        func at(_ time: String, _ who: String, _ flag: String, _ outcome: Outcome, urgent: String? = nil) throws {
            f.now = try #require(Timestamp.parse(time)).epochMillis
            _ = try f.store(who).claim(flag)
            _ = try f.store(who).decide(flag, outcome: outcome, reason: "r", category: outcome == .confirm ? .grooming : nil, urgent: urgent, annotations: [])
        }
        try at("2026-11-02T09:30:00Z", "alice", "det:c", .confirm, urgent: "meeting tonight")  // c: first after 30 min; never settled
        try at("2026-11-02T10:00:00Z", "alice", "det:a", .confirm)                              // a: first after 1440 min
        try at("2026-11-02T12:00:00Z", "alice", "det:b", .dismiss)                              // b: first and final after 1440 min
        try at("2026-11-03T09:10:00Z", "alice", "det:d", .confirm, urgent: "meeting")           // d: first after 10 min
        try at("2026-11-03T09:50:00Z", "bob", "det:d", .confirm)                                // d: final after 50 min, inside the SLA
        try at("2026-11-03T14:00:00Z", "bob", "det:a", .confirm)                                // a: final after 3120 min
        f.now = try #require(Timestamp.parse("2026-11-03T15:00:00Z")).epochMillis
        try f.store("lee").reopen("det:b", reason: "new context")                               // b waits again
        try at("2026-11-04T08:00:00Z", "alice", "det:b", .dismiss)                              // b settled again (not its first final)
        f.now = try #require(Timestamp.parse("2026-11-06T00:00:00Z")).epochMillis
        return f
    }

    func range(_ f: Fixture, _ from: String, _ to: String, _ by: String = "day") throws -> TrendRange {
        try TrendRange.parse(from: from, to: to, by: by, now: f.now)
    }

    @Test func eachDayCountsWhatHappenedThatDay() throws {
        let f = try story()
        let t = try f.store("lee").trends(try range(f, "2026-11-01", "2026-11-05"))
        #expect(t.buckets.map(\.day) == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"])
        #expect(t.buckets.map(\.decisions) == [[:], ["confirm": 2, "dismiss": 1], ["confirm": 3, "reopen": 1], ["dismiss": 1]])
        // a and b detected on the 1st; c detected, b settled on the 2nd; d detected, d and a
        // settled, b reopened on the 3rd; b settled on the 4th: c is left.
        #expect(t.buckets.map(\.queueDepthAtEnd) == [2, 2, 2, 1])
        let s = try f.store("lee").stats(since: nil)
        #expect(t.buckets.last?.queueDepthAtEnd == s.queueDepth + s.leadQueueDepth)
        #expect(t.buckets.map(\.firstDecisions) == [0, 3, 1, 0])
        #expect(t.buckets.map(\.medianMinutesToFirstDecision) == [nil, 1440, 10, nil])
        #expect(t.buckets.map(\.finalDecisions) == [0, 1, 2, 0])
        #expect(t.buckets.map(\.medianMinutesToFinalDecision) == [nil, 1440, 1585, nil])
        // c's hour ran out at 10:00 on the 2nd without a final decision; d was settled in time.
        #expect(t.buckets.map(\.urgentBreaches) == [0, 1, 0, 0])

        // By week (Monday to Sunday): the range widens to whole weeks.
        let w = try f.store("lee").trends(try range(f, "2026-11-01", "2026-11-05", "week"))
        #expect(w.buckets.map(\.day) == ["2026-10-26", "2026-11-02"])
        #expect(w.buckets.map(\.decisions) == [[:], ["confirm": 5, "dismiss": 2, "reopen": 1]])
        #expect(w.buckets.map(\.queueDepthAtEnd) == [2, 1])
        #expect(w.buckets.map(\.urgentBreaches) == [0, 1])
        #expect(w.json["series"]?.arrayValue?.count == 2)
    }

    @Test func precisionCountsTheFlagsSettledInTheRangeAsTheSQLiteShellDoes() throws {
        let f = try story()
        let t = try f.store("lee").trends(try range(f, "2026-11-01", "2026-11-05"))
        // a confirmed (0.9), b dismissed (0.3, its last final decision on the 4th), d confirmed (unscored).
        #expect(t.precision == [
            .init(detector: "det", modelVersion: "1", scoreBand: nil, decided: 1, confirmed: 1),
            .init(detector: "det", modelVersion: "1", scoreBand: "0.3-0.4", decided: 1, confirmed: 0),
            .init(detector: "det", modelVersion: "1", scoreBand: "0.9-1.0", decided: 1, confirmed: 1),
        ])
        #expect(t.precisionByModelVersion == [.init(detector: "det", modelVersion: "1", scoreBand: nil, decided: 3, confirmed: 2)])
        #expect(t.precisionByModelVersion.first?.precision == 0.667)
        // The same count, by the sqlite3 shell, from the flags' settled state.
        let shell = try f.sqlite("""
            SELECT f.detector, f.model_version, count(*), sum(s.status = 'confirmed') FROM flags f JOIN flag_state s ON s.flag = f.id
            WHERE s.status IN ('confirmed', 'dismissed') GROUP BY 1, 2
            """)
        #expect(shell.1.trimmingCharacters(in: .whitespacesAndNewlines) == "det|1|3|2")
        // Only the 4th: b, whose last final decision it holds; a and d were settled before.
        let fourth = try f.store("lee").trends(try range(f, "2026-11-04", "2026-11-05"))
        #expect(fourth.precisionByModelVersion == [.init(detector: "det", modelVersion: "1", scoreBand: nil, decided: 1, confirmed: 0)])
    }

    @Test func aBadRangeIsRefusedNamingTheInput() throws {
        let now = try #require(Timestamp.parse("2026-12-06T18:00:00Z")).epochMillis
        func refusal(_ from: String?, _ to: String?, _ by: String?) -> String? {
            do { _ = try TrendRange.parse(from: from, to: to, by: by, now: now); return nil } catch { return "\(error)" }
        }
        #expect(refusal("2026-13-01", nil, nil)?.contains("--from") == true)
        #expect(refusal(nil, "yesterday", nil)?.contains("--to") == true)
        #expect(refusal("2026-12-01", "2026-12-01", nil)?.contains("--to") == true)
        #expect(refusal(nil, nil, "month")?.contains("--by") == true)
        #expect(refusal("2020-01-01", nil, "day")?.contains("at most 400") == true)
        #expect(refusal("2020-01-01", nil, "week") == nil)
        // The default: the 28 days up to today, by day.
        let r = try TrendRange.parse(from: nil, to: nil, by: nil, now: now)
        #expect(r.fromDay == "2026-11-09" && r.toDay == "2026-12-07" && r.count == 28)
        let page = try TrendRange.parse(from: nil, to: nil, by: "week", now: now, field: { $0 })
        #expect(page.count == 12 && page.fromDay == "2026-09-14" && page.toDay == "2026-12-07")
    }
}
