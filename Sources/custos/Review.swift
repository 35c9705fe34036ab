import ArgumentParser
import CustosCore
import CustosStore
import Foundation

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage users (admins).",
                                                    subcommands: [UserAdd.self, UserList.self, UserDisable.self])
}

struct UserAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a user with a role.")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    @Option(help: "moderator, lead, compliance or admin.") var role: String

    func run() throws {
        try guarded {
            guard let r = Role(rawValue: role) else { throw CLIError("unknown role \(quoted(role)): use moderator, lead, compliance or admin", code: 64) }
            try global.open().addUser(name: name, role: r)
            print("added \(name) as \(r.rawValue)")
        }
    }
}

struct UserList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List users.")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false

    func run() throws {
        try guarded {
            let users = try global.open().users()
            if json {
                printJSON(.array(users.map { .object(["name": .string($0.name), "role": .string($0.role.rawValue), "disabled": .bool($0.disabled), "created_at": .string($0.createdAt)]) }))
            } else {
                for u in users { print(pad(u.name, 20) + pad(u.role.rawValue, 12) + (u.disabled ? "disabled" : "active")) }
            }
        }
    }
}

struct UserDisable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable a user (their claims return to the queue).")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    func run() throws { try guarded { try global.open().disableUser(name: name); print("disabled \(name)") } }
}

struct SettingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "settings", abstract: "Review settings (admins change them).",
                                                    subcommands: [SettingsList.self, SettingsSet.self])
}

struct SettingsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list")
    @OptionGroup var global: GlobalOptions
    func run() throws { try guarded { for (k, v) in try global.open().settings() { print("\(k) = \(v)") } } }
}

struct SettingsSet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "second-review required|off, lease-minutes N, urgent-sla-minutes N.")
    @OptionGroup var global: GlobalOptions
    @Argument var key: String
    @Argument var value: String
    func run() throws { try guarded { try global.open().setSetting(key, value); print("\(key) = \(value)") } }
}

struct Queue: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open, unclaimed flags in priority order (urgent, score, oldest).")
    @OptionGroup var global: GlobalOptions
    @Option var limit: Int = 20
    @Flag(help: "The lead queue (escalations and disagreements).") var lead = false
    @Flag var json = false

    func run() throws {
        try guarded {
            let items = try global.open().queue(limit: max(0, limit), lead: lead)
            if json {
                printJSON(.array(items.map { .object([
                    ("flag", .string($0.key)), ("status", .string($0.status)), ("urgent", .bool($0.urgent)),
                    ("urgent_reason", $0.urgentReason.map { .string($0) }), ("score", $0.score.map { .number($0) }),
                    ("detected_at", .string($0.detectedAt)), ("platform", .string($0.platform))]) }))
                return
            }
            if items.isEmpty { print("queue is empty"); return }
            for i in items {
                print(pad(terminalSafe(i.key), 42) + pad(i.status, 15) + pad(i.score.map { String(format: "%.2f", $0) } ?? "-", 6)
                      + pad(i.detectedAt, 27) + (i.urgent ? "URGENT: \(terminalSafe(i.urgentReason ?? ""))" : ""))
            }
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
        try guarded {
            let c = try global.open().claim(flag, for: assignee)
            if json {
                printJSON(.object(["flag_id": .string(c.key), "holder": .string(c.holder), "lease_expires": .string(c.expiresAt), "status": .string(c.status)]))
            } else {
                print("claimed \(terminalSafe(c.key)) (\(c.status)) until \(c.expiresAt)")
            }
        }
    }
}

struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Release a claim (yours, or anyone's for a lead).")
    @OptionGroup var global: GlobalOptions
    @Argument var flag: String
    func run() throws { try guarded { try global.open().release(flag); print("released \(terminalSafe(flag))") } }
}

struct Decide: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Record a decision on a flag you hold: confirm, dismiss or escalate.")
    @OptionGroup var global: GlobalOptions
    @Argument var flag: String
    @Option(help: "confirm, dismiss or escalate.") var outcome: String
    @Option(help: "Why (required; recorded in the custody log and the referral).") var reason: String
    @Option(help: "Required to confirm: \(Category.allCases.map(\.rawValue).joined(separator: ", ")).") var category: String?
    @Option(help: "Imminent risk to a child: puts the flag ahead of every queue and into the referral.") var urgent: String?
    @Option(parsing: .upToNextOption, help: "sextortion, csam-solicitation, minor-to-minor.") var annotation: [String] = []

    func run() throws {
        try guarded {
            guard let o = Outcome(rawValue: outcome) else { throw CLIError("unknown outcome \(quoted(outcome)): use confirm, dismiss or escalate", code: 64) }
            var cat: Category?
            if let category {
                guard let c = Category(rawValue: category) else {
                    throw CLIError("unknown category \(quoted(category)): use \(Category.allCases.map(\.rawValue).joined(separator: ", "))", code: 64)
                }
                cat = c
            }
            let anns = try annotation.map { a -> Annotation in
                guard let x = Annotation(rawValue: a) else { throw CLIError("unknown annotation \(quoted(a)): use sextortion, csam-solicitation or minor-to-minor", code: 64) }
                return x
            }
            let r = try global.open().decide(flag, outcome: o, reason: reason, category: cat, urgent: urgent, annotations: anns)
            print("\(terminalSafe(r.key)): \(r.note) → \(r.status.rawValue)" + (r.caseID.map { "; filed in case \($0)" } ?? ""))
        }
    }
}

struct Reopen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reopen a dismissed flag (leads).")
    @OptionGroup var global: GlobalOptions
    @Argument var flag: String
    @Option var reason: String
    func run() throws { try guarded { try global.open().reopen(flag, reason: reason); print("reopened \(terminalSafe(flag))") } }
}

struct CaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "case", abstract: "Cases: confirmed flags grouped by reported account.",
                                                    subcommands: [CaseList.self, CaseShow.self, CaseMerge.self, CaseSplit.self])
}

func caseJSON(_ c: CaseSummary) -> JSONValue {
    .object(["case_id": .string(c.caseID), "state": .string(c.state), "platform": .string(c.platform),
             "reported_accounts": .array(c.reportedAccounts.map { .string($0) }), "flags": .integer(Int64(c.flagCount)),
             "agencies": .array(c.agencies.map { .object(["agency": .string($0.code), "served": .bool($0.served), "reason": .string($0.reason)]) }),
             "created_at": .string(c.createdAt)])
}

struct CaseList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false
    func run() throws {
        try guarded {
            let cases = try global.open().cases()
            if json { printJSON(.array(cases.map(caseJSON))); return }
            for c in cases {
                let agencies = c.agencies.map { $0.code + ($0.served ? "✓" : "") }.joined(separator: ",")
                print(pad(c.caseID, 10) + pad(c.state, 10) + pad(terminalSafe(c.platform), 14) + pad("\(c.flagCount) flags", 10)
                      + pad(terminalSafe(c.reportedAccounts.joined(separator: ",")), 24) + agencies)
            }
        }
    }
}

struct CaseShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "A case: people, flags, decisions and the full custody timeline.")
    @OptionGroup var global: GlobalOptions
    @Argument var caseID: String
    func run() throws {
        try guarded {
            let d = try global.open().caseDetail(caseID)
            let s = d.summary
            print("Case \(s.caseID)  \(s.state)  platform \(terminalSafe(s.platform))  opened \(s.createdAt)")
            if let c = d.category { print("Category: \(c)") }
            if !d.annotations.isEmpty { print("Annotations: \(d.annotations.joined(separator: ", "))") }
            for u in d.urgentReasons { print("URGENT: \(terminalSafe(u))") }
            print("Agencies:")
            for a in s.agencies { print("  \(a.code) \(a.served ? "served" : "not yet served") (\(a.reason))") }
            print("Reported persons:")
            for p in d.reported { print("  \(terminalSafe(p.userID)) @\(terminalSafe(p.screenName ?? "-")) \(p.country ?? "")") }
            print("Victims:")
            for p in d.victims { print("  \(terminalSafe(p.userID)) @\(terminalSafe(p.screenName ?? "-")) age \(p.statedAge.map(String.init) ?? "?") \(p.country ?? "")") }
            print("Flags:")
            for f in d.flags { print("  \(terminalSafe(f.key)) \(f.conversation.messages.count) messages evidence \(f.evidenceHash.prefix(16))") }
            print("Decisions:")
            for x in d.decisions {
                print("  \(x.at) \(terminalSafe(x.reviewer)) \(x.outcome) \(terminalSafe(x.flagKey)) [\(x.stage)\(x.final ? ", final" : "")] \(x.category ?? "") — \(terminalSafe(x.reason))")
            }
            print("Timeline (custody log):")
            for e in d.timeline {
                print("  #\(e.seq) \(e.at) \(terminalSafe(e.actor))\(e.actor != e.osUser ? " (as asserted by \(terminalSafe(e.osUser)))" : "") \(e.action) \(terminalSafe(e.subjectID)) \(terminalSafe(e.details))")
            }
        }
    }
}

struct CaseMerge: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "merge", abstract: "Merge case B into case A (compliance).")
    @OptionGroup var global: GlobalOptions
    @Argument var a: String
    @Argument var b: String
    func run() throws { try guarded { try global.open().mergeCases(a, b); print("merged \(b) into \(a)") } }
}

struct CaseSplit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "split", abstract: "Move flags out of a case into a new case (compliance).")
    @OptionGroup var global: GlobalOptions
    @Argument var caseID: String
    @Option(parsing: .upToNextOption) var flags: [String]
    func run() throws { try guarded { print("split into \(try global.open().splitCase(caseID, flags: flags))") } }
}

struct AgencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agency", abstract: "Receiving agencies and routing rules.",
                                                    subcommands: [AgencyList.self, AgencyAdd.self, AgencySet.self])
}

struct AgencyList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false
    func run() throws {
        try guarded {
            let list = try global.open().agencies()
            if json {
                printJSON(.array(list.map { .object(["code": .string($0.code), "name": .string($0.name), "jurisdictions": .array($0.jurisdictions.map { .string($0) }),
                                                     "profile": .string($0.profile), "route": .string($0.route), "retention_days": .integer(Int64($0.retentionDays))]) }))
                return
            }
            for a in list {
                print(pad(a.code, 8) + pad(a.jurisdictions.joined(separator: ","), 8) + pad(a.route, 14) + pad(a.profile, 14) + pad("\(a.retentionDays)d", 6) + a.name)
            }
        }
    }
}

struct AgencyAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add")
    @OptionGroup var global: GlobalOptions
    @Argument var code: String
    @Option var name: String
    @Option(help: "Comma-separated ISO country codes.") var jurisdictions: String
    @Option var profile: String = "generic"
    @Option(help: "always, jurisdiction or never.") var route: String = "jurisdiction"
    @Option(name: .customLong("retention-days")) var retentionDays: Int = 365
    func run() throws {
        try guarded {
            try global.open().addAgency(code: code, name: name, jurisdictions: jurisdictions.split(separator: ",").map(String.init),
                                        profile: profile, route: route, retentionDays: retentionDays)
            print("added agency \(code)")
        }
    }
}

struct AgencySet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set")
    @OptionGroup var global: GlobalOptions
    @Argument var code: String
    @Option var name: String?
    @Option var jurisdictions: String?
    @Option var profile: String?
    @Option var route: String?
    @Option(name: .customLong("retention-days")) var retentionDays: Int?
    func run() throws {
        try guarded {
            try global.open().setAgency(code: code, name: name, jurisdictions: jurisdictions.map { $0.split(separator: ",").map(String.init) },
                                        profile: profile, route: route, retentionDays: retentionDays)
            print("updated agency \(code)")
        }
    }
}

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Queue, timing, decision and case figures.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only flags detected / decisions made since YYYY-MM-DD.") var since: String?
    @Flag var json = false
    func run() throws {
        try guarded {
            var from: Int64?
            if let since {
                guard let d = Timestamp.parseDate(since) else { throw CLIError("--since must be YYYY-MM-DD, got \(quoted(since))", code: 64) }
                from = d
            }
            let s = try global.open().stats(since: from)
            func obj(_ d: [String: Int]) -> JSONValue { .object(d.mapValues { .integer(Int64($0)) }) }
            let j: JSONValue = .object([
                ("queue_depth", .integer(Int64(s.queueDepth))), ("lead_queue_depth", .integer(Int64(s.leadQueueDepth))),
                ("oldest_queued_minutes", s.oldestQueuedAgeMinutes.map { .integer($0) }),
                ("median_minutes_to_first_decision", s.medianMinutesToFirstDecision.map { .number($0) }),
                ("median_minutes_to_final_decision", s.medianMinutesToFinalDecision.map { .number($0) }),
                ("decisions_by_outcome", obj(s.decisionsByOutcome)), ("decisions_by_reviewer", obj(s.decisionsByReviewer)),
                ("cases_by_state", obj(s.casesByState)), ("cases_by_agency", obj(s.casesByAgency)),
                ("urgent_sla_minutes", .integer(Int64(s.urgentSLAMinutes))), ("urgent_sla_breaches", .array(s.urgentBreaches.map { .string($0) })),
            ])
            if json { printJSON(j); return }
            for (k, v) in j.objectValue!.sorted(by: { $0.key < $1.key }) { print("\(k): \(v.canonicalString)") }
        }
    }
}
