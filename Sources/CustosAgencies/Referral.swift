import Crypto
import CustosCore
import CustosPackets
import CustosStore
import Foundation

public struct ExportResult: Sendable {
    public let packetID: String
    public let directory: URL
    public let zip: URL?
    public let tagManifestSHA256: String
    public var sealed: URL?
    /// What the packet was made from (the submission's transcripts are made from it too).
    public var snapshot: ReferralSnapshot? = nil
}

public enum ReferralExport {
/// Snapshot from the store, write the bag, record the referral: the one export path, for the
/// CLI (`custos export`) and the console alike. `warn` hears what does not stop the export (a
/// witness that did not cosign).
public static func run(store: Store, caseID: String, agency: String, out: URL, zip: Bool, templates: URL?, xsd: String?,
                       key: Curve25519.Signing.PrivateKey, seal: Bool = false, warn: (String) -> Void) throws -> ExportResult {
    // Sealing needs the agency's key: refused before anything is read or written.
    var recipient: Curve25519.KeyAgreement.PublicKey?
    let sealedFile = URL(fileURLWithPath: out.path + ".zip.hpke")
    if seal {
        recipient = try KeyEncoding.agreementPublicKey(pem: try store.sealingKey(agency: agency))
        if FileManager.default.fileExists(atPath: sealedFile.path) {
            throw CustosError.conflict(subject: sealedFile.path, reason: "already exists; refusing to overwrite it")
        }
    }
    var snapshot = try store.prepareReferral(caseName: caseID, agencyCode: agency, key: key)
    // The packet carries the checkpoint with every witness's cosignature the store could collect.
    if let id = try store.checkpointID(note: snapshot.checkpointNote) {
        for w in try store.collectCosignatures(checkpointID: id) where !w.cosigned {
            warn("warning: witness \(w.witness) did not cosign: \(w.detail)")
        }
        let cosigned = try store.cosignedNote(snapshot.checkpointNote)
        snapshot.checkpointNote = cosigned
        snapshot.proofs = snapshot.proofs.map { var p = $0; p.checkpointNote = cosigned; return p }
    }
    // A sealed packet is written in a private folder beside OUT, sealed, and the plaintext removed.
    let scratch = out.deletingLastPathComponent().appendingPathComponent(".custos-seal-\(UUID().uuidString)")
    if seal { try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700]) }
    defer { if seal { try? FileManager.default.removeItem(at: scratch) } }
    let written = try PacketWriter(templatesDirectory: templates, xsdPath: xsd)
        .write(snapshot, to: seal ? scratch.appendingPathComponent(out.lastPathComponent) : out, key: key, zip: zip || seal)
    var result = ExportResult(packetID: snapshot.packetID, directory: written.directory, zip: written.zip, tagManifestSHA256: written.tagManifestSHA256,
                              snapshot: snapshot)
    do {
        if let recipient, let plain = written.zip {
            let sealed = try SealedPacket.seal(try Data(contentsOf: plain), to: recipient, agency: agency)
            do { try sealed.write(to: sealedFile, options: .withoutOverwriting) } catch {
                throw CustosError.storage(cause: "cannot write \(sealedFile.path): \(error.localizedDescription)")
            }
            result.sealed = sealedFile
        }
        try store.recordReferral(snapshot, tagManifestSHA256: written.tagManifestSHA256)
    } catch {
        // An unrecorded packet is not a referral: nothing of it is left behind.
        PacketWriter.remove(written.directory, zip: written.zip)
        if let s = result.sealed { try? FileManager.default.removeItem(at: s) }
        throw error
    }
    return result
}
}
