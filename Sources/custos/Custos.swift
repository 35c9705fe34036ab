import ArgumentParser
import CustosStore
import Foundation

@main
struct Custos: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "custos",
        abstract: "Case manager for flagged grooming conversations: evidence store, review, custody log, referrals.",
        subcommands: [
            Demo.self, Init.self, KeyCommand.self, Ingest.self, Flags.self, Show.self, Gen.self,
            UserCommand.self, TokenCommand.self, SettingsCommand.self, Queue.self, ClaimCommand.self, Release.self, Decide.self, Reopen.self,
            CaseCommand.self, AgencyCommand.self, StatsCommand.self, Export.self, VerifyPacket.self, OpenPacket.self, ReferralCommand.self, Submit.self, Submissions.self, Holds.self, Audit.self,
            Serve.self, WitnessCommand.self, Backup.self, Restore.self, RetentionCommand.self, Transparency.self,
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
        do {
            var command = try parseAsRoot(args)
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
