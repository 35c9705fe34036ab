import CustosCore
import Foundation
import GRDB

/// A chosen range of whole UTC days, cut into days or Monday-to-Sunday weeks: what `custos
/// stats --from --to --by` and the stats page's form ask for.
public struct TrendRange: Sendable, Equatable {
    public enum Step: String, Sendable, CaseIterable {
        case day, week
        public var millis: Int64 { self == .day ? Self.dayMillis : 7 * Self.dayMillis }
        static let dayMillis: Int64 = 86_400_000
    }

    /// UTC midnight of the first day, and of the day after the last.
    public let from: Int64
    public let to: Int64
    public let step: Step
    /// At most this many days or weeks in one range (a year by day, eight years by week).
    public static let maxBuckets = 400

    public var count: Int { Int((to - from) / step.millis) }
    /// `from` and `to` as the user writes them.
    public var fromDay: String { Self.day(from) }
    public var toDay: String { Self.day(to) }
    static func day(_ ms: Int64) -> String { String(Timestamp.format(millis: ms, offsetMinutes: 0).prefix(10)) }
    public func start(_ i: Int) -> Int64 { from + Int64(i) * step.millis }
    /// The bucket a time falls in, when it falls in the range.
    func bucket(_ ms: Int64) -> Int? { ms >= from && ms < to ? Int((ms - from) / step.millis) : nil }

    /// `from` is the first day and `to` the day after the last (`YYYY-MM-DD`, UTC), as
    /// `custos transparency` takes them. Without them: the 28 days up to today by day, or the
    /// 12 weeks up to this one by week. A week starts on Monday, so a range by week widens to
    /// whole weeks. `field` names each input as the caller's user knows it (`--from`, `from`).
    public static func parse(from: String?, to: String?, by: String?, now: Int64,
                             field: (String) -> String = { "--" + $0 }) throws -> TrendRange {
        let day = Step.dayMillis
        var step = Step.day
        if let by {
            guard let s = Step(rawValue: by) else { throw CustosError.invalidInput(field: field("by"), reason: "\(quoted(by)) is not day or week") }
            step = s
        }
        func date(_ text: String?, _ name: String) throws -> Int64? {
            guard let text else { return nil }
            guard let ms = Timestamp.parseDate(text) else { throw CustosError.invalidInput(field: field(name), reason: "\(quoted(text)) is not a date YYYY-MM-DD") }
            return ms
        }
        let today = now - now.modulo(day)
        var end = try date(to, "to") ?? today + day
        var start = try date(from, "from") ?? end - (step == .day ? 28 * day : 12 * step.millis)
        if step == .week {
            // Both are midnights, so day numbers divide exactly. 1970-01-01 was a Thursday:
            // Monday is three days on from it, modulo seven.
            start -= (start / day + 3).modulo(7) * day
            let over = (end / day + 3).modulo(7)
            if over != 0 { end += (7 - over) * day }
        }
        guard end > start else { throw CustosError.invalidInput(field: field("to"), reason: "must be a day after \(field("from"))") }
        let range = TrendRange(from: start, to: end, step: step)
        guard range.count <= maxBuckets else {
            throw CustosError.invalidInput(field: field("to"), reason: "the range holds \(range.count) \(step.rawValue)s; at most \(maxBuckets) fit one report (use \(field("by")) week for a longer range)")
        }
        return range
    }
}

private extension Int64 {
    func modulo(_ n: Int64) -> Int64 { ((self % n) + n) % n }
}

/// What a lead reads over time: series by day or week, and how often each detector's flags are
/// confirmed. Computed from the store's rows alone (no log replay), along indexes that read the
/// range and not every flag (schema 15).
public struct Trends: Sendable {
    public struct Bucket: Sendable {
        public var start: Int64
        /// Decisions made in the bucket, by outcome (`reopen` included).
        public var decisions: [String: Int] = [:]
        /// Flags detected by the end of the bucket and not settled by then (a reopen puts a
        /// settled flag back): both queues, the moderators' and the leads'.
        public var queueDepthAtEnd = 0
        /// Flags whose first decision fell in the bucket, and the median minutes from detection.
        public var firstDecisions = 0
        public var medianMinutesToFirstDecision: Double?
        /// Flags whose first final decision (the one that settled them) fell in the bucket.
        public var finalDecisions = 0
        public var medianMinutesToFinalDecision: Double?
        /// Urgent flags whose SLA ran out in the bucket before a final decision.
        public var urgentBreaches = 0
        /// Cases referred in the bucket by agency: first referrals; a supplement is not counted.
        public var referrals: [String: Int] = [:]
        public var day: String { TrendRange.day(start) }
    }

    /// Confirmed ÷ decided for flags settled in the range (their last final decision in it, and
    /// not reopened since), with the counts, so that a small sample reads as small.
    public struct Precision: Sendable, Equatable {
        public var detector: String
        public var modelVersion: String?
        /// `0.9–1.0` and so on by tenths; nil for an unscored flag, or for a row over all bands.
        public var scoreBand: String?
        public var decided: Int
        public var confirmed: Int
        public var precision: Double { decided == 0 ? 0 : (Double(confirmed) / Double(decided) * 1000).rounded() / 1000 }
    }

    public var range: TrendRange
    public var urgentSLAMinutes: Int
    public var buckets: [Bucket]
    /// Over the whole range: decisions by reviewer, and the medians of its first and final
    /// decisions (the buckets' own medians cannot be combined).
    public var decisionsByReviewer: [String: Int] = [:]
    public var medianMinutesToFirstDecision: Double?
    public var medianMinutesToFinalDecision: Double?
    public var decisionsByOutcome: [String: Int] { buckets.reduce(into: [:]) { t, b in t.merge(b.decisions, uniquingKeysWith: +) } }
    /// By detector, model version and score band.
    public var precision: [Precision]
    /// By detector and model version, over all score bands.
    public var precisionByModelVersion: [Precision]

    static func band(_ tenth: Int64?) -> String? {
        guard let t = tenth else { return nil }
        return String(format: "%.1f-%.1f", Double(t) / 10, Double(t + 1) / 10)
    }

    public var json: JSONValue {
        func counts(_ d: [String: Int]) -> JSONValue { .object(d.mapValues { .integer(Int64($0)) }) }
        func precision(_ p: Precision, band: Bool) -> JSONValue {
            var fields: [(String, JSONValue?)] = [("detector", .string(p.detector)), ("model_version", p.modelVersion.map { .string($0) } ?? .null)]
            if band { fields.append(("score_band", p.scoreBand.map { .string($0) } ?? .string("unscored"))) }
            fields += [("decided", .integer(Int64(p.decided))), ("confirmed", .integer(Int64(p.confirmed))), ("precision", .number(p.precision))]
            return .object(fields)
        }
        return .object([
            ("from", .string(range.fromDay)),
            ("to", .string(range.toDay)),
            ("by", .string(range.step.rawValue)),
            ("urgent_sla_minutes", .integer(Int64(urgentSLAMinutes))),
            ("decisions_by_outcome", counts(decisionsByOutcome)),
            ("decisions_by_reviewer", counts(decisionsByReviewer)),
            ("median_minutes_to_first_decision", medianMinutesToFirstDecision.map { .number($0) } ?? .null),
            ("median_minutes_to_final_decision", medianMinutesToFinalDecision.map { .number($0) } ?? .null),
            ("series", .array(buckets.map { b in
                .object([
                    ("start", .string(b.day)),
                    ("decisions", counts(b.decisions)),
                    ("queue_depth_at_end", .integer(Int64(b.queueDepthAtEnd))),
                    ("first_decisions", .integer(Int64(b.firstDecisions))),
                    ("median_minutes_to_first_decision", b.medianMinutesToFirstDecision.map { .number($0) } ?? .null),
                    ("final_decisions", .integer(Int64(b.finalDecisions))),
                    ("median_minutes_to_final_decision", b.medianMinutesToFinalDecision.map { .number($0) } ?? .null),
                    ("urgent_sla_breaches", .integer(Int64(b.urgentBreaches))),
                    ("referrals_by_agency", counts(b.referrals)),
                ])
            })),
            ("detector_precision", .array(self.precision.map { precision($0, band: true) })),
            ("detector_precision_by_model_version", .array(precisionByModelVersion.map { precision($0, band: false) })),
        ])
    }
}

extension Store {
    /// The series and detector precision over `range` (see `Trends`).
    public func trends(_ range: TrendRange) throws -> Trends {
        try requirePermission(.read)
        let now = clock()
        return try read { db in
            let sla = try settings(db).urgentSLAMinutes
            var buckets = (0..<range.count).map { Trends.Bucket(start: range.start($0)) }
            let args: StatementArguments = ["from": range.from, "to": range.to, "step": range.step.millis]

            // Decisions by outcome; with the flags detected, settled and reopened per bucket, the
            // queue depth at each bucket's end, from the depth at the range's start.
            var settled = [Int](repeating: 0, count: buckets.count), reopened = settled, detected = settled
            for r in try Row.fetchAll(db, sql: """
                SELECT (at_ms - :from) / :step AS b, outcome, final, count(*) AS n FROM decisions INDEXED BY decisions_at
                WHERE at_ms >= :from AND at_ms < :to GROUP BY b, outcome, final
                """, arguments: args) {
                let b: Int = r["b"], outcome: String = r["outcome"], n: Int = r["n"]
                buckets[b].decisions[outcome, default: 0] += n
                if (r["final"] as Int) == 1 { settled[b] += n }
                if outcome == DecisionOutcome.reopen.rawValue { reopened[b] += n }
            }
            for r in try Row.fetchAll(db, sql: """
                SELECT (detected_ms - :from) / :step AS b, count(*) AS n FROM flag_state INDEXED BY flag_state_detected
                WHERE detected_ms >= :from AND detected_ms < :to GROUP BY b
                """, arguments: args) {
                detected[r["b"] as Int] = r["n"]
            }
            var depth = try Int.fetchOne(db, sql: """
                SELECT (SELECT count(*) FROM flag_state INDEXED BY flag_state_detected WHERE detected_ms < :from)
                     - (SELECT count(*) FROM decisions INDEXED BY decisions_at WHERE at_ms < :from AND final = 1)
                     + (SELECT count(*) FROM decisions INDEXED BY decisions_at WHERE at_ms < :from AND outcome = 'reopen')
                """, arguments: args) ?? 0
            for i in buckets.indices {
                depth += detected[i] - settled[i] + reopened[i]
                buckets[i].queueDepthAtEnd = depth
            }

            // Time from detection to each flag's first decision, and to its first final one.
            func minutes(_ sql: String, _ set: (inout Trends.Bucket, Int, Double?) -> Void) throws -> Double? {
                // Tens of thousands of rows a month on a busy store: a cursor (one reused row) read by
                // column index, not an array of rows read by name.
                var spans = [[Int64]](repeating: [], count: buckets.count)
                let rows = try Row.fetchCursor(db, sql: sql, arguments: args)
                while let r = try rows.next() {
                    if let b = range.bucket(r[0]) { spans[b].append(r[1]) }
                }
                for i in buckets.indices { set(&buckets[i], spans[i].count, Stats.medianMinutes(spans[i])) }
                return Stats.medianMinutes(spans.flatMap { $0 })
            }
            let first = try minutes("""
                SELECT d.at_ms, d.at_ms - s.detected_ms AS span FROM decisions d INDEXED BY decisions_at JOIN flag_state s ON s.flag = d.flag
                WHERE d.at_ms >= :from AND d.at_ms < :to AND NOT EXISTS (SELECT 1 FROM decisions e WHERE e.flag = d.flag AND e.id < d.id)
                """) { $0.firstDecisions = $1; $0.medianMinutesToFirstDecision = $2 }
            let final = try minutes("""
                SELECT d.at_ms, d.at_ms - s.detected_ms AS span FROM decisions d INDEXED BY decisions_at JOIN flag_state s ON s.flag = d.flag
                WHERE d.at_ms >= :from AND d.at_ms < :to AND d.final = 1
                  AND NOT EXISTS (SELECT 1 FROM decisions e WHERE e.flag = d.flag AND e.final = 1 AND e.id < d.id)
                """) { $0.finalDecisions = $1; $0.medianMinutesToFinalDecision = $2 }

            // An urgent flag breaches its SLA when the SLA runs out (detection + SLA) before a
            // final decision; counted in the bucket where it ran out, once that time has come.
            let slaMillis = sla * 60_000
            for due in try Int64.fetchAll(db, sql: """
                SELECT s.detected_ms + :sla AS due FROM flag_state s INDEXED BY flag_state_urgent
                WHERE s.urgent = 1 AND s.detected_ms >= :from - :sla AND s.detected_ms < :to - :sla AND s.detected_ms + :sla <= :now
                  AND coalesce((SELECT min(d.at_ms) FROM decisions d WHERE d.flag = s.flag AND d.final = 1), :now + 1) > s.detected_ms + :sla
                """, arguments: ["from": range.from, "to": range.to, "sla": slaMillis, "now": now]) {
                if let b = range.bucket(due) { buckets[b].urgentBreaches += 1 }
            }

            for r in try Row.fetchAll(db, sql: """
                SELECT created_ms, agency FROM referrals WHERE supplements IS NULL AND created_ms >= :from AND created_ms < :to
                """, arguments: args) {
                if let b = range.bucket(r["created_ms"]) { buckets[b].referrals[r["agency"], default: 0] += 1 }
            }

            // Precision: each flag whose last final decision fell in the range and that is
            // settled now (a reopened flag waiting again is not counted until it is settled).
            var precision: [Trends.Precision] = []
            for r in try Row.fetchAll(db, sql: """
                SELECT f.detector, f.model_version,
                       CASE WHEN f.score IS NULL THEN NULL ELSE min(max(CAST(f.score * 10 AS INTEGER), 0), 9) END AS band,
                       count(*) AS decided, sum(d.outcome = 'confirm') AS confirmed
                FROM decisions d INDEXED BY decisions_at JOIN flag_state s ON s.flag = d.flag JOIN flags f ON f.id = d.flag
                WHERE d.at_ms >= :from AND d.at_ms < :to AND d.final = 1 AND s.status IN ('confirmed', 'dismissed')
                  AND NOT EXISTS (SELECT 1 FROM decisions e WHERE e.flag = d.flag AND e.final = 1 AND e.id > d.id)
                GROUP BY f.detector, f.model_version, band ORDER BY f.detector, f.model_version, band
                """, arguments: args) {
                precision.append(Trends.Precision(detector: r["detector"], modelVersion: r["model_version"], scoreBand: Trends.band(r["band"]),
                                                  decided: r["decided"], confirmed: r["confirmed"]))
            }
            var byModel: [Trends.Precision] = []
            for p in precision {
                if let last = byModel.last, last.detector == p.detector, last.modelVersion == p.modelVersion {
                    byModel[byModel.count - 1].decided += p.decided
                    byModel[byModel.count - 1].confirmed += p.confirmed
                } else {
                    byModel.append(Trends.Precision(detector: p.detector, modelVersion: p.modelVersion, scoreBand: nil, decided: p.decided, confirmed: p.confirmed))
                }
            }
            var reviewers: [String: Int] = [:]
            for r in try Row.fetchAll(db, sql: """
                SELECT reviewer, count(*) AS n FROM decisions INDEXED BY decisions_at WHERE at_ms >= :from AND at_ms < :to GROUP BY reviewer
                """, arguments: args) {
                reviewers[r["reviewer"]] = r["n"]
            }
            return Trends(range: range, urgentSLAMinutes: Int(sla), buckets: buckets, decisionsByReviewer: reviewers,
                          medianMinutesToFirstDecision: first, medianMinutesToFinalDecision: final,
                          precision: precision, precisionByModelVersion: byModel)
        }
    }
}
