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
        let store = try Store.create(path: global.path, keyPath: key, org: org, contactEmail: contactEmail, actor: global.actorValue)
        let o = try store.organisation()
        print("created store \(global.path)")
        print("signing key  \(o.keyFile) (mode 0600; keep it safe)")
        print("log origin   \(o.origin)")
        print("first admin  \(global.actorValue.osUser)")
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

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a consistent copy of the store to DEST while others keep working, verify it, and record it (admin).",
        discussion: "The signing key is not copied: back up the key file separately (its path is printed), and keep the two apart.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The new file to write (refuses an existing one).") var dest: String

    func run() throws {
        let store = try global.open()
        let r = try store.backup(to: dest)
        print("backup written to \(r.path) and verified: \(r.report.entries) custody entries, \(r.report.checkpoints) checkpoints, \(r.report.conversations) conversations, \(r.report.blobs) attachments")
        print("the signing key was not copied: back up \(try store.organisation().keyFile) separately")
    }
}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into a new store file (--db), verifying it first; refuses to overwrite.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The backup file.") var source: String

    func run() throws {
        let r = try Store.restore(from: source, to: global.path, actor: global.actorValue, keyPath: global.keyPath(nil))
        print("restored \(source) to \(r.path) and verified: \(r.report.entries) custody entries, \(r.report.checkpoints) checkpoints")
        print("put the signing key back beside it (or pass --key / $CUSTOS_KEY) before signing anything")
    }
}
