import ArgumentParser
import Crypto
import CustosCore
import CustosPackets
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

    func run() throws {
        try guarded {
            let store = try global.open()
            let signing = try store.signingKey(path: global.keyPath(key))
            let result = try export(store: store, caseID: caseID, agency: agency, out: URL(fileURLWithPath: out), zip: zip,
                                    templates: templates.map { URL(fileURLWithPath: $0) }, xsd: xsd, key: signing)
            print("packet \(result.packetID) for \(agency) written to \(result.directory.path)")
            if let z = result.zip { print("zip: \(z.path)") }
            print("tag manifest SHA-256 \(result.tagManifestSHA256)")
            print("open the report: \(result.directory.appendingPathComponent("data/report.html").path)")
        }
    }
}

struct ExportResult {
    let packetID: String
    let directory: URL
    let zip: URL?
    let tagManifestSHA256: String
}

/// Snapshot from the store, write the bag, record the referral: the one export path.
func export(store: Store, caseID: String, agency: String, out: URL, zip: Bool, templates: URL?, xsd: String?,
            key: Curve25519.Signing.PrivateKey) throws -> ExportResult {
    var snapshot = try store.prepareReferral(caseName: caseID, agencyCode: agency, key: key)
    // The packet carries the checkpoint with every witness's cosignature the store could collect.
    if let id = try store.checkpointID(note: snapshot.checkpointNote) {
        for w in try store.collectCosignatures(checkpointID: id) where !w.cosigned {
            printError("warning: witness \(w.witness) did not cosign: \(w.detail)")
        }
        let cosigned = try store.cosignedNote(snapshot.checkpointNote)
        snapshot.checkpointNote = cosigned
        snapshot.proofs = snapshot.proofs.map { var p = $0; p.checkpointNote = cosigned; return p }
    }
    let written = try PacketWriter(templatesDirectory: templates, xsdPath: xsd).write(snapshot, to: out, key: key, zip: zip)
    do {
        try store.recordReferral(snapshot, tagManifestSHA256: written.tagManifestSHA256)
    } catch {
        // An unrecorded packet is not a referral: nothing of it is left behind.
        PacketWriter.remove(written.directory, zip: written.zip)
        throw error
    }
    return ExportResult(packetID: snapshot.packetID, directory: written.directory, zip: written.zip, tagManifestSHA256: written.tagManifestSHA256)
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
        try guarded {
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
}
