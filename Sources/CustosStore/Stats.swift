import CustosCore
import Foundation
import GRDB

public struct Stats: Sendable {
    public var queueDepth = 0
    public var leadQueueDepth = 0
    public var oldestQueuedAgeMinutes: Int64?
    public var medianMinutesToFirstDecision: Double?
    public var medianMinutesToFinalDecision: Double?
    public var decisionsByOutcome: [String: Int] = [:]
    public var decisionsByReviewer: [String: Int] = [:]
    public var casesByState: [String: Int] = [:]
    public var casesByAgency: [String: Int] = [:]
    public var urgentSLAMinutes = 60
    public var urgentBreaches: [String] = []
    /// Platform actions given up (dead), waiting for a lead to retry or cancel them.
    public var deadActions = 0

    /// The median of spans in milliseconds, in minutes to a tenth; nil for none.
    static func medianMinutes(_ xs: [Int64]) -> Double? {
        guard !xs.isEmpty else { return nil }
        let v = xs.sorted()
        let mid = v.count / 2
        let ms = v.count % 2 == 1 ? Double(v[mid]) : Double(v[mid - 1] + v[mid]) / 2
        return (ms / 60_000 * 10).rounded() / 10
    }
}

extension Store {
    /// Review figures since `since` (UTC millis), derived from decisions and flag state.
    /// Without `decisionTotals`, only the figures of now (queues, cases, breaches, dead actions):
    /// the totals over decisions read every decision since `since`, and the stats page takes
    /// them over its range from `trends` instead.
    public func stats(since: Int64?, decisionTotals: Bool = true) throws -> Stats {
        try requirePermission(.read)
        let now = clock()
        let from = since ?? Int64.min
        return try read { db in
            var s = Stats()
            s.queueDepth = try Int.fetchOne(db, sql: "SELECT count(*) FROM flag_state WHERE queue = ? AND detected_ms >= ?", arguments: [ReviewQueue.moderator.rawValue, from]) ?? 0
            s.leadQueueDepth = try Int.fetchOne(db, sql: "SELECT count(*) FROM flag_state WHERE queue = ? AND detected_ms >= ?", arguments: [ReviewQueue.lead.rawValue, from]) ?? 0
            if let oldest = try Int64.fetchOne(db, sql: "SELECT min(detected_ms) FROM flag_state WHERE queue IS NOT NULL AND detected_ms >= ?", arguments: [from]) {
                s.oldestQueuedAgeMinutes = (now - oldest) / 60_000
            }
            if decisionTotals {
                s.medianMinutesToFirstDecision = Stats.medianMinutes(try Int64.fetchAll(db, sql: """
                    SELECT min(d.at_ms) - f.detected_ms FROM decisions d JOIN flags f ON f.id = d.flag
                    WHERE d.at_ms >= ? GROUP BY d.flag
                    """, arguments: [from]))
                s.medianMinutesToFinalDecision = Stats.medianMinutes(try Int64.fetchAll(db, sql: """
                    SELECT min(d.at_ms) - f.detected_ms FROM decisions d JOIN flags f ON f.id = d.flag
                    WHERE d.final = 1 AND d.at_ms >= ? GROUP BY d.flag
                    """, arguments: [from]))
                for r in try Row.fetchAll(db, sql: "SELECT outcome, count(*) AS n FROM decisions WHERE at_ms >= ? GROUP BY outcome", arguments: [from]) {
                    s.decisionsByOutcome[r["outcome"]] = r["n"]
                }
                for r in try Row.fetchAll(db, sql: "SELECT reviewer, count(*) AS n FROM decisions WHERE at_ms >= ? GROUP BY reviewer", arguments: [from]) {
                    s.decisionsByReviewer[r["reviewer"]] = r["n"]
                }
            }
            for r in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM cases GROUP BY state") { s.casesByState[r["state"]] = r["n"] }
            for r in try Row.fetchAll(db, sql: "SELECT agency, count(*) AS n FROM case_agencies GROUP BY agency") { s.casesByAgency[r["agency"]] = r["n"] }
            s.urgentSLAMinutes = Int(try settings(db).urgentSLAMinutes)
            s.urgentBreaches = try Row.fetchAll(db, sql: """
                SELECT f.detector, f.flag_id FROM flag_state s JOIN flags f ON f.id = s.flag
                WHERE s.urgent = 1 AND s.queue IS NOT NULL AND s.detected_ms < ? ORDER BY s.detected_ms
                """, arguments: [now - Int64(s.urgentSLAMinutes) * 60_000]).map { FlagKey.make(detector: $0["detector"], flagID: $0["flag_id"]) }
            s.deadActions = try Store.deadActionCount(db)
            return s
        }
    }
}

extension Store {
    /// How many flags wait in each queue (the queue page's counts), counted along the queue
    /// index up to `cap` each (a million waiting flags would take a tenth of a second to count
    /// on every page; past the cap the page says "10000+").
    public func queueCounts(cap: Int = 10_000) throws -> (moderator: Int, lead: Int, capped: Bool) {
        try requirePermission(.read)
        return try read { db in
            func count(_ q: ReviewQueue) throws -> Int {
                try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT 1 FROM flag_state INDEXED BY flag_state_queue WHERE queue = ? LIMIT ?)",
                                 arguments: [q.rawValue, cap + 1]) ?? 0
            }
            let m = try count(.moderator), l = try count(.lead)
            return (min(m, cap), min(l, cap), m > cap || l > cap)
        }
    }
}
