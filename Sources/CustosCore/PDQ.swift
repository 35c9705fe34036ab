import Foundation

/// PDQ, Meta's perceptual image hash (ThreatExchange, hashing/hashing.pdf): 256 bits that stay
/// close under resizing and recompression, and a quality score (0–100) saying how much
/// structure the image has. Hash lists of known material (NCMEC's industry list, StopNCII,
/// Lantern) are distributed as PDQ hashes; two images match when the Hamming distance between
/// their hashes is small (Meta advises ≤ 31, on images of quality ≥ 50).
///
/// The steps, as the algorithm description gives them:
/// 1. luminance from RGB (Y = 0.299 R + 0.587 G + 0.114 B), in single precision;
/// 2. a tent-like blur by two passes of one-dimensional box filters along rows then columns,
///    each window ⌈dimension / 128⌉ wide, then decimation to 64 × 64 at the cell centres;
/// 3. quality: the sum of quantised luminance gradients of the 64 × 64 image, over 90, at most 100;
/// 4. the 16 × 16 lowest non-constant coefficients of a two-dimensional DCT-II of the 64 × 64;
/// 5. one bit per coefficient: set when it exceeds the median (the lower of the two middle
///    values) of the 256.
///
/// Bits are numbered row by row (coefficient (i, j) is bit 16 i + j); the hexadecimal form is
/// the sixteen 16-bit words, the last word first, as Meta's tools print it.
/// Written from the description; `pdqhash` (PyPI, Meta's C++ reference) checks it in the tests.
public enum PDQ {
    public struct Hash: Sendable, Equatable {
        /// The 256 bits as 16 words: bit k is bit (k mod 16) of word k / 16.
        public var words: [UInt16]
        public var quality: Int

        public var hex: String { words.reversed().map { String(format: "%04x", $0) }.joined() }

        public init(words: [UInt16], quality: Int) { self.words = words; self.quality = quality }

        /// From 64 hex digits as Meta's tools print them.
        public init?(hex: String, quality: Int = 100) {
            let digits = Array(hex.utf8)
            guard digits.count == 64 else { return nil }
            var words: [UInt16] = []
            for i in stride(from: 0, to: 64, by: 4) {
                guard let w = UInt16(String(decoding: digits[i..<i + 4], as: UTF8.self), radix: 16) else { return nil }
                words.append(w)
            }
            self.init(words: words.reversed(), quality: quality)
        }

        public func bit(_ k: Int) -> Bool { words[k >> 4] & (1 << UInt16(k & 15)) != 0 }

        public func distance(to other: Hash) -> Int {
            zip(words, other.words).reduce(0) { $0 + ($1.0 ^ $1.1).nonzeroBitCount }
        }
    }

    /// Images smaller than this on either side get an all-zero hash of quality 0.
    public static let minimumDimension = 5

    /// The hash of an image given as 8-bit RGB triples, row by row (nil when the bytes are not
    /// `width` × `height` pixels).
    public static func hash(rgb: [UInt8], width: Int, height: Int) -> Hash? {
        guard width >= 0, height >= 0, rgb.count == width * height * 3 else { return nil }
        var luma = [Float](repeating: 0, count: width * height)
        for p in 0..<(width * height) {
            luma[p] = Float(0.299) * Float(rgb[3 * p]) + Float(0.587) * Float(rgb[3 * p + 1]) + Float(0.114) * Float(rgb[3 * p + 2])
        }
        return hash(luma: luma, width: width, height: height)
    }

    /// The hash of an image given as 8-bit grey values, row by row (nil when the bytes are not
    /// `width` × `height` pixels).
    public static func hash(grey: [UInt8], width: Int, height: Int) -> Hash? {
        guard width >= 0, height >= 0, grey.count == width * height else { return nil }
        return hash(luma: grey.map(Float.init), width: width, height: height)
    }

    /// The hash of a luminance image, row by row.
    public static func hash(luma: [Float], width: Int, height: Int) -> Hash {
        guard width >= minimumDimension, height >= minimumDimension else { return Hash(words: Array(repeating: 0, count: 16), quality: 0) }
        let small = downsample(luma, width: width, height: height)
        let coefficients = dct16(small)
        let median = coefficients.sorted()[127]
        var words = [UInt16](repeating: 0, count: 16)
        for k in 0..<256 where coefficients[k] > median { words[k >> 4] |= 1 << UInt16(k & 15) }
        return Hash(words: words, quality: quality(small))
    }

    // MARK: the steps

    /// Blur (two passes of box filters along rows, then columns) and decimate to 64 × 64.
    static func downsample(_ luma: [Float], width: Int, height: Int) -> [Float] {
        if width == 64 && height == 64 { return luma }
        let rowWindow = (width + 127) / 128, columnWindow = (height + 127) / 128
        var a = luma, b = [Float](repeating: 0, count: luma.count)
        for _ in 0..<2 {
            for i in 0..<height { box(a, into: &b, start: i * width, count: width, stride: 1, window: rowWindow) }
            for j in 0..<width { box(b, into: &a, start: j, count: height, stride: width, window: columnWindow) }
        }
        var out = [Float](repeating: 0, count: 64 * 64)
        for i in 0..<64 {
            let row = Int((Double(i) + 0.5) * Double(height) / 64)
            for j in 0..<64 {
                out[i * 64 + j] = a[row * width + Int((Double(j) + 0.5) * Double(width) / 64)]
            }
        }
        return out
    }

    /// A one-dimensional box filter of `window` samples centred on each output (narrower at the
    /// ends, where it averages only what it covers).
    static func box(_ input: [Float], into output: inout [Float], start: Int, count: Int, stride: Int, window: Int) {
        let half = (window + 2) / 2
        var sum: Float = 0, size = 0
        var read = start, drop = start, write = start
        for _ in 0..<max(0, half - 1) { sum += input[read]; size += 1; read += stride }
        for _ in 0..<max(0, window - half + 1) {
            sum += input[read]; size += 1
            output[write] = sum / Float(size)
            read += stride; write += stride
        }
        for _ in 0..<max(0, count - window) {
            sum += input[read]; sum -= input[drop]
            output[write] = sum / Float(size)
            drop += stride; read += stride; write += stride
        }
        for _ in 0..<max(0, half - 1) {
            sum -= input[drop]; size -= 1
            output[write] = sum / Float(size)
            drop += stride; write += stride
        }
    }

    /// Gradients of the 64 × 64 image, quantised to percent of full scale, summed, over 90.
    static func quality(_ a: [Float]) -> Int {
        var sum = 0
        for i in 0..<63 { for j in 0..<64 { sum += abs(Int((a[i * 64 + j] - a[(i + 1) * 64 + j]) * 100 / 255)) } }
        for i in 0..<64 { for j in 0..<63 { sum += abs(Int((a[i * 64 + j] - a[i * 64 + j + 1]) * 100 / 255)) } }
        return min(100, sum / 90)
    }

    /// The DCT-II basis rows 1…16 over 64 samples, scaled by √(2/64).
    static let basis: [Float] = {
        var d = [Float](repeating: 0, count: 16 * 64)
        // The scale is a single-precision constant; each entry is its product with the cosine
        // taken in double precision, then rounded once (as the reference computes it).
        let scale = Double(Float((2.0 / 64.0).squareRoot()))
        for i in 0..<16 {
            for j in 0..<64 { d[i * 64 + j] = Float(scale * cos(Double.pi / 2 / 64 * Double(i + 1) * Double(2 * j + 1))) }
        }
        return d
    }()

    /// D · A · Dᵀ for the 16 × 64 basis D: the 16 × 16 coefficients, row by row.
    static func dct16(_ a: [Float]) -> [Float] {
        var t = [Float](repeating: 0, count: 16 * 64)
        for i in 0..<16 {
            for j in 0..<64 {
                var sum: Float = 0
                for k in 0..<64 { sum += basis[i * 64 + k] * a[k * 64 + j] }
                t[i * 64 + j] = sum
            }
        }
        var out = [Float](repeating: 0, count: 256)
        for i in 0..<16 {
            for j in 0..<16 {
                var sum: Float = 0
                for k in 0..<64 { sum += t[i * 64 + k] * basis[j * 64 + k] }
                out[i * 16 + j] = sum
            }
        }
        return out
    }
}
