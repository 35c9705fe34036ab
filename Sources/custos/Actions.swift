import ArgumentParser
import CustosAgencies
import CustosCore
import CustosStore
import Foundation

extension ActionKind: ExpressibleByArgument {}
extension ActionTrigger: ExpressibleByArgument {}
extension ActionState: ExpressibleByArgument {}

/// `custos action …`: the endpoints the platform listens on (docs/platform-actions.md).
struct ActionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "action",
        abstract: "Platform action endpoints: what Custos asks the platform to do, and when (admin).",
        subcommands: [ActionAdd.self, ActionList.self, ActionSet.self, ActionDisable.self, ActionEnable.self, ActionRotateSecret.self])
}

/// The new secret, printed once, or written to a new file (0600) that only its owner reads.
private func giveSecret(_ name: String, _ secret: String, to file: String?) throws {
    if let file {
        try Store.writeSecret(secret + "\n", to: file)
        print("endpoint \(terminalSafe(name)) secret written to \(terminalSafe(file)) (0600); give it to the receiver")
        return
    }
    print("endpoint \(terminalSafe(name)) secret (shown once; give it to the receiver, which verifies every request with it):")
    print(secret)
}

struct ActionAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add an endpoint (admin): a URL that receives one kind of action on the events named.",
        discussion: """
            KIND: \(ActionKind.allCases.map(\.rawValue).joined(separator: ", ")).
            EVENT: \(ActionTrigger.allCases.map(\.rawValue).joined(separator: ", ")).
            Without --on, a kind fires on its defaults: restrict-account on flag.urgent; block-conversation on flag.urgent \\
            and flag.confirmed; suspend-account on flag.confirmed; ban-account on case.referred; preserve-account on \\
            hold.started, hold.extended and hold.ended; lift-restriction on flag.dismissed (only for a flag an earlier \\
            action restricted). Requests are signed as Standard Webhooks with a new secret, printed once.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The endpoint's name: a-z, 0-9, - and _.") var name: String
    @Option(help: "http(s) URL, no credentials in it.") var url: String
    @Option(help: "What the platform is asked to do.") var kind: ActionKind
    @Option(parsing: .upToNextOption, help: "The events it fires on (default: the kind's).") var on: [ActionTrigger] = []
    @Option(name: .customLong("category"), help: "Fire only for flags and cases of these categories (repeatable; default any).") var categories: [CustosCore.Category] = []
    @Flag(name: .customLong("generate-secret"), help: "Generate the signing secret (always done; accepted for clarity).") var generateSecret = false
    @Option(name: .customLong("secret-out"), help: "Write the secret to this new file (0600) instead of printing it.") var secretOut: String?
    func run() throws {
        let secret = try global.open().addActionEndpoint(name: name, url: url, kind: kind, triggers: on.isEmpty ? nil : on, categories: categories)
        print("added endpoint \(terminalSafe(name)): \(kind.rawValue) on \((on.isEmpty ? kind.defaultTriggers : on).map(\.rawValue).joined(separator: ", "))")
        try giveSecret(name, secret, to: secretOut)
    }
}

struct ActionList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The endpoints and their policy (never their secrets).")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false
    func run() throws {
        let endpoints = try global.open(.read).actionEndpoints()
        if json {
            printJSON(.array(endpoints.map { e in .object([
                ("name", .string(e.name)), ("url", .string(e.url)), ("kind", .string(e.kind.rawValue)), ("on", .array(e.triggers.map { .string($0.rawValue) })),
                ("categories", .array(e.categories.map { .string($0) })), ("disabled", .bool(e.disabled)), ("disabled_reason", e.disabledReason.map { .string($0) }),
                ("created_at", .string(e.createdAt)), ("created_by", .string(e.createdBy)),
            ]) }))
            return
        }
        if endpoints.isEmpty { print("no endpoints (custos action add NAME --url URL --kind KIND [--on EVENT...])") }
        for e in endpoints {
            print(pad(terminalSafe(e.name), 18) + pad(e.kind.rawValue, 19) + pad(e.disabled ? "disabled" : "enabled", 9) + terminalSafe(e.url))
            print("    on " + e.triggers.map(\.rawValue).joined(separator: ", ") + (e.categories.isEmpty ? "" : "; categories " + e.categories.joined(separator: ", "))
                  + (e.disabledReason.map { "; " + terminalSafe($0) } ?? ""))
        }
    }
}

struct ActionSet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Change an endpoint's URL, events or categories (admin).")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    @Option var url: String?
    @Option(parsing: .upToNextOption) var on: [ActionTrigger] = []
    @Option(name: .customLong("category"), help: "The categories it fires for (repeatable); 'any' clears them.") var categories: [String] = []
    func run() throws {
        let cats: [CustosCore.Category]? = categories.isEmpty ? nil : try categories == ["any"] ? [] : categories.map { c in
            guard let cat = CustosCore.Category(rawValue: c) else { throw CustosError.invalidInput(field: "--category", reason: "unknown category \(quoted(c))") }
            return cat
        }
        try global.open().setActionEndpoint(name: name, url: url, triggers: on.isEmpty ? nil : on, categories: cats)
        print("endpoint \(terminalSafe(name)) changed")
    }
}

struct ActionDisable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disable", abstract: "Stop requesting and delivering an endpoint's actions (admin); its waiting requests wait.")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    @Option var reason: String?
    func run() throws {
        try global.open().setActionEndpoint(name: name, disabled: true, reason: reason)
        print("endpoint \(terminalSafe(name)) disabled")
    }
}

struct ActionEnable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enable", abstract: "Enable an endpoint again (admin); its waiting requests are delivered.")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    func run() throws {
        try global.open().setActionEndpoint(name: name, disabled: false)
        print("endpoint \(terminalSafe(name)) enabled")
    }
}

struct ActionRotateSecret: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotate-secret",
                                                    abstract: "A new signing secret (admin), printed once; the old one also signs for 24 hours.")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    @Option(name: .customLong("secret-out"), help: "Write the secret to this new file (0600) instead of printing it.") var secretOut: String?
    func run() throws {
        try giveSecret(name, try global.open().rotateActionSecret(name: name), to: secretOut)
    }
}

/// `custos actions`: what was requested of the platform, and delivery.
struct ActionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actions",
        abstract: "Actions requested of the platform: their state and the platform's answers; delivery; a lead's retry or cancel.",
        subcommands: [ActionsList.self, ActionsDeliver.self, ActionsRetry.self, ActionsCancel.self],
        defaultSubcommand: ActionsList.self)
}

func actionJSON(_ r: ActionRequestRecord) -> JSONValue {
    .object([
        ("id", .string(r.id)), ("endpoint", .string(r.endpoint)), ("kind", .string(r.kind.rawValue)), ("on", .string(r.trigger.rawValue)),
        ("flag", r.flag.map { .string($0) }), ("case", r.caseID.map { .string($0) }), ("requested_by", .integer(r.requestedSeq)),
        ("requested_at", .string(r.requestedAt)), ("state", .string(r.state.rawValue)), ("attempts", .integer(Int64(r.attempts))),
        ("next_attempt", r.nextAttemptAt.map { .string($0) }), ("last_status", r.lastStatus.map { .integer(Int64($0)) }),
        ("last_error", r.lastError.map { .string($0) }), ("acknowledged_at", r.acknowledgedAt.map { .string($0) }),
        ("reference", r.answer?.reference.map { .string($0) }), ("disabled_at", r.answer?.disabledAt.map { .string($0) }),
        ("user_notified", r.answer?.userNotified.map { .bool($0) }), ("words", .string(r.words)),
    ])
}

struct ActionsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "What was requested, its state and the platform's answer.")
    @OptionGroup var global: GlobalOptions
    @Option var flag: String?
    @Option(name: .customLong("case")) var caseID: String?
    @Option(parsing: .upToNextOption) var state: [ActionState] = []
    @Flag var json = false
    func run() throws {
        let requests = try global.open(.read).actionRequests(flag: flag, caseName: caseID, states: state.isEmpty ? nil : state)
        if json { printJSON(.array(requests.map(actionJSON))); return }
        if requests.isEmpty { print("no actions requested") }
        for r in requests {
            print(pad(r.id, 37) + pad(terminalSafe(r.endpoint), 14) + pad(r.flag.map(terminalSafe) ?? r.caseID ?? "", 28) + terminalSafe(r.words))
        }
    }
}

struct ActionsDeliver: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliver",
        abstract: "Deliver every action due now, then stop (for cron; `serve` delivers in the background). Compliance, admin.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Seconds an attempt may take, connect to last byte.") var timeout: Int = 10
    @Flag(help: "Keep delivering until interrupted.") var watch = false
    func run() throws {
        let store = try global.open()
        var deliverer = ActionDeliverer(store: store)
        guard (1...300).contains(timeout) else { throw CustosError.invalidInput(field: "--timeout", reason: "must be 1–300 seconds") }
        deliverer.timeout = .seconds(timeout)
        let d = deliverer
        if watch {
            try waitFor { await d.run { print("delivery: \(terminalSafe(String(describing: $0)))") } }
            return
        }
        let n = try waitFor { try await d.deliverAllDue() }
        let waiting = try store.actionRequests(states: [.pending, .failed, .sending]).count
        let dead = try store.deadActionCount()
        print("\(n) attempt\(n == 1 ? "" : "s"); \(waiting) waiting, \(dead) dead")
    }
}

struct ActionsRetry: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retry", abstract: "Send a dead or failing request again, now (lead; logged).")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String
    @Option var reason: String
    func run() throws {
        try global.open().resolveAction(id, retry: true, reason: reason)
        print("action \(terminalSafe(id)) due again")
    }
}

struct ActionsCancel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a request not yet delivered (lead; logged).")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String
    @Option var reason: String
    func run() throws {
        try global.open().resolveAction(id, retry: false, reason: reason)
        print("action \(terminalSafe(id)) cancelled")
    }
}
