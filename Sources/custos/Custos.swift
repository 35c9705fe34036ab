import ArgumentParser
import CustosCore
import CustosStore
import Foundation

@main
struct Custos: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "custos",
        abstract: "Case manager for flagged grooming conversations: evidence store, review, custody log, referrals.",
        subcommands: [
            Demo.self, Init.self, KeyCommand.self, Ingest.self, Flags.self, Show.self, History.self, Gen.self,
            UserCommand.self, TokenCommand.self, SettingsCommand.self, Queue.self, ClaimCommand.self, Release.self, Decide.self, Reopen.self,
            CaseCommand.self, AgencyCommand.self, StatsCommand.self, Export.self, VerifyPacket.self, OpenPacket.self, ReferralCommand.self, Submit.self, Submissions.self, Holds.self, Audit.self,
            Serve.self, WitnessCommand.self, Backup.self, Restore.self, RetentionCommand.self, Transparency.self, Permissions.self, HashCommand.self, HashListCommand.self, ActionCommand.self, ActionsCommand.self,
        ])

    /// Moves global options given before the subcommand to after it, so
    /// `custos --db x.db flags` and `custos flags --db x.db` mean the same.
    static func normalise(_ args: [String]) -> [String] {
        var globals: [String] = []
        var rest: [String] = []
        var i = 0
        var seenCommand = false
        while i < args.count {
            let a = args[i]
            if !seenCommand, a == "--db" || a == "--actor", i + 1 < args.count {
                globals += [a, args[i + 1]]
                i += 2
                continue
            }
            if !seenCommand, a.hasPrefix("--db=") || a.hasPrefix("--actor=") {
                globals.append(a)
                i += 1
                continue
            }
            if !a.hasPrefix("-") { seenCommand = true }
            rest.append(a)
            i += 1
        }
        if globals.isEmpty { return rest }
        if let dd = rest.firstIndex(of: "--") { rest.insert(contentsOf: globals, at: dd); return rest }
        return rest + globals
    }

    static func main() {
        // Everything custos creates holds evidence, secrets or both (the store, its WAL and SHM,
        // keys, packets, decrypted and spooled files): readable by its owner alone.
        umask(0o077)
        let args = normalise(Array(CommandLine.arguments.dropFirst()))
        var command: ParsableCommand
        do { command = try parseAsRoot(args) } catch { exit(withError: error) }
        do {
            try command.run()
        } catch where error is ExitCode || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            exit(withError: error)  // --help on a command group, a validation error: ArgumentParser's own
        } catch {
            // Every failure of a command, once: `custos: message` on stderr (escaped for the
            // terminal) and its exit status (the README's table).
            let (message, code): (String, Int32) = switch error {
            case let e as CLIError: (e.description, e.code)
            case let e as CustosError: (e.description, ExitStatus.of(e))
            case let e as RecordError: (e.description, ExitStatus.invalidInput)
            default: ("\(error)", ExitStatus.failure)
            }
            FileHandle.standardError.write(Data("custos: \(terminalSafe(message))\n".utf8))
            exit(withError: ExitCode(code))
        }
    }
}

struct Permissions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print who may do what: the permission matrix every operation is checked against (no store needed).")
    func run() throws { print(Permission.markdownTable, terminator: "") }
}
