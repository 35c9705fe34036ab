import ArgumentParser
import CustosCore
import CustosMedia
import CustosStore
import Foundation

struct HashListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hashlist",
        abstract: "Lists of hashes of known material, matched against every attachment (docs/known-material.md).",
        subcommands: [HashListImport.self, HashListList.self, HashListRemove.self, HashListExport.self, HashListRescan.self, HashListCheck.self])
}

extension HashKind: ExpressibleByArgument {}
extension HashListFile.ExportFormat: ExpressibleByArgument {}

private func describe(_ f: FoundMatch) -> String {
    "match: flag \(terminalSafe(f.flag)) attachment \(f.attachment.prefix(16))… \(terminalSafe(f.match.words))"
}

struct HashListImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a list (compliance, admin), then match every stored attachment against it.",
        discussion: """
            FILE holds one hex hash per line with an optional ',label', or the CSV HMA and ThreatExchange export (a header \\
            naming signal_value, signal or hash, and optionally signal_type and label). The whole file is checked first: a \\
            malformed line names its line number and nothing is stored. The custody entry records the file's SHA-256, the \\
            entries' digest and their count.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The list file (at most 1 GiB).") var file: String
    @Option(help: "The list's name: a-z, 0-9, '.', '_', '-'; never reused.") var name: String
    @Option(help: "pdq, md5 or sha256.") var kind: HashKind
    @Option(help: "Where the list comes from (e.g. 'NCMEC industry hash sharing, 2026-12').") var source: String?
    @Option(help: "What the list's material is (csam, ...).") var category: CustosCore.Category?
    @Option(help: "PDQ: the largest Hamming distance that matches (default 31).") var threshold: Int?
    @Option(name: .customLong("min-quality"), help: "PDQ: images of lower quality are not matched (default 50).") var minQuality: Int?
    func run() throws {
        let store = try global.open()
        let bytes = try readInput(file, limit: KnownMaterial.maxFileBytes)
        let r = try store.importHashList(Array(bytes), file: file, name: name, kind: kind, source: source, category: category,
                                         threshold: threshold, minQuality: minQuality)
        print("imported hash list \(terminalSafe(r.name)): \(r.count) \(kind.rawValue) hashes (file sha256 \(r.fileSHA256))")
        for m in r.matches { print(describe(m)) }
        print("\(r.matches.count) new match\(r.matches.count == 1 ? "" : "es") among the stored attachments")
    }
}

struct HashListList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The hash lists, their rules and how many flags each matched.")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false
    func run() throws {
        let lists = try global.open(.read).hashLists()
        if json {
            printJSON(.array(lists.map { l in .object([
                ("name", .string(l.name)), ("kind", .string(l.kind)), ("source", l.source.map { .string($0) }), ("category", l.category.map { .string($0) }),
                ("threshold", l.threshold.map { .integer(Int64($0)) }), ("min_quality", l.minQuality.map { .integer(Int64($0)) }),
                ("count", .integer(Int64(l.count))), ("file_sha256", l.fileSHA256.map { .string($0) }), ("created_at", .string(l.createdAt)),
                ("created_by", .string(l.createdBy)), ("removed_at", l.removedAt.map { .string($0) }), ("matched_flags", .integer(Int64(l.matchedFlags))),
            ]) }))
            return
        }
        if lists.isEmpty { print("no hash lists (custos hashlist import FILE --name NAME --kind pdq|md5|sha256)") }
        for l in lists {
            let rule = l.threshold.map { " distance<=\($0) quality>=\(l.minQuality ?? KnownMaterial.defaultMinQuality)" } ?? ""
            print(pad(terminalSafe(l.name), 20) + pad(l.kind, 7) + pad("\(l.count)", 9) + pad("\(l.matchedFlags) flags", 10)
                  + (l.removedAt.map { "removed \($0)" } ?? "in use") + rule + (l.source.map { "  " + terminalSafe($0) } ?? ""))
        }
    }
}

struct HashListRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Stop matching a list (compliance, admin); its entries and matches stay.")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    @Option var reason: String
    func run() throws {
        try global.open().removeHashList(name, reason: reason)
        print("removed hash list \(terminalSafe(name)) from matching")
    }
}

struct HashListExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a list's entries (e.g. org-confirmed, for sharing) to standard output or a file.")
    @OptionGroup var global: GlobalOptions
    @Argument var name: String
    @Option(help: "hma (CSV: signal_type,signal_value,label) or lines (hash,label).") var format: HashListFile.ExportFormat = .hma
    @Option(help: "Write here instead of standard output (never overwritten).") var out: String?
    func run() throws {
        let text = HashListFile.export(try global.open(.read).hashListEntries(name), format: format)
        if let out {
            try InputPath.requireRegularFile(out, role: "--out", mayBeMissing: true)
            guard !FileManager.default.fileExists(atPath: out) else { throw CustosError.conflict(subject: out, reason: "already exists; refusing to overwrite it") }
            try Data(text.utf8).write(to: URL(fileURLWithPath: out), options: .withoutOverwriting)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

struct HashListRescan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rescan", abstract: "Match every stored attachment against the lists in use again (records only new matches).")
    @OptionGroup var global: GlobalOptions
    func run() throws {
        let found = try global.open().matchStoredAttachments()
        for m in found { print(describe(m)) }
        print("\(found.count) new match\(found.count == 1 ? "" : "es")")
    }
}

struct HashListCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Check files or hashes against the lists in use, without recording anything.",
        discussion: "Each argument is a file, or a hash: 64 hex digits are tried as PDQ and SHA-256, 32 as MD5.")
    @OptionGroup var global: GlobalOptions
    @Argument var items: [String]
    @Option(help: .hidden) var measure: Int?
    func run() throws {
        let store = try global.open(.read)
        if let n = measure {
            let m = try store.measurePDQQueries(n)
            print("pdq index: \(m.entries) entries, \(n) queries: median \(String(format: "%.1f", m.indexMicros)) us indexed, \(String(format: "%.1f", m.bruteMicros)) us brute force, same answers: \(m.same)")
            return
        }
        for item in items {
            let hashes: MediaHashes
            if FileManager.default.fileExists(atPath: item) {
                hashes = Media.hashes(of: try readInput(item, limit: 1 << 30))
            } else if let h = HashListFile.normalise(item, .md5) {
                hashes = MediaHashes(sha256: "", md5: h, pdq: nil, notHashed: nil, width: nil, height: nil)
            } else if let h = HashListFile.normalise(item, .pdq) {
                hashes = MediaHashes(sha256: h, md5: "", pdq: PDQ.Hash(hex: h), notHashed: nil, width: nil, height: nil)
            } else {
                throw CustosError.invalidInput(field: item, reason: "neither a file nor a hash (32 or 64 hex digits)")
            }
            let found = try store.check(hashes)
            print("\(terminalSafe(item)): " + (found.isEmpty ? "no match" : found.map { terminalSafe($0.words) + ($0.label.map { " [\(terminalSafe($0))]" } ?? "") }.joined(separator: "; ")))
        }
    }
}
