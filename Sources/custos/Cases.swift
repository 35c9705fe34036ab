import ArgumentParser
import CustosCore
import CustosStore
import Foundation

struct CaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "case", abstract: "Cases: confirmed flags grouped by reported account.",
                                                    subcommands: [CaseList.self, CaseShow.self, CaseMerge.self, CaseSplit.self])
}

func caseJSON(_ c: CaseSummary) -> JSONValue {
    .object(["case_id": .string(c.caseID), "state": .string(c.state.rawValue), "platform": .string(c.platform),
             "reported_accounts": .array(c.reportedAccounts.map { .string($0) }), "flags": .integer(Int64(c.flagCount)),
             "agencies": .array(c.agencies.map { .object(["agency": .string($0.code), "served": .bool($0.served), "reason": .string($0.reason)]) }),
             "created_at": .string(c.createdAt)])
}

struct CaseList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false
    func run() throws {
        let cases = try global.open(.read).cases()
        if json { printJSON(.array(cases.map(caseJSON))); return }
        for c in cases {
            let agencies = c.agencies.map { $0.code + ($0.served ? "✓" : "") }.joined(separator: ",")
            print(pad(c.caseID, 10) + pad(c.state.rawValue, 10) + pad(terminalSafe(c.platform), 14) + pad("\(c.flagCount) flags", 10)
                  + pad(terminalSafe(c.reportedAccounts.joined(separator: ",")), 24) + agencies)
        }
    }
}

struct CaseShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "A case: people, flags, decisions and the full custody timeline.")
    @OptionGroup var global: GlobalOptions
    @Argument var caseID: String
    func run() throws {
        let d = try global.open().caseDetail(caseID)
        let s = d.summary
        print("Case \(s.caseID)  \(s.state.rawValue)  platform \(terminalSafe(s.platform))  opened \(s.createdAt)")
        if let c = d.category { print("Category: \(c.rawValue)") }
        if !d.annotations.isEmpty { print("Annotations: \(d.annotations.joined(separator: ", "))") }
        for u in d.urgentReasons { print("URGENT: \(terminalSafe(u))") }
        print("Agencies:")
        for a in s.agencies { print("  \(a.code) \(a.served ? "served" : "not yet served") (\(a.reason))") }
        print("Reported persons:")
        for person in d.reported {
            let p = person.participant
            print("  \(terminalSafe(p.userID)) @\(terminalSafe(p.screenName ?? "-")) \(terminalSafe(p.country ?? "")) on \(terminalSafe(person.platform))")
        }
        print("Victims:")
        for person in d.victims {
            let p = person.participant
            print("  \(terminalSafe(p.userID)) @\(terminalSafe(p.screenName ?? "-")) age \(p.statedAge.map(String.init) ?? "?") \(terminalSafe(p.country ?? "")) on \(terminalSafe(person.platform))")
        }
        print("Flags:")
        for f in d.flags { print("  \(terminalSafe(f.key)) \(f.conversation.messages.count) messages evidence \(f.evidenceHash.prefix(16))") }
        for e in d.erased { print("  \(terminalSafe(e))") }
        print("Decisions:")
        for x in d.decisions {
            print("  \(x.at) \(terminalSafe(x.reviewer)) \(x.outcome.rawValue) \(terminalSafe(x.flagKey)) [\(x.stage.rawValue)\(x.final ? ", final" : "")] \(x.category?.rawValue ?? "") — \(terminalSafe(x.reason))")
        }
        print("Platform actions:")
        let store = try global.open(.read)
        let actions = try store.actionRequests(caseName: caseID)
        if actions.isEmpty { print("  none requested") }
        for a in actions { print("  \(terminalSafe(a.flag ?? a.caseID ?? "")) \(terminalSafe(a.words))") }
        print("Timeline (custody log):")
        for e in d.timeline {
            print("  #\(e.seq) \(e.at) \(terminalSafe(e.actor))\(e.actor != e.osUser ? " (as asserted by \(terminalSafe(e.osUser)))" : "") \(e.action) \(terminalSafe(e.subjectID)) \(terminalSafe(e.details))")
        }
    }
}

struct CaseMerge: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "merge", abstract: "Merge case B into case A (compliance).")
    @OptionGroup var global: GlobalOptions
    @Argument var a: String
    @Argument var b: String
    func run() throws { try global.open().mergeCases(a, b); print("merged \(b) into \(a)") }
}

struct CaseSplit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "split", abstract: "Move flags out of a case into a new case (compliance).")
    @OptionGroup var global: GlobalOptions
    @Argument var caseID: String
    @Option(parsing: .upToNextOption) var flags: [String]
    func run() throws { print("split into \(try global.open().splitCase(caseID, flags: flags))") }
}

struct ReferralCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "referral", abstract: "Referral lifecycle.", subcommands: [ReferralReceipt.self])
}

struct ReferralReceipt: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "receipt", abstract: "Record an agency's acknowledgement (e.g. a CyberTipline report number).")
    @OptionGroup var global: GlobalOptions
    @Argument var caseID: String
    @Option var agency: String
    @Option(help: "The agency's reference, e.g. the CyberTipline report number.") var reference: String
    func run() throws {
        try global.open().recordReceipt(caseName: caseID, agency: agency, reference: reference)
        print("recorded \(agency) receipt \(terminalSafe(reference)) for \(caseID)")
    }
}

struct Holds: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Preservation holds: one per referral, for the agency's retention period (NCMEC: one year, 18 U.S.C. 2258A(h)).")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false
    @Flag(help: "List each held flag (the case holding it now, and when its last hold ends), as retention applies them.") var flags = false
    @Option(help: "Extend the holds of this case (compliance), with --until and --reason: a law-enforcement preservation request.") var extend: String?
    @Option(help: "With --extend: the new end, YYYY-MM-DD (UTC).") var until: String?
    @Option(help: "With --extend: why (e.g. the request's reference).") var reason: String?
    func run() throws {
        if let extend {
            guard let until, let ms = Timestamp.parseDate(until) else { throw CustosError.invalidInput(field: "--until", reason: "give the new end as YYYY-MM-DD") }
            guard let reason else { throw CustosError.invalidInput(field: "--reason", reason: "say why the hold is extended") }
            try global.open().extendHold(caseName: extend, until: ms, reason: reason)
            print("holds of \(extend) extended until \(Timestamp.utcString(millis: ms))")
            return
        }
        if flags {
            let held = try global.open(.read).flagHolds()
            if json {
                printJSON(.array(held.map { .object(["flag": .string($0.flag), "case_id": $0.caseID.map(JSONValue.string) ?? .null,
                                                     "hold_until": .string($0.holdUntil), "active": .bool($0.active)]) }))
                return
            }
            if held.isEmpty { print("no flag is held"); return }
            for h in held { print(pad(terminalSafe(h.flag), 32) + pad(h.caseID ?? "-", 10) + "held until \(h.holdUntil)" + (h.active ? "" : " (ended)")) }
            return
        }
        let holds = try global.open(.read).holds()
        if json {
            printJSON(.array(holds.map { .object(["packet_id": .string($0.packetID), "case_id": .string($0.caseID), "agency": .string($0.agency),
                                                  "referred_at": .string($0.referredAt), "hold_until": .string($0.holdUntil), "active": .bool($0.active)]) }))
            return
        }
        if holds.isEmpty { print("no holds"); return }
        for h in holds { print(pad(h.packetID, 24) + pad(h.caseID, 10) + pad(h.agency, 8) + "held until \(h.holdUntil)" + (h.active ? "" : " (ended)")) }
    }
}

struct RetentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retention", abstract: "Evidence retention.", subcommands: [RetentionRun.self])
}

struct RetentionRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Erase the evidence whose retention has ended (compliance, admin); --dry-run lists it.",
        discussion: """
            A flag's evidence goes when every preservation hold on it has ended (its referrals' agency retention, and any \
            `holds --extend`), or when it was finally dismissed, never filed into a case, longer ago than \
            `dismissed-retention-days` (30). Never while a hold covers it; a conversation goes only when all its flags may. \
            Message text, participants' identifiers and attachment bytes are erased from the database file and its WAL; a \
            tombstone keeps the evidence hash, and each flag gets an evidence.purge custody entry.
            """)
    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("dry-run"), help: "List what would be erased; erase nothing.") var dryRun = false
    @Flag var json = false

    func run() throws {
        let store = try global.open()
        let erased = try store.retention(dryRun: dryRun)
        // Copies retention cannot reach: the backups made before an erasure.
        for b in try store.backupsHoldingErased() {
            printError("warning: the backup \(b.path) (made \(b.at)) still holds \(b.conversations) erased conversation\(b.conversations == 1 ? "" : "s"); replace it with a new `custos backup` and destroy it")
        }
        if json {
            printJSON(.object(["dry_run": .bool(dryRun), "conversations": .array(erased.map { e in
                .object(["evidence_hash": .string(e.evidenceHash), "flags": .array(e.flags.map { .string($0) }), "reason": .string(e.reason)]) })]))
            return
        }
        for e in erased { print("\(dryRun ? "would erase" : "erased") \(e.flags.joined(separator: ", ")) (\(e.evidenceHash.prefix(16))…): \(e.reason)") }
        print("\(erased.count) conversation\(erased.count == 1 ? "" : "s") \(dryRun ? "due for erasure" : "erased")")
    }
}
