import Foundation

/// A transparency report for a period, counted from the custody log alone (a pure fold), so a
/// third party holding the log recomputes the same figures: the shape platforms publish under
/// the EU DSA (Art. 15, 24) and the UK Online Safety Act.
public struct TransparencyReport: Sendable, Equatable {
    public var from: String
    public var to: String
    public var flagsReceived = 0
    /// Final decisions by outcome (confirm, dismiss), and escalations to a lead.
    public var finalDecisions: [String: Int] = [:]
    public var escalations = 0
    public var reopened = 0
    /// Median time from ingest to final decision, over flags finally decided in the period.
    public var medianSecondsToDecision: Int64?
    public var referralsByAgency: [String: Int] = [:]
    public var receiptsByAgency: [String: Int] = [:]
    /// Preservation holds running at the end of the period.
    public var activeHolds = 0
    public var erasures = 0

    /// Folds the log's entries (in order) into the report for [from, to).
    public static func make(_ entries: some Sequence<CustodyEntry>, fromMillis: Int64, toMillis: Int64) -> TransparencyReport {
        var r = TransparencyReport(from: Timestamp.utcString(millis: fromMillis), to: Timestamp.utcString(millis: toMillis))
        var ingestedAt: [String: Int64] = [:]
        var durations: [Int64] = []
        var holds: [String: Int64] = [:]
        for e in entries {
            guard let at = Timestamp.parse(e.at)?.epochMillis, at < toMillis, let action = CustodyAction(rawValue: e.action) else { continue }
            let inPeriod = at >= fromMillis
            switch action {
            case .flagIngest:
                ingestedAt[e.subjectID] = at
                if inPeriod { r.flagsReceived += 1 }
            case .flagDecide, .flagReopen, .caseExport, .referralReceipt, .evidencePurge:
                guard case .object(let d)? = try? JSONValue.parse(Array(e.details.utf8)) else { continue }
                switch action {
                case .flagDecide:
                    guard inPeriod else { continue }
                    if d["outcome"]?.stringValue == Outcome.escalate.rawValue { r.escalations += 1 }
                    if case .bool(true)? = d["final"], let outcome = d["outcome"]?.stringValue {
                        r.finalDecisions[outcome, default: 0] += 1
                        if let start = ingestedAt[e.subjectID] { durations.append((at - start) / 1000) }
                    }
                case .flagReopen:
                    if inPeriod { r.reopened += 1 }
                case .caseExport:
                    if let agency = d["agency"]?.stringValue, inPeriod { r.referralsByAgency[agency, default: 0] += 1 }
                    if let packet = d["packet"]?.stringValue, let until = d["hold_until"]?.stringValue.flatMap(Timestamp.parse) {
                        holds[packet] = until.epochMillis
                    }
                case .referralReceipt:
                    if let agency = d["agency"]?.stringValue, inPeriod { r.receiptsByAgency[agency, default: 0] += 1 }
                case .evidencePurge:
                    if inPeriod { r.erasures += 1 }
                default: break
                }
            default: break
            }
        }
        durations.sort()
        if !durations.isEmpty {
            let n = durations.count
            r.medianSecondsToDecision = n % 2 == 1 ? durations[n / 2] : (durations[n / 2 - 1] + durations[n / 2]) / 2
        }
        r.activeHolds = holds.values.filter { $0 > toMillis }.count
        return r
    }

    public var json: JSONValue {
        .object([
            ("period", .object(["from": .string(from), "to": .string(to)])),
            ("flags_received", .integer(Int64(flagsReceived))),
            ("final_decisions", .object(finalDecisions.mapValues { .integer(Int64($0)) })),
            ("escalations", .integer(Int64(escalations))), ("reopened", .integer(Int64(reopened))),
            ("median_seconds_to_final_decision", medianSecondsToDecision.map { .integer($0) } ?? .null),
            ("referrals_by_agency", .object(referralsByAgency.mapValues { .integer(Int64($0)) })),
            ("receipts_by_agency", .object(receiptsByAgency.mapValues { .integer(Int64($0)) })),
            ("active_holds_at_end", .integer(Int64(activeHolds))), ("erasures", .integer(Int64(erasures))),
        ])
    }

    /// The rows a reader sees, in order (the terminal and the HTML show these).
    public var rows: [(String, String)] {
        var rows: [(String, String)] = [("Period", "\(from) to \(to)"), ("Flags received", String(flagsReceived))]
        for (o, n) in finalDecisions.sorted(by: { $0.key < $1.key }) { rows.append(("Final decisions: \(o)", String(n))) }
        rows += [("Escalations to a lead", String(escalations)), ("Dismissals reopened", String(reopened)),
                 ("Median time from flag to final decision", medianSecondsToDecision.map { Self.duration($0) } ?? "–")]
        for (a, n) in referralsByAgency.sorted(by: { $0.key < $1.key }) { rows.append(("Referrals to \(a)", String(n))) }
        for (a, n) in receiptsByAgency.sorted(by: { $0.key < $1.key }) { rows.append(("Receipts from \(a)", String(n))) }
        rows += [("Preservation holds running at the end", String(activeHolds)), ("Evidence erasures", String(erasures))]
        return rows
    }

    static func duration(_ s: Int64) -> String {
        s < 3600 ? "\(s / 60) min \(s % 60) s" : "\(s / 3600) h \(s % 3600 / 60) min"
    }
}
