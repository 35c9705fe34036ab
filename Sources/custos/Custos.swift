import ArgumentParser
import CustosCore
import CustosStore
import Foundation

/// Options every command takes, before or after the subcommand name.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The store file (default: $CUSTOS_DB, else ./custos.db).")
    var db: String?

    @Option(name: .long, help: "Act as this Custos user (recorded as asserted by the OS user).")
    var actor: String?

    var actorValue: Actor { Actor.current(asserted: actor) }
    var path: String { Store.resolvePath(db) }

    func open() throws -> Store {
        do { return try Store.open(path: path, actor: actorValue) } catch { throw CLIError(error) }
    }
}

/// A failure printed as `custos: message` with a non-zero exit.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    var code: Int32 = 1
    init(_ error: Error) { description = "\(error)" }
    init(_ message: String, code: Int32 = 1) { description = message; self.code = code }
}

/// Runs a body and turns store errors into a clean message and exit code.
func guarded(_ body: () throws -> Void) throws {
    do { try body() } catch let e as CLIError {
        FileHandle.standardError.write(Data("custos: \(e.description)\n".utf8))
        throw ExitCode(e.code)
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("custos: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

func printJSON(_ value: JSONValue) { print(value.canonicalString) }

@main
struct Custos: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "custos",
        abstract: "Case manager for flagged grooming conversations: evidence store, review, custody log, referrals.",
        subcommands: [
            Demo.self, Init.self, KeyCommand.self, Ingest.self, Flags.self, Show.self, Gen.self,
            UserCommand.self, SettingsCommand.self, Queue.self, ClaimCommand.self, Release.self, Decide.self, Reopen.self,
            CaseCommand.self, AgencyCommand.self, StatsCommand.self, Export.self, VerifyPacket.self, ReferralCommand.self, Holds.self, Audit.self,
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
        let args = normalise(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(args)
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
