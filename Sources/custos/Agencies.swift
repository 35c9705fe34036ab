import ArgumentParser
import CustosCore
import CustosStore
import Foundation

struct AgencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agency", abstract: "Receiving agencies and routing rules.",
                                                    subcommands: [AgencyList.self, AgencyAdd.self, AgencySet.self])
}

struct AgencyList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false
    func run() throws {
        let list = try global.open(.read).agencies()
        if json {
            printJSON(.array(list.map { .object(["code": .string($0.code), "name": .string($0.name), "jurisdictions": .array($0.jurisdictions.map { .string($0) }),
                                                 "profile": .string($0.profile.rawValue), "route": .string($0.route.rawValue), "retention_days": .integer(Int64($0.retentionDays))]) }))
            return
        }
        for a in list {
            print(pad(a.code, 8) + pad(a.jurisdictions.joined(separator: ","), 8) + pad(a.route.rawValue, 14) + pad(a.profile.rawValue, 14) + pad("\(a.retentionDays)d", 6) + a.name)
        }
    }
}

struct AgencyAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add")
    @OptionGroup var global: GlobalOptions
    @Argument var code: String
    @Option var name: String
    @Option(help: "Comma-separated ISO country codes.") var jurisdictions: String
    @Option(help: "cybertipline or generic.") var profile: AgencyProfile = .generic
    @Option(help: "always, jurisdiction or never.") var route: AgencyRoute = .jurisdiction
    @Option(name: .customLong("retention-days")) var retentionDays: Int = 365
    func run() throws {
        try global.open().addAgency(code: code, name: name, jurisdictions: jurisdictions.split(separator: ",").map(String.init),
                                    profile: profile, route: route, retentionDays: retentionDays)
        print("added agency \(code)")
    }
}

struct AgencySet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set")
    @OptionGroup var global: GlobalOptions
    @Argument var code: String
    @Option var name: String?
    @Option var jurisdictions: String?
    @Option(help: "cybertipline or generic.") var profile: AgencyProfile?
    @Option(help: "always, jurisdiction or never.") var route: AgencyRoute?
    @Option(name: .customLong("retention-days")) var retentionDays: Int?
    @Option(name: .customLong("public-key"), help: "The agency's X25519 public key (PEM file) that `export --seal` encrypts its packets to.")
    var publicKey: String?
    func run() throws {
        let pem = try publicKey.map { f -> String in
            guard let text = String(data: try readInput(f, limit: 1 << 16), encoding: .utf8) else {
                throw CustosError.invalidInput(field: "--public-key", reason: "\(f) is not UTF-8 text")
            }
            return text
        }
        try global.open().setAgency(code: code, name: name, jurisdictions: jurisdictions.map { $0.split(separator: ",").map(String.init) },
                                    profile: profile, route: route, retentionDays: retentionDays, publicKey: pem)
        print("updated agency \(code)")
    }
}

extension AgencyProfile: ExpressibleByArgument {}
extension AgencyRoute: ExpressibleByArgument {}
