import Crypto
import Foundation

/// The organisation's Ed25519 key in the encodings third parties read: PKCS#8 PEM for the
/// private key file, SubjectPublicKeyInfo PEM for the public key (what `openssl pkey -pubin`
/// and `openssl pkeyutl -verify -pubin` read).
public enum KeyEncoding {
    static let spkiPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]
    static let pkcs8Prefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70,
                                       0x04, 0x22, 0x04, 0x20]

    public static func publicKeyDER(_ key: Curve25519.Signing.PublicKey) -> [UInt8] {
        spkiPrefix + Array(key.rawRepresentation)
    }

    public static func publicKeyPEM(_ key: Curve25519.Signing.PublicKey) -> String {
        pem(label: "PUBLIC KEY", der: publicKeyDER(key))
    }

    public static func privateKeyPEM(_ key: Curve25519.Signing.PrivateKey) -> String {
        pem(label: "PRIVATE KEY", der: pkcs8Prefix + Array(key.rawRepresentation))
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER, hex: the key's fingerprint.
    public static func fingerprint(_ key: Curve25519.Signing.PublicKey) -> String {
        SHA256Hex.of(publicKeyDER(key))
    }

    public static func publicKey(pem text: String) throws(KeyError) -> Curve25519.Signing.PublicKey {
        let raw = try keyBytes(text, label: "PUBLIC KEY", prefix: spkiPrefix, else: "not an Ed25519 public key (SubjectPublicKeyInfo)")
        do { return try Curve25519.Signing.PublicKey(rawRepresentation: raw) } catch {
            throw KeyError("invalid Ed25519 public key")
        }
    }

    public static func privateKey(pem text: String) throws(KeyError) -> Curve25519.Signing.PrivateKey {
        let raw = try keyBytes(text, label: "PRIVATE KEY", prefix: pkcs8Prefix, else: "not an Ed25519 private key (PKCS#8)")
        do { return try Curve25519.Signing.PrivateKey(rawRepresentation: raw) } catch {
            throw KeyError("invalid Ed25519 private key")
        }
    }

    // X25519 (RFC 8410, OID 1.3.101.110): an agency's key for sealed packets.
    static let x25519SPKIPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x6E, 0x03, 0x21, 0x00]
    static let x25519PKCS8Prefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x6E,
                                             0x04, 0x22, 0x04, 0x20]

    public static func agreementPublicKey(pem text: String) throws(KeyError) -> Curve25519.KeyAgreement.PublicKey {
        let problem = "not an X25519 public key (SubjectPublicKeyInfo; `openssl genpkey -algorithm X25519` makes one)"
        guard let key = try? Curve25519.KeyAgreement.PublicKey(
            rawRepresentation: try keyBytes(text, label: "PUBLIC KEY", prefix: x25519SPKIPrefix, else: problem)) else { throw KeyError(problem) }
        return key
    }

    public static func agreementPrivateKey(pem text: String) throws(KeyError) -> Curve25519.KeyAgreement.PrivateKey {
        let problem = "not an X25519 private key (PKCS#8)"
        guard let key = try? Curve25519.KeyAgreement.PrivateKey(
            rawRepresentation: try keyBytes(text, label: "PRIVATE KEY", prefix: x25519PKCS8Prefix, else: problem)) else { throw KeyError(problem) }
        return key
    }

    public static func publicKeyPEM(_ key: Curve25519.KeyAgreement.PublicKey) -> String {
        pem(label: "PUBLIC KEY", der: x25519SPKIPrefix + Array(key.rawRepresentation))
    }

    public static func privateKeyPEM(_ key: Curve25519.KeyAgreement.PrivateKey) -> String {
        pem(label: "PRIVATE KEY", der: x25519PKCS8Prefix + Array(key.rawRepresentation))
    }

    public static func fingerprint(_ key: Curve25519.KeyAgreement.PublicKey) -> String {
        SHA256Hex.of(x25519SPKIPrefix + Array(key.rawRepresentation))
    }

    /// The 32 key bytes of a PEM block whose DER is exactly `prefix` (the algorithm's fixed
    /// SubjectPublicKeyInfo or PKCS#8 header) and the key; `problem` when it is anything else.
    static func keyBytes(_ text: String, label: String, prefix: [UInt8], else problem: String) throws(KeyError) -> [UInt8] {
        let der = try unpem(text, label: label)
        guard der.count == prefix.count + 32, Array(der.prefix(prefix.count)) == prefix else { throw KeyError(problem) }
        return Array(der.suffix(32))
    }

    static func pem(label: String, der: [UInt8]) -> String {
        let b64 = Data(der).base64EncodedString()
        var lines: [String] = []
        var rest = Substring(b64)
        while !rest.isEmpty { lines.append(String(rest.prefix(64))); rest = rest.dropFirst(64) }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }

    static func unpem(_ text: String, label: String) throws(KeyError) -> [UInt8] {
        let begin = "-----BEGIN \(label)-----", end = "-----END \(label)-----"
        guard let b = text.range(of: begin), let e = text.range(of: end), b.upperBound <= e.lowerBound else {
            throw KeyError("no \(begin) block")
        }
        let body = text[b.upperBound..<e.lowerBound].filter { !$0.isWhitespace }
        guard let der = Data(base64Encoded: String(body)) else { throw KeyError("invalid base64 in the PEM block") }
        return Array(der)
    }
}

public struct KeyError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 signatures.
public enum SignedNote {
    /// key ID = SHA-256(key name || 0x0A || type || 32-byte public key)[:4]; type 0x01 is an
    /// Ed25519 note signature, 0x04 a cosignature/v1.
    public static func keyID(name: String, key: Curve25519.Signing.PublicKey, type: UInt8 = 0x01) -> [UInt8] {
        var h = SHA256()
        h.update(data: Data(name.utf8))
        h.update(data: [0x0A, type])
        h.update(data: key.rawRepresentation)
        return Array(h.finalize().prefix(4))
    }

    /// Signs `text` (which must end in a newline) and returns the whole note.
    public static func sign(text: String, name: String, key: Curve25519.Signing.PrivateKey) throws -> String {
        precondition(text.hasSuffix("\n"))
        let signature = try key.signature(for: Data(text.utf8))
        let blob = keyID(name: name, key: key.publicKey) + Array(signature)
        return text + "\n" + "\u{2014} " + name + " " + Data(blob).base64EncodedString() + "\n"
    }

    /// Verifies a note against one known key and returns its text. Signatures from other
    /// keys are ignored, as the spec requires; a note with no valid signature from the
    /// known key is rejected.
    public static func verify(note: String, name: String, key: Curve25519.Signing.PublicKey) throws(NoteError) -> String {
        guard note.hasSuffix("\n") else { throw NoteError("note does not end in a newline") }
        guard !note.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) else {
            throw NoteError("note contains control characters")
        }
        guard let sep = note.range(of: "\n\n", options: .backwards) else { throw NoteError("no blank line before the signatures") }
        let text = String(note[..<note.index(after: sep.lowerBound)])
        let sigLines = note[sep.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard !sigLines.isEmpty else { throw NoteError("no signature lines") }
        let wantID = keyID(name: name, key: key)
        var sawKnown = false
        for line in sigLines {
            guard line.hasPrefix("\u{2014} ") else { throw NoteError("malformed signature line") }
            let parts = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, let blob = Data(base64Encoded: String(parts[1])), blob.count > 4 else {
                throw NoteError("malformed signature line")
            }
            guard String(parts[0]) == name, Array(blob.prefix(4)) == wantID else { continue }
            sawKnown = true
            guard key.isValidSignature(blob.dropFirst(4), for: Data(text.utf8)) else {
                throw NoteError("signature by \(name) does not verify")
            }
        }
        guard sawKnown else { throw NoteError("no signature from the known key \(name)") }
        return text
    }
}

public struct NoteError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// C2SP tlog-checkpoint body: origin, tree size, base64 root hash.
public struct Checkpoint: Equatable, Sendable {
    public var origin: String
    public var size: Int64
    public var root: Merkle.Hash

    public init(origin: String, size: Int64, root: Merkle.Hash) { self.origin = origin; self.size = size; self.root = root }

    public var text: String { "\(origin)\n\(size)\n\(Data(root).base64EncodedString())\n" }

    public init(text: String) throws(NoteError) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 4, lines.last == "", !lines[0].isEmpty,
              let size = Int64(lines[1]), size >= 0, String(size) == lines[1],
              let root = Data(base64Encoded: String(lines[2])), root.count == 32 else {
            throw NoteError("malformed checkpoint")
        }
        self.init(origin: String(lines[0]), size: size, root: Array(root))
    }
}

/// C2SP tlog-proof@v1 (https://c2sp.org/tlog-proof): index, inclusion path, signed checkpoint.
public struct TlogProof: Equatable, Sendable {
    public var index: Int64
    public var path: [Merkle.Hash]
    public var checkpointNote: String
    public var extra: Data?

    public init(index: Int64, path: [Merkle.Hash], checkpointNote: String, extra: Data? = nil) {
        self.index = index; self.path = path; self.checkpointNote = checkpointNote; self.extra = extra
    }

    public static let header = "c2sp.org/tlog-proof@v1"

    public var text: String {
        var s = Self.header + "\n"
        if let extra { s += "extra " + extra.base64EncodedString() + "\n" }
        s += "index \(index)\n"
        for h in path { s += Data(h).base64EncodedString() + "\n" }
        return s + "\n" + checkpointNote
    }

    public init(text: String) throws(NoteError) {
        guard let blank = text.range(of: "\n\n") else { throw NoteError("tlog-proof: no blank line before the checkpoint") }
        var lines = text[..<blank.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)[...]
        guard lines.first == Substring(Self.header) else { throw NoteError("tlog-proof: first line is not \(Self.header)") }
        lines = lines.dropFirst()
        var extra: Data?
        if let l = lines.first, l.hasPrefix("extra ") {
            guard let d = Data(base64Encoded: String(l.dropFirst(6))) else { throw NoteError("tlog-proof: bad extra") }
            extra = d
            lines = lines.dropFirst()
        }
        guard let il = lines.first, il.hasPrefix("index "), let index = Int64(il.dropFirst(6)), index >= 0,
              String(index) == il.dropFirst(6) else { throw NoteError("tlog-proof: bad index line") }
        var path: [Merkle.Hash] = []
        for l in lines.dropFirst() {
            guard let h = Data(base64Encoded: String(l)), h.count == 32 else { throw NoteError("tlog-proof: bad hash line") }
            path.append(Array(h))
        }
        self.init(index: index, path: path, checkpointNote: String(text[blank.upperBound...]), extra: extra)
    }

    /// Checks the proof offline: the checkpoint's signature by `key` (key name = origin),
    /// then the entry's inclusion in the checkpointed tree.
    public func verify(entry: Data, key: Curve25519.Signing.PublicKey, origin: String? = nil) throws(NoteError) -> Checkpoint {
        guard let firstLine = checkpointNote.split(separator: "\n").first else { throw NoteError("empty checkpoint") }
        let name = origin ?? String(firstLine)
        let body = try SignedNote.verify(note: checkpointNote, name: name, key: key)
        let checkpoint = try Checkpoint(text: body)
        guard checkpoint.origin == name else { throw NoteError("checkpoint origin is not \(name)") }
        guard Merkle.verifyInclusion(index: index, size: checkpoint.size, leaf: Merkle.leafHash(entry),
                                     proof: path, root: checkpoint.root) else {
            throw NoteError("entry \(index) is not included in the checkpoint of size \(checkpoint.size)")
        }
        return checkpoint
    }
}
