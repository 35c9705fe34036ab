import CImage
import Crypto
import CustosCore
import Foundation

/// What Custos computes for an attachment: SHA-256 (its identity), MD5 (how industry hash lists
/// are distributed) and, for PNG and JPEG images, PDQ with its quality. Anything else, or an
/// image that cannot be decoded, says why it was not hashed.
public struct MediaHashes: Sendable, Equatable {
    public let sha256: String
    public let md5: String
    public let pdq: PDQ.Hash?
    /// Why there is no PDQ (`not hashed: …`); nil when there is one.
    public let notHashed: String?
    public let width: Int?
    public let height: Int?

    public init(sha256: String, md5: String, pdq: PDQ.Hash?, notHashed: String?, width: Int?, height: Int?) {
        self.sha256 = sha256; self.md5 = md5; self.pdq = pdq; self.notHashed = notHashed; self.width = width; self.height = height
    }
}

public enum Media {
    /// The largest image decoded: 100 megapixels (a 10,000 × 10,000 photograph), at most 65,535
    /// on a side. A header claiming more is refused before any pixel is allocated.
    public static let maxPixels: Int64 = 100_000_000

    public enum Decoded: Sendable {
        case image(rgb: [UInt8], width: Int, height: Int)
        /// Not a PNG or JPEG (a video, a document, plain bytes).
        case notAnImage
        case corrupt(String)
        case tooLarge(String)
    }

    /// PNG or JPEG bytes as 8-bit RGB (alpha dropped, as Meta's tools and Pillow do).
    public static func decode(_ bytes: Data, maxPixels: Int64 = Media.maxPixels) -> Decoded {
        var result = cimage_result()
        let code = bytes.withUnsafeBytes { b -> Int32 in
            guard let base = b.bindMemory(to: UInt8.self).baseAddress, !b.isEmpty else { return Int32(CIMAGE_UNKNOWN) }
            return cimage_decode(base, b.count, maxPixels, &result)
        }
        defer { cimage_free(&result) }
        let message = withUnsafeBytes(of: result.error) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        switch Int(code) {
        case Int(CIMAGE_OK):
            guard let rgb = result.rgb, result.width > 0, result.height > 0 else { return .corrupt("no pixels") }
            return .image(rgb: Array(UnsafeBufferPointer(start: rgb, count: Int(result.width) * Int(result.height) * 3)),
                          width: Int(result.width), height: Int(result.height))
        case Int(CIMAGE_TOO_LARGE): return .tooLarge(message)
        case Int(CIMAGE_CORRUPT): return .corrupt(message)
        default: return .notAnImage
        }
    }

    /// The hashes of one file's bytes; `mediaType` names what it is when it is not an image.
    public static func hashes(of bytes: Data, mediaType: String? = nil) -> MediaHashes {
        let sha = SHA256Hex.of(bytes), md5 = Hex.encode(Array(Insecure.MD5.hash(data: bytes)))
        switch decode(bytes) {
        case .image(let rgb, let width, let height):
            return MediaHashes(sha256: sha, md5: md5, pdq: PDQ.hash(rgb: rgb, width: width, height: height), notHashed: nil, width: width, height: height)
        case .notAnImage:
            return MediaHashes(sha256: sha, md5: md5, pdq: nil, notHashed: "not hashed: \(mediaType ?? "not a PNG or JPEG image")", width: nil, height: nil)
        case .corrupt(let why):
            return MediaHashes(sha256: sha, md5: md5, pdq: nil, notHashed: "not hashed: corrupt (\(why))", width: nil, height: nil)
        case .tooLarge(let why):
            return MediaHashes(sha256: sha, md5: md5, pdq: nil, notHashed: "not hashed: too large (\(why); at most \(maxPixels) pixels)", width: nil, height: nil)
        }
    }
}
