@preconcurrency import Crypto
import Foundation

/// Cosignatures (c2sp.org/tlog-cosignature, cosignature/v1 over Ed25519): a witness's signed
/// statement that, at a time, the checkpoint is the largest consistent one it has seen of a log.
public enum Cosignature {
    /// SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]
    public static func keyID(name: String, key: Curve25519.Signing.PublicKey) -> [UInt8] {
        SignedNote.keyID(name: name, key: key, type: 0x04)
    }

    /// "cosignature/v1\ntime <t>\n" followed by the checkpoint's note body.
    static func message(body: String, timestamp: UInt64) -> Data {
        Data("cosignature/v1\ntime \(timestamp)\n\(body)".utf8)
    }

    /// The signature line `— <name> base64(key ID || u64 timestamp || signature)` for `body`.
    public static func sign(body: String, name: String, key: Curve25519.Signing.PrivateKey, timestamp: UInt64) throws -> String {
        let signature = try key.signature(for: message(body: body, timestamp: timestamp))
        var blob = keyID(name: name, key: key.publicKey)
        blob += withUnsafeBytes(of: timestamp.bigEndian, Array.init)
        blob += Array(signature)
        return "\u{2014} \(name) \(Data(blob).base64EncodedString())\n"
    }

    /// The cosignature by (`name`, `key`) among a note's signature lines, verified over its
    /// body: its timestamp, or nil when the note carries none from that key.
    public static func verify(note: String, name: String, key: Curve25519.Signing.PublicKey) throws(NoteError) -> UInt64? {
        guard let sep = note.range(of: "\n\n", options: .backwards) else { throw NoteError("no blank line before the signatures") }
        let body = String(note[..<note.index(after: sep.lowerBound)])
        let want = keyID(name: name, key: key)
        for line in note[sep.upperBound...].split(separator: "\n") {
            let parts = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard line.hasPrefix("\u{2014} "), parts.count == 2, String(parts[0]) == name,
                  let blob = Data(base64Encoded: String(parts[1])), blob.count == 4 + 8 + 64, Array(blob.prefix(4)) == want else { continue }
            let timestamp = blob.dropFirst(4).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard key.isValidSignature(blob.suffix(64), for: message(body: body, timestamp: timestamp)) else {
                throw NoteError("the cosignature by \(name) does not verify")
            }
            return timestamp
        }
        return nil
    }
}

/// A verifier key as c2sp.org/signed-note writes it: `<name>+<hex key id>+<base64(type || key)>`.
/// Custos uses type 0x04 (a cosignature/v1 witness) and 0x01 (an Ed25519 log key).
public struct VerifierKey: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let type: UInt8
    public let key: Curve25519.Signing.PublicKey

    public init(name: String, type: UInt8, key: Curve25519.Signing.PublicKey) { self.name = name; self.type = type; self.key = key }
    public static func == (a: VerifierKey, b: VerifierKey) -> Bool { a.description == b.description }

    public var keyID: [UInt8] { SignedNote.keyID(name: name, key: key, type: type) }

    public var description: String {
        "\(name)+\(Hex.encode(keyID))+\(Data([type] + Array(key.rawRepresentation)).base64EncodedString())"
    }

    public init(parsing text: String) throws(NoteError) {
        let parts = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[0].contains(where: { $0.isWhitespace }),
              let raw = Data(base64Encoded: String(parts[2])), raw.count == 33, raw.first == 0x04 || raw.first == 0x01,
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw.dropFirst()) else {
            throw NoteError("\(quoted(text)) is not a verifier key (NAME+KEYID+BASE64 with an Ed25519 key)")
        }
        self.init(name: String(parts[0]), type: raw[raw.startIndex], key: key)
        guard Hex.encode(keyID) == parts[1].lowercased() else { throw NoteError("\(quoted(text)): the key id does not match the name and key") }
    }
}

/// The witness's rule (c2sp.org/tlog-witness add-checkpoint), as a pure function over the
/// latest checkpoint it cosigned per log origin.
public enum WitnessRules {
    /// One add-checkpoint request body: `old N`, proof lines, a blank line, the checkpoint note.
    public struct Request: Sendable {
        public let oldSize: Int64
        public let proof: [Merkle.Hash]
        public let note: String

        public init(oldSize: Int64, proof: [Merkle.Hash], note: String) { self.oldSize = oldSize; self.proof = proof; self.note = note }

        public var body: String {
            "old \(oldSize)\n" + proof.map { Data($0).base64EncodedString() + "\n" }.joined() + "\n" + note
        }

        public init(parsing text: String) throws(Refusal) {
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)[...]
            guard let first = lines.popFirst(), first.hasPrefix("old "), let old = Int64(first.dropFirst(4)), old >= 0,
                  String(old) == first.dropFirst(4) else { throw Refusal(400, "the first line must be `old SIZE`") }
            var proof: [Merkle.Hash] = []
            while let line = lines.popFirst(), !line.isEmpty {
                guard proof.count < 63, let h = Data(base64Encoded: String(line)), h.count == 32 else {
                    throw Refusal(400, "a consistency proof line is not a base64 SHA-256 hash (or there are more than 63)")
                }
                proof.append(Array(h))
            }
            self.init(oldSize: old, proof: proof, note: lines.joined(separator: "\n"))
        }
    }

    /// An HTTP status and the body the protocol prescribes for it.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public let status: Int
        public let body: String
        public init(_ status: Int, _ body: String) { self.status = status; self.body = body }
        public var description: String { "\(status): \(body)" }
    }

    public struct Seen: Sendable, Equatable, Codable {
        public var size: Int64
        public var root: String
        public init(size: Int64, root: String) { self.size = size; self.root = root }
    }

    /// Checks a request against the logs this witness follows (origin → the log's key) and
    /// the latest checkpoint it cosigned for each; returns the checkpoint to record.
    public static func add(_ r: Request, logs: [String: Curve25519.Signing.PublicKey], seen: [String: Seen]) throws(Refusal) -> (origin: String, checkpoint: Checkpoint) {
        guard let sep = r.note.range(of: "\n\n") else { throw Refusal(400, "the checkpoint is not a signed note") }
        let checkpoint: Checkpoint
        do { checkpoint = try Checkpoint(text: String(r.note[..<r.note.index(after: sep.lowerBound)])) } catch {
            throw Refusal(400, "the checkpoint cannot be read: \(error)")
        }
        guard let key = logs[checkpoint.origin] else { throw Refusal(404, "unknown log origin") }
        do { _ = try SignedNote.verify(note: r.note, name: checkpoint.origin, key: key) } catch {
            throw Refusal(403, "the checkpoint is not signed by the log's key")
        }
        guard r.oldSize <= checkpoint.size else { throw Refusal(400, "old size is larger than the checkpoint's") }
        let latest = seen[checkpoint.origin]
        guard r.oldSize == latest?.size ?? 0 else { throw Refusal(409, "\(latest?.size ?? 0)\n") }
        if let latest, latest.size > 0 {
            guard let oldRoot = Data(base64Encoded: latest.root).map(Array.init) else { throw Refusal(500, "the witness's state is damaged") }
            if latest.size == checkpoint.size {
                guard oldRoot == checkpoint.root else { throw Refusal(409, "\(latest.size)\n") }
            } else if !Merkle.verifyConsistency(size1: latest.size, size2: checkpoint.size, root1: oldRoot, root2: checkpoint.root, proof: r.proof) {
                throw Refusal(422, "the consistency proof does not verify")
            }
        } else if !r.proof.isEmpty {
            throw Refusal(422, "the proof must be empty when the old size is zero")
        }
        return (checkpoint.origin, checkpoint)
    }
}
