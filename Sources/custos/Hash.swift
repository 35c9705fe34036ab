import ArgumentParser
import CustosCore
import CustosMedia
import Foundation

struct HashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Print each file's SHA-256, MD5 and, for PNG and JPEG images, PDQ and its quality (no store needed).",
        discussion: """
            What a compliance officer compares with a hash list: industry lists are distributed as MD5 and as PDQ \\
            (Meta's perceptual hash, 64 hex digits; two images match at a small Hamming distance, on images of \\
            quality 50 or more). A file that is not a PNG or JPEG, or cannot be decoded, says why it has no PDQ. \\
            An image whose header claims more than 100 megapixels is refused before it is decoded.
            """)
    @Argument(help: "The files (at most 1 GiB each).") var files: [String]
    @Flag(help: "One JSON object per file, one per line.") var json = false

    func run() throws {
        for file in files {
            let h = Media.hashes(of: try readInput(file, limit: 1 << 30))
            if json {
                printJSON(.object([
                    ("file", .string(file)), ("sha256", .string(h.sha256)), ("md5", .string(h.md5)),
                    ("pdq", h.pdq.map { .string($0.hex) }), ("pdq_quality", h.pdq.map { .integer(Int64($0.quality)) }),
                    ("not_hashed", h.notHashed.map { .string($0) }),
                    ("width", h.width.map { .integer(Int64($0)) }), ("height", h.height.map { .integer(Int64($0)) }),
                ]))
                continue
            }
            print(terminalSafe(file))
            print("  sha256  \(h.sha256)")
            print("  md5     \(h.md5)")
            if let pdq = h.pdq {
                print("  pdq     \(pdq.hex)  quality \(pdq.quality)\(pdq.quality < 50 ? " (below 50: too little structure to match)" : "")")
            } else {
                print("  pdq     \(terminalSafe(h.notHashed ?? "not hashed"))")
            }
        }
    }
}
