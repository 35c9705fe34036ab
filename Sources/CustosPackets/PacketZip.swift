import Crypto
import CustosCore
import Foundation
import ZIPFoundation

/// Reading a packet zip without trusting it: nothing is extracted beyond what the bag's own
/// manifests and Payload-Oxum declare, so a small zip cannot fill the disk before any check.
public enum PacketZip {
    /// Tag files are small; a larger one is refused.
    static let tagFileLimit: UInt64 = 16 << 20
    static let tagFiles: Set<String> = ["bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt",
                                        PacketWriter.signatureFile, PacketWriter.keyFile]

    /// Extracts the bag in `zip` into `folder` (the bag's top level, whether or not the zip
    /// holds it inside one folder). Payload entries are written only if a manifest lists them
    /// and only up to the Payload-Oxum's byte count in all; an unlisted entry is written empty,
    /// so the verifier reports it without its bytes ever touching the disk.
    /// Returns what it did not extract, each named (a symbolic link, an entry outside the bag's
    /// folder): nothing in a packet goes unmentioned.
    @discardableResult
    public static func extract(_ zip: URL, to folder: URL) throws -> [String] {
        let archive: Archive
        do { archive = try Archive(url: zip, accessMode: .read) } catch {
            throw CustosError.invalidInput(field: zip.lastPathComponent, reason: "not a readable zip: \(error)")
        }
        let files = archive.filter { $0.type == .file }
        // The bag's root: "" or one leading folder holding bagit.txt.
        let root = files.first { $0.path.hasSuffix("bagit.txt") && $0.path.split(separator: "/").count <= 2 }
            .map { String($0.path.dropLast("bagit.txt".count)) } ?? ""
        var ignored: [String] = archive.filter { $0.type == .symlink }.map { "symbolic link \(quoted($0.path))" }
        ignored += archive.filter { $0.type == .directory && !$0.path.hasPrefix(root) }.map { "folder \(quoted($0.path)) outside the bag's folder \(quoted(root))" }
        var relative: [(Entry, String)] = []
        for entry in files {
            guard entry.path.hasPrefix(root) else {
                ignored.append("file \(quoted(entry.path)) outside the bag's folder \(quoted(root))")
                continue
            }
            let path = String(entry.path.dropFirst(root.count))
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            guard !path.hasPrefix("/"), !parts.contains(".."), !parts.contains("") else {
                throw CustosError.invalidInput(field: zip.lastPathComponent, reason: "entry \(quoted(entry.path)) would land outside the packet")
            }
            relative.append((entry, path))
        }
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        struct Overrun: Error {}
        /// Writes at most `limit` bytes of the entry (the declared size can lie; the bytes
        /// actually inflated are what count); a longer entry is cut there and fails its hash.
        func write(_ entry: Entry, _ path: String, limit: UInt64) throws -> UInt64 {
            let url = folder.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            guard fm.createFile(atPath: url.path, contents: nil), let handle = FileHandle(forWritingAtPath: url.path) else {
                throw CustosError.storage(cause: "cannot write \(url.path)")
            }
            defer { try? handle.close() }
            guard limit > 0 else { return 0 }
            var written: UInt64 = 0
            do {
                _ = try archive.extract(entry) { chunk in
                    let room = limit - written
                    try handle.write(contentsOf: chunk.prefix(Int(min(room, UInt64(chunk.count)))))
                    written += min(room, UInt64(chunk.count))
                    if UInt64(chunk.count) > room { throw Overrun() }
                }
            } catch is Overrun {
            } catch {
                throw CustosError.invalidInput(field: zip.lastPathComponent, reason: "entry \(quoted(path)) cannot be read: \(error)")
            }
            return written
        }
        for (entry, path) in relative where tagFiles.contains(path) {
            _ = try write(entry, path, limit: tagFileLimit)
        }
        let listed = Set((PacketVerifier.manifest(fm.contents(atPath: folder.appendingPathComponent("manifest-sha256.txt").path)) ?? []).map(\.path))
        let info = PacketVerifier.bagInfo(fm.contents(atPath: folder.appendingPathComponent("bag-info.txt").path))
        var budget = info["Payload-Oxum"].flatMap { UInt64($0.split(separator: ".").first ?? "") } ?? 0
        for (entry, path) in relative where !tagFiles.contains(path) {
            if listed.contains(path) && entry.uncompressedSize <= budget {
                budget -= try write(entry, path, limit: budget)
            } else {
                // Unlisted, or beyond the declared payload: present (so it is named), but empty.
                _ = try write(entry, path, limit: 0)
            }
        }
        return ignored
    }

    /// SHA-256 (hex) and size of a file, read in 1 MiB pieces; nil when it cannot be read.
    static func hash(file: URL) -> (String, Int)? {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return nil }
        defer { try? handle.close() }
        var hasher = SHA256()
        var size = 0
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            size += chunk.count
        }
        return (Hex.encode(hasher.finalize()), size)
    }
}
