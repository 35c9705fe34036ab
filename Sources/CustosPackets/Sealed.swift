@preconcurrency import Crypto
import CustosCore
import Foundation

/// A packet zip encrypted to an agency's X25519 key with HPKE (RFC 9180, base mode,
/// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), in the format docs/sealed-packet.md
/// describes so any RFC 9180 implementation can open it:
///
///     custos-sealed-packet/v1\n
///     suite DHKEM-X25519-HKDF-SHA256 HKDF-SHA256 AES-256-GCM\n
///     recipient <agency code> <SHA-256 of the agency's SubjectPublicKeyInfo, hex>\n
///     enc <base64 encapsulated key>\n
///     \n
///     <ciphertext of the zip>
///
/// The header (every byte before the ciphertext) is the AEAD's associated data, so a changed
/// header fails to open; the HPKE info is the first line without its newline.
public enum SealedPacket {
    public static let magic = "custos-sealed-packet/v1"
    static let suiteLine = "suite DHKEM-X25519-HKDF-SHA256 HKDF-SHA256 AES-256-GCM"
    static let ciphersuite = HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .AES_GCM_256)

    public static func seal(_ zip: Data, to recipient: Curve25519.KeyAgreement.PublicKey, agency: String) throws -> Data {
        var sender = try HPKE.Sender(recipientKey: recipient, ciphersuite: ciphersuite, info: Data(magic.utf8))
        let header = Data("""
            \(magic)
            \(suiteLine)
            recipient \(agency) \(KeyEncoding.fingerprint(recipient))
            enc \(sender.encapsulatedKey.base64EncodedString())


            """.utf8)
        return header + (try sender.seal(zip, authenticating: header))
    }

    /// The zip inside, or why it cannot be opened.
    public static func open(_ sealed: Data, with key: Curve25519.KeyAgreement.PrivateKey) throws(CustosError) -> Data {
        guard let end = sealed.firstRange(of: Data("\n\n".utf8)) else { throw .invalidInput(field: "sealed packet", reason: "no header") }
        let header = sealed[sealed.startIndex..<end.upperBound]
        let lines = String(decoding: header, as: UTF8.self).split(separator: "\n").map(String.init)
        guard lines.count == 4, lines[0] == magic, lines[1] == suiteLine, lines[2].hasPrefix("recipient "), lines[3].hasPrefix("enc "),
              let enc = Data(base64Encoded: String(lines[3].dropFirst(4))) else {
            throw .invalidInput(field: "sealed packet", reason: "not a \(magic) file")
        }
        let fingerprint = lines[2].split(separator: " ").last.map(String.init) ?? ""
        guard fingerprint == KeyEncoding.fingerprint(key.publicKey) else {
            throw .invalidInput(field: "--key", reason: "the packet is sealed to another key (\(lines[2]))")
        }
        do {
            var recipient = try HPKE.Recipient(privateKey: key, ciphersuite: ciphersuite, info: Data(magic.utf8), encapsulatedKey: enc)
            return try recipient.open(sealed[end.upperBound...], authenticating: header)
        } catch {
            throw .invalidInput(field: "sealed packet", reason: "it does not open with this key: it was changed, or sealed to another key")
        }
    }
}
