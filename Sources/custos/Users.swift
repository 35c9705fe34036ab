import ArgumentParser
import CustosCore
import CustosStore
import Foundation

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage users (admins).",
                                                    subcommands: [UserAdd.self, UserList.self, UserDisable.self, UserSetPassword.self, UserTOTP.self])
}

struct UserAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a user with a role.")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    @Option(help: "moderator, lead, compliance, admin or detector (a machine client that may only ingest).") var role: Role

    func run() throws {
        try global.open().addUser(name: name, role: role)
        print("added \(name) as \(role.rawValue)")
    }
}

struct UserList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List users.")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false

    func run() throws {
        let users = try global.open(.read).users()
        if json {
            printJSON(.array(users.map { .object(["name": .string($0.name), "role": .string($0.role.rawValue), "disabled": .bool($0.disabled), "created_at": .string($0.createdAt)]) }))
        } else {
            for u in users { print(pad(u.name, 20) + pad(u.role.rawValue, 12) + (u.disabled ? "disabled" : "active")) }
        }
    }
}

struct UserDisable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable a user (their claims return to the queue).")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    func run() throws { try global.open().disableUser(name: name); print("disabled \(name)") }
}

struct UserSetPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-password", abstract: "Set a user's console password (admins, or the user themselves), read from standard input.",
        discussion: "At least 12 characters, at most 72 bytes; stored as a bcrypt hash. The custody entry records the hash's SHA-256, never the password.")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    @Flag(help: "Read the password from standard input (its first line). Required: a password is never an argument.") var passwordStdin = false

    func run() throws {
        guard passwordStdin else { throw CLIError("give the password on standard input with --password-stdin", code: ExitStatus.usage) }
        let data = FileHandle.standardInput.readData(ofLength: 4096)
        let password = String(decoding: data, as: UTF8.self).split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map { String($0) } ?? ""
        try global.open().setPassword(user: name, password: password.hasSuffix("\r") ? String(password.dropLast()) : password)
        print("password set for \(terminalSafe(name))")
    }
}

struct UserTOTP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "totp", abstract: "Enrol a user in TOTP (RFC 6238) and print the otpauth:// URI for their authenticator app; --reset clears it (admins).")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    @Flag(help: "Clear the user's TOTP enrolment instead.") var reset = false

    func run() throws {
        let store = try global.open()
        if reset {
            try store.resetTOTP(user: name)
            print("TOTP cleared for \(terminalSafe(name))")
        } else {
            print(try store.enrolTOTP(user: name))
        }
    }
}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "token", abstract: "Bearer tokens for machine clients of the API (admins).",
                                                    subcommands: [TokenCreate.self, TokenList.self, TokenRevoke.self])
}

struct TokenCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Issue a token acting as NAME; it is printed once (only its SHA-256 is kept).")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    func run() throws {
        let (id, token) = try global.open().createToken(user: name)
        print("\(id)\t\(token)")
    }
}

struct TokenList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (never their values).")
    @OptionGroup var global: GlobalOptions
    func run() throws {
        for t in try global.open(.read).tokens() {
            print(pad(t.id, 16) + pad(terminalSafe(t.user), 20) + t.createdAt + (t.revokedAt.map { "  revoked " + $0 } ?? ""))
        }
    }
}

struct TokenRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token by its id.")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String
    func run() throws { try global.open().revokeToken(id: id); print("revoked \(terminalSafe(id))") }
}

struct SettingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "settings", abstract: "Review settings (admins change them).",
                                                    subcommands: [SettingsList.self, SettingsSet.self])
}

struct SettingsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list")
    @OptionGroup var global: GlobalOptions
    func run() throws { for (k, v) in try global.open(.read).settings() { print("\(k) = \(v)") } }
}

struct SettingsSet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "second-review required|off, lease-minutes N, urgent-sla-minutes N, checkpoint-minutes N, witnesses …, dismissed-retention-days N, totp-required privileged|all, cli-actors on|off.")
    @OptionGroup var global: GlobalOptions
    @Argument var key: String
    @Argument var value: String
    func run() throws { try global.open().setSetting(key, value); print("\(key) = \(value)") }
}
