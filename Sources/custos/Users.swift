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
    @Option(help: "moderator, lead, compliance or admin.") var role: Role

    func run() throws {
        try guarded {
            try global.open().addUser(name: name, role: role)
            print("added \(name) as \(role.rawValue)")
        }
    }
}

struct UserList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List users.")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false

    func run() throws {
        try guarded {
            let users = try global.open(.read).users()
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
    func run() throws { try guarded { for (k, v) in try global.open(.read).settings() { print("\(k) = \(v)") } } }
}

struct SettingsSet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "second-review required|off, lease-minutes N, urgent-sla-minutes N.")
    @OptionGroup var global: GlobalOptions
    @Argument var key: String
    @Argument var value: String
    func run() throws { try guarded { try global.open().setSetting(key, value); print("\(key) = \(value)") } }
}
