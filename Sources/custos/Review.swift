import ArgumentParser
import CustosCore
import CustosPackets
import CustosStore
import Foundation

struct Flags: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List stored flags.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "One JSON array for scripts.") var json = false
    @Option(help: "At most this many.") var limit: Int?

    func run() throws {
        let flags = try global.open(.read).flags(limit: limit)
        if json {
            printJSON(.array(flags.map { f in .object([
                ("flag", .string(f.key)), ("flag_id", .string(f.flagID)), ("detector", .string(f.detector)),
                ("score", f.score.map { .number($0) }), ("status", .string(f.status.rawValue)), ("platform", .string(f.platform)),
                ("messages", .integer(Int64(f.messageCount))), ("evidence_hash", .string(f.evidenceHash)),
                ("detected_at", .string(f.detectedAt)), ("urgent", .bool(f.urgent)),
            ]) }))
            return
        }
        print(pad("FLAG", 34) + pad("DETECTOR", 10) + pad("SCORE", 7) + pad("STATUS", 14) + pad("PLATFORM", 14) + pad("MSGS", 6) + "EVIDENCE")
        for f in flags {
            print(pad(terminalSafe(f.flagID), 34) + pad(terminalSafe(f.detector), 10) + pad(f.score.map { String(format: "%.2f", $0) } ?? "-", 7)
                  + pad(f.status.rawValue + (f.urgent ? "!" : ""), 14) + pad(terminalSafe(f.platform), 14) + pad(String(f.messageCount), 6)
                  + String(f.evidenceHash.prefix(12)))
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a flag's conversation as a transcript (the read is logged in the custody log).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "FLAG: detector:flag_id, or a flag_id used by one detector.") var flag: String
    @Option(help: "Why you are reading it (recorded).") var purpose: String = "review"
    @Flag(help: "Print the conversation's canonical JSON (the evidence-hash input) instead.") var canonical = false
    @Flag(help: "JSON: the flag, its conversation and each attachment's SHA-256, MD5 and PDQ (or why not).") var json = false

    func run() throws {
        if json {
            let store = try global.open()
            let v = try store.reviewFlag(flag, purpose: purpose, hashes: true)
            let history = try store.accountHistory(flag: flag)
            let f = v.flag
            let conversation = (try? JSONValue.parse(Array(f.canonicalConversation))) ?? .null
            printJSON(.object([
                ("flag", .string(f.key)), ("detector", .string(f.detector)), ("flag_id", .string(f.flagID)), ("platform", .string(f.platform)),
                ("status", .string(v.review.status.rawValue)), ("evidence_hash", .string(f.evidenceHash)), ("conversation", conversation),
                ("attachments", .array(f.conversation.messages.flatMap { m in m.attachments.map { a in
                    let h = v.attachmentHashes[a.sha256]
                    return JSONValue.object([
                        ("message_id", .string(m.id)), ("sha256", .string(a.sha256)), ("size", .integer(a.size)),
                        ("name", a.name.map(JSONValue.string)), ("media_type", a.mediaType.map(JSONValue.string)),
                        ("stored", .bool(h != nil)), ("md5", h.map { .string($0.md5) }), ("pdq", h?.pdq.map { .string($0.hex) }),
                        ("pdq_quality", h?.pdq.map { .integer(Int64($0.quality)) }), ("not_hashed", h?.notHashed.map(JSONValue.string)),
                        ("matches", .array((v.matches[a.sha256] ?? []).map(\.json))),
                    ])
                } })),
                ("account_history", .array(history.map(\.json))),
            ]))
            return
        }
        let f = try global.open().readFlag(flag, purpose: purpose)
        if canonical { writeExact(f.canonicalConversation); return }
        print(Transcript.render(f, terminal: true))
    }
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The other flags about each account a flag names: settled outcomes, cases, referrals, NCMEC reports, platform actions (no text).")
    @OptionGroup var global: GlobalOptions
    @Argument var flag: String?
    @Option(help: "At most this many other flags per account, the latest first.") var limit = 20
    @Flag var json = false
    @Option(help: .hidden) var measure: Int?
    func run() throws {
        let store = try global.open(.read)
        if let n = measure {
            let ms = try store.measureAccountHistory(samples: n)
            guard !ms.isEmpty else { throw CustosError.invalidState(subject: "the store", state: "empty", reason: "no flag to measure") }
            func at(_ p: Double) -> Double { ms[min(ms.count - 1, Int((p * Double(ms.count - 1)).rounded()))] }
            print(String(format: "account history of %d flags: median %.2f ms, p99 %.2f ms, max %.2f ms", ms.count, at(0.5), at(0.99), ms.last ?? 0))
            return
        }
        guard let flag else { throw CustosError.invalidInput(field: "FLAG", reason: "name a flag (detector:flag_id)") }
        let history = try store.accountHistory(flag: flag, limit: max(1, min(limit, 1000)))
        if json { printJSON(.array(history.map(\.json))); return }
        for h in history {
            print("\(terminalSafe(h.userID)) on \(terminalSafe(h.platform)) (\(h.roleHint ?? "role unknown")): \(h.total) other flag\(h.total == 1 ? "" : "s")")
            for f in h.flags {
                let facts = [f.caseID.map { "case \($0) \(f.caseState ?? "")" }].compactMap { $0 } + f.referrals + f.reports + f.actions
                print("  \(terminalSafe(f.key)) detected \(f.detectedAt): \(f.outcome)\(f.decidedAt.map { " \($0)" } ?? "")\(f.category.map { " (\($0))" } ?? "")"
                      + facts.map { "; " + terminalSafe($0) }.joined())
            }
        }
    }
}

struct Queue: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open, unclaimed flags in priority order (urgent, score, oldest).")
    @OptionGroup var global: GlobalOptions
    @Option var limit: Int = 20
    @Flag(help: "The lead queue (escalations and disagreements).") var lead = false
    @Flag var json = false

    func run() throws {
        let items = try global.open(.read).queue(limit: max(0, limit), lead: lead)
        if json {
            printJSON(.array(items.map { .object([
                ("flag", .string($0.key)), ("status", .string($0.status.rawValue)), ("urgent", .bool($0.urgent)),
                ("urgent_reason", $0.urgentReason.map { .string($0) }), ("score", $0.score.map { .number($0) }),
                ("detected_at", .string($0.detectedAt)), ("platform", .string($0.platform))]) }))
            return
        }
        if items.isEmpty { print("queue is empty"); return }
        for i in items {
            print(pad(terminalSafe(i.key), 42) + pad(i.status.rawValue, 15) + pad(i.score.map { String(format: "%.2f", $0) } ?? "-", 6)
                  + pad(i.detectedAt, 27) + (i.urgent ? "URGENT: \(terminalSafe(i.urgentReason ?? ""))" : ""))
        }
    }
}

struct ClaimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "claim", abstract: "Claim the next flag in your queue, or the named one, under a lease; a lead can hand one to a reviewer with --for.")
    @OptionGroup var global: GlobalOptions
    @Argument var flag: String?
    @Option(name: .customLong("for"), help: "Leads: hand the named flag to this reviewer (reassign).") var assignee: String?
    @Flag var json = false

    func run() throws {
        let c = try global.open().claim(flag, for: assignee)
        if json {
            printJSON(.object(["flag_id": .string(c.key), "holder": .string(c.holder), "lease_expires": .string(c.expiresAt), "status": .string(c.status.rawValue)]))
        } else {
            print("claimed \(terminalSafe(c.key)) (\(c.status.rawValue)) until \(c.expiresAt)")
        }
    }
}

struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Release a claim (yours, or anyone's for a lead).")
    @OptionGroup var global: GlobalOptions
    @Argument var flag: String
    func run() throws { try global.open().release(flag); print("released \(terminalSafe(flag))") }
}

struct Decide: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Record a decision on a flag you hold: confirm, dismiss or escalate.")
    @OptionGroup var global: GlobalOptions
    @Argument var flag: String
    @Option(help: "confirm, dismiss or escalate.") var outcome: Outcome
    @Option(help: "Why (required; recorded in the custody log and the referral).") var reason: String
    @Option(help: "Required to confirm: \(Category.allCases.map(\.rawValue).joined(separator: ", ")).") var category: Category?
    @Option(help: "Imminent risk to a child: puts the flag ahead of every queue and into the referral.") var urgent: String?
    @Option(parsing: .upToNextOption, help: "sextortion, csam-solicitation, minor-to-minor.") var annotation: [Annotation] = []

    func run() throws {
        let r = try global.open().decide(flag, outcome: outcome, reason: reason, category: category, urgent: urgent, annotations: annotation)
        print("\(terminalSafe(r.key)): \(r.note) → \(r.status.rawValue)" + (r.caseID.map { "; filed in case \($0)" } ?? ""))
    }
}

struct Reopen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reopen a dismissed flag (leads).")
    @OptionGroup var global: GlobalOptions
    @Argument var flag: String
    @Option var reason: String
    func run() throws { try global.open().reopen(flag, reason: reason); print("reopened \(terminalSafe(flag))") }
}

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Queue, timing, decision and case figures, and their trends by day or week.",
        discussion: """
            The figures of now, then series over a range (by default the last 28 days by day): \
            decisions by outcome, queue depth at the end of each day or week, median time to first \
            and final decision, urgent SLA breaches, referrals by agency; and detector precision \
            (confirmed / decided) by detector, model version and score band, with the counts.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "Figures of now: only flags detected / decisions made since YYYY-MM-DD.") var since: String?
    @Option(help: "Trends: the first day, YYYY-MM-DD (UTC).") var from: String?
    @Option(help: "Trends: the day after the last, YYYY-MM-DD (UTC); default tomorrow.") var to: String?
    @Option(help: "Trends: day or week (weeks run Monday to Sunday).") var by: String?
    @Flag var json = false
    func run() throws {
        var since: Int64?
        if let text = self.since {
            guard let d = Timestamp.parseDate(text) else { throw CLIError("--since must be YYYY-MM-DD, got \(quoted(text))", code: 64) }
            since = d
        }
        let store = try global.open(.read)
        let range = try TrendRange.parse(from: from, to: to, by: by, now: store.clock())
        let s = try store.stats(since: since)
        let trends = try store.trends(range)
        func obj(_ d: [String: Int]) -> JSONValue { .object(d.mapValues { .integer(Int64($0)) }) }
        let j: JSONValue = .object([
            ("queue_depth", .integer(Int64(s.queueDepth))), ("lead_queue_depth", .integer(Int64(s.leadQueueDepth))),
            ("oldest_queued_minutes", s.oldestQueuedAgeMinutes.map { .integer($0) }),
            ("median_minutes_to_first_decision", s.medianMinutesToFirstDecision.map { .number($0) }),
            ("median_minutes_to_final_decision", s.medianMinutesToFinalDecision.map { .number($0) }),
            ("decisions_by_outcome", obj(s.decisionsByOutcome)), ("decisions_by_reviewer", obj(s.decisionsByReviewer)),
            ("cases_by_state", obj(s.casesByState)), ("cases_by_agency", obj(s.casesByAgency)),
            ("urgent_sla_minutes", .integer(Int64(s.urgentSLAMinutes))), ("urgent_sla_breaches", .array(s.urgentBreaches.map { .string($0) })),
            ("dead_platform_actions", .integer(Int64(s.deadActions))),
            ("trends", trends.json),
        ])
        if json { printJSON(j); return }
        for (k, v) in j.objectValue!.sorted(by: { $0.key < $1.key }) where k != "trends" { print("\(k): \(v.canonicalString)") }
        print("")
        print("trends by \(range.step.rawValue), \(range.fromDay) to \(range.toDay) (exclusive):")
        let outcomes = DecisionOutcome.allCases.map(\.rawValue)
        let agencies = Set(trends.buckets.flatMap(\.referrals.keys)).sorted()
        func minutes(_ m: Double?) -> String { m.map { String($0) } ?? "-" }
        print(pad("start", 11) + outcomes.map { pad($0, 9) }.joined() + pad("depth", 9) + pad("first", 7) + pad("median", 8)
              + pad("final", 7) + pad("median", 8) + pad("breaches", 9) + agencies.map { pad(terminalSafe($0), 9) }.joined())
        for b in trends.buckets {
            print(pad(b.day, 11) + outcomes.map { pad(String(b.decisions[$0] ?? 0), 9) }.joined() + pad(String(b.queueDepthAtEnd), 9)
                  + pad(String(b.firstDecisions), 7) + pad(minutes(b.medianMinutesToFirstDecision), 8)
                  + pad(String(b.finalDecisions), 7) + pad(minutes(b.medianMinutesToFinalDecision), 8)
                  + pad(String(b.urgentBreaches), 9) + agencies.map { pad(String(b.referrals[$0] ?? 0), 9) }.joined())
        }
        print("")
        print("detector precision (confirmed / decided, flags settled in the range):")
        for p in trends.precision {
            print("  " + pad(terminalSafe(p.detector), 12) + pad(terminalSafe(p.modelVersion ?? "-"), 12) + pad(p.scoreBand ?? "unscored", 10)
                  + "\(p.confirmed)/\(p.decided) = \(p.precision)")
        }
        for p in trends.precisionByModelVersion {
            print("  " + pad(terminalSafe(p.detector), 12) + pad(terminalSafe(p.modelVersion ?? "-"), 12) + pad("all", 10)
                  + "\(p.confirmed)/\(p.decided) = \(p.precision)")
        }
    }
}

extension Outcome: ExpressibleByArgument {}
extension CustosCore.Category: ExpressibleByArgument {}
extension Annotation: ExpressibleByArgument {}
extension Role: ExpressibleByArgument {}

struct Transparency: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A transparency report for a period, counted from the custody log alone (anyone holding the log recomputes it).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "First day, YYYY-MM-DD (UTC).") var from: String
    @Option(help: "Day after the last, YYYY-MM-DD (UTC).") var to: String
    @Flag var json = false
    @Option(help: "Also write the report as an HTML page to this new file.") var html: String?

    func run() throws {
        guard let f = Timestamp.parseDate(from) else { throw CustosError.invalidInput(field: "--from", reason: "\(quoted(from)) is not YYYY-MM-DD") }
        guard let t = Timestamp.parseDate(to), t > f else { throw CustosError.invalidInput(field: "--to", reason: "\(quoted(to)) is not a YYYY-MM-DD after --from") }
        let report = TransparencyReport.make(try global.open(.read).custodyEntries(), fromMillis: f, toMillis: t)
        if let html {
            try InputPath.requireRegularFile(html, role: "--html", mayBeMissing: true)
            let rows = report.rows.map { "<tr><th scope=\"row\">\(Escape.html($0.0))</th><td>\(Escape.html($0.1))</td></tr>" }.joined(separator: "\n")
            let page = """
                <!DOCTYPE html>
                <html lang="en"><head><meta charset="utf-8"><title>Transparency report</title></head>
                <body><main><h1>Transparency report</h1>
                <p>Counted from the custody log of \(Escape.html(try global.open(.read).organisation().name)); anyone holding the log can recompute every figure.</p>
                <table>\n\(rows)\n</table></main></body></html>

                """
            do { try Data(page.utf8).write(to: URL(fileURLWithPath: html), options: .withoutOverwriting) } catch {
                throw CustosError.conflict(subject: html, reason: "cannot be written (it may exist already): \(error.localizedDescription)")
            }
        }
        if json { printJSON(report.json); return }
        for (label, value) in report.rows { print(pad(label, 42) + terminalSafe(value)) }
    }
}
