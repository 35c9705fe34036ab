import ArgumentParser
import Crypto
import CustosCore
import CustosPackets
import CustosAgencies
import CustosStore
import Foundation

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Export a case for an agency as a signed BagIt referral packet (compliance).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The case, e.g. C-000001.") var caseID: String
    @Option(help: "The agency code (see `custos agency list`).") var agency: String
    @Option(help: "The packet folder to create.") var out: String
    @Flag(help: "Also write OUT.zip.") var zip = false
    @Option(help: "A folder of Mustache templates overriding the built-in ones.") var templates: String?
    @Option(help: "A newer CyberTipline schema to validate against.") var xsd: String?
    @Option(help: "The signing key file (default: the one init wrote, or $CUSTOS_KEY).") var key: String?
    @Flag(help: "Write only OUT.zip.hpke: the packet zip encrypted to the agency's public key (`agency set --public-key`); no plaintext is left.")
    var seal = false

    func run() throws {
        let store = try global.open(key: key)
        let signing = try store.signingKey(path: global.keyPath(key))
        let result = try ReferralExport.run(store: store, caseID: caseID, agency: agency, out: URL(fileURLWithPath: out), zip: zip,
                                            templates: templates.map { URL(fileURLWithPath: $0) }, xsd: xsd, key: signing, seal: seal,
                                            warn: printError)
        if let sealed = result.sealed {
            print("packet \(result.packetID) for \(agency) sealed to its key: \(sealed.path)")
            print("tag manifest SHA-256 \(result.tagManifestSHA256)")
            print("the agency opens it with `custos open-packet` or any RFC 9180 HPKE implementation (docs/sealed-packet.md)")
            return
        }
        print("packet \(result.packetID) for \(agency) written to \(result.directory.path)")
        if let z = result.zip { print("zip: \(z.path)") }
        print("tag manifest SHA-256 \(result.tagManifestSHA256)")
        print("open the report: \(result.directory.appendingPathComponent("data/report.html").path)")
    }
}

struct VerifyPacket: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-packet",
        abstract: "Check a referral packet (folder or zip) offline: bag, hashes, signature, evidence, custody proofs, XML schema.",
        discussion: "Needs no store. Exit status 0 when every check passes with a pinned --key, 2 when every check passes but no key was pinned (integrity only: origin unproven), 1 when any check fails (each is named).")
    @Argument var path: String
    @Option(help: "Pin the organisation's public key (PEM) instead of trusting the one in the packet.") var key: String?
    @Option(help: "Validate the CyberTipline XML against this schema instead of the built-in one.") var xsd: String?
    @Option(help: "A witness you trust, as its verifier key (NAME+ID+KEY); it must have cosigned the packet's checkpoint (repeatable).")
    var witness: [String] = []

    func run() throws {
        let witnesses = try witness.map { w -> VerifierKey in
            do { return try VerifierKey(parsing: w) } catch { throw CustosError.invalidInput(field: "--witness", reason: "\(error)") }
        }
        var pinned: String?
        if let key {
            guard let s = String(data: try readInput(key), encoding: .utf8) else { throw CustosError.invalidInput(field: "--key", reason: "\(key) is not UTF-8 text") }
            pinned = s
        }
        let checks = try PacketVerifier(pinnedKeyPEM: pinned, xsdPath: xsd, witnesses: witnesses).verify(path: URL(fileURLWithPath: path))
        for c in checks { print("\(c.ok ? "PASS" : "FAIL") \(pad(c.name, 17)) \(terminalSafe(c.detail))") }
        let failed = checks.filter { !$0.ok }.map(\.name)
        guard failed.isEmpty else {
            print("NOT VERIFIED: \(failed.joined(separator: ", ")) failed")
            throw ExitCode(ExitStatus.failure)
        }
        guard key != nil else {
            // Anyone can make a self-consistent packet with a key of their own.
            print("INTEGRITY ONLY: origin not pinned; the packet is consistent with the key it carries. Pin the organisation's key with --key PEM")
            throw ExitCode(ExitStatus.unpinned)
        }
        print("VERIFIED: \(path)")
    }
}

struct OpenPacket: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open-packet",
        abstract: "The agency's side of `export --seal`: decrypt a .zip.hpke with the agency's X25519 private key and unpack the packet into a new folder.",
        discussion: "Needs no store. A wrong key or any changed byte fails to open, saying so. Check the result with `custos verify-packet DIR --key ORG.pem`.")
    @Argument(help: "The sealed packet (.zip.hpke).") var file: String
    @Option(help: "The agency's X25519 private key (PKCS#8 PEM).") var key: String
    @Option(help: "The folder to unpack into (must not exist).") var out: String

    func run() throws {
        let privateKey: Curve25519.KeyAgreement.PrivateKey
        do { privateKey = try KeyEncoding.agreementPrivateKey(pem: String(decoding: try readInput(key, limit: 1 << 16), as: UTF8.self)) } catch let e as KeyError {
            throw CustosError.invalidInput(field: "--key", reason: e.description)
        }
        guard !FileManager.default.fileExists(atPath: out) else { throw CustosError.conflict(subject: out, reason: "already exists; refusing to overwrite it") }
        try InputPath.requireRegularFile(file, role: "FILE")
        let zip = try SealedPacket.open(try Data(contentsOf: URL(fileURLWithPath: file)), with: privateKey)
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("custos-open-\(UUID().uuidString).zip")
        defer { try? FileManager.default.removeItem(at: temp) }
        try zip.write(to: temp, options: .withoutOverwriting)
        for ignored in try PacketZip.extract(temp, to: URL(fileURLWithPath: out)) { printError("not extracted: \(ignored)") }
        print("opened: \(out)")
        print("check it: custos verify-packet \(out) --key ORGANISATION.pem")
    }
}
