import ArgumentParser
import CustosCore
import CustosStore
import Foundation

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a store and the organisation's Ed25519 signing key; you become its first admin.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The organisation's name (reporter in referrals).") var org: String
    @Option(name: .customLong("contact-email"), help: "The organisation's contact email for agencies.") var contactEmail: String
    @Option(help: "Where to write the signing key (default: beside the store, STORE.signing.key).") var key: String?

    func run() throws {
        try guarded {
            let store = try Store.create(path: global.path, keyPath: key, org: org, contactEmail: contactEmail, actor: global.actorValue)
            let o = try store.organisation()
            print("created store \(global.path)")
            print("signing key  \(o.keyFile) (mode 0600; keep it safe)")
            print("log origin   \(o.origin)")
            print("first admin  \(global.actorValue.osUser)")
        }
    }
}

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "key", abstract: "The organisation's signing key.", subcommands: [KeyShow.self])
}

struct KeyShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the public key (fingerprint, or PEM SubjectPublicKeyInfo with --pem).")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print the PEM public key (openssl pkey -pubin reads it).") var pem = false
    @Option(help: "With --pem: write the PEM to this new file instead.") var out: String?

    func run() throws {
        try guarded {
            let store = try global.open(.read)
            let key = try store.publicKey()
            if pem, let out {
                try InputPath.requireRegularFile(out, role: "--out", mayBeMissing: true)
                try Data(KeyEncoding.publicKeyPEM(key).utf8).write(to: URL(fileURLWithPath: out), options: .withoutOverwriting)
                print("wrote \(out)")
            } else if pem { print(KeyEncoding.publicKeyPEM(key), terminator: "") } else {
                print("Ed25519 \(KeyEncoding.fingerprint(key))")
                let origin = try store.organisation().origin
                print("origin  \(origin)")
                // What a witness is configured with (`custos witness serve --log`).
                print("vkey    \(VerifierKey(name: origin, type: 0x01, key: key))")
            }
        }
    }
}
