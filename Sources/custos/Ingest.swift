import ArgumentParser
import CustosCore
import CustosStore
import Foundation

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store flag records (JSON Lines, or PAN 2012 XML).",
        discussion: "Exit status: 0 every record was stored or already present; 3 some records were rejected (the others were stored); 1 a fatal error stopped the run (records already committed stay stored).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Input files; - reads standard input.") var files: [String]
    enum Format: String, ExpressibleByArgument { case jsonl, pan12 }
    @Option(help: "jsonl or pan12.") var format: Format = .jsonl
    @Option(help: "Append rejected records, verbatim, to this file.") var rejects: String?
    @Option(help: "PAN 2012: the platform the corpus came from.") var platform: String = "PAN2012"
    @Option(help: "PAN 2012: the date of each conversation's first message (YYYY-MM-DD).") var date: String?

    func validate() throws {
        if format == .pan12, date.flatMap(Timestamp.parseDate) == nil {
            throw ValidationError("--format pan12 needs --date YYYY-MM-DD (the corpus has times without dates)")
        }
    }

    func run() throws {
        // Every input is checked before the store is opened: a regular file (or - for stdin).
        for file in files where file != "-" { try InputPath.requireRegularFile(file, role: "input") }
        if let rejects { try InputPath.requireRegularFile(rejects, role: "--rejects", mayBeMissing: true) }
        let store = try global.open()
        var rejectsHandle: FileHandle?
        if let rejects {
            if !FileManager.default.fileExists(atPath: rejects) { _ = FileManager.default.createFile(atPath: rejects, contents: nil) }
            guard let h = FileHandle(forWritingAtPath: rejects) else { throw CustosError.storage(cause: "cannot write the rejects file \(rejects)") }
            _ = try h.seekToEnd()
            rejectsHandle = h
        }
        let ingestor = Ingestor(store: store)
        let tty = isatty(STDERR_FILENO) == 1
        ingestor.onReject = { r in
            FileHandle.standardError.write(Data(terminalSafe("\(r.location): \(r.reason)") .utf8) + Data([0x0A]))
            if let h = rejectsHandle, !r.raw.isEmpty { h.write(Data(r.raw + [0x0A])) }
        }
        for file in files {
            let handle: FileHandle
            let base: URL?
            if file == "-" {
                handle = FileHandle.standardInput
                base = nil
            } else {
                guard let h = FileHandle(forReadingAtPath: file) else { throw CustosError.storage(cause: "cannot read \(file)") }
                handle = h
                base = URL(fileURLWithPath: file).deletingLastPathComponent()
            }
            let size = file == "-" ? 0 : ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value ?? 0)
            if tty && size > 8 << 20 {
                ingestor.onProgress = { n, bytes in
                    let pct = size > 0 ? Int(bytes * 100 / size) : 0
                    FileHandle.standardError.write(Data("\r\(file): \(n) records, \(pct)%".utf8))
                }
            } else { ingestor.onProgress = { _, _ in } }
            let name = file == "-" ? "<stdin>" : file
            do {
                if format == .pan12 {
                    guard let day = date.flatMap(Timestamp.parseDate) else {
                        throw CustosError.invalidInput(field: "--date", reason: "YYYY-MM-DD is required for PAN 2012")
                    }
                    try ingestor.ingestPan12(handle, name: name, platform: platform, startDay: day)
                } else {
                    try ingestor.ingestJSONLines(handle, name: name, baseDirectory: base)
                }
            } catch let e as CustosError {
                throw e
            } catch {
                throw CustosError.storage(cause: "\(name): \(error)")
            }
            if tty && size > 8 << 20 { FileHandle.standardError.write(Data("\n".utf8)) }
        }
        let s = ingestor.summary
        print("ingested \(s.ingested), duplicate \(s.duplicate), rejected \(s.rejected)")
        if s.rejected > 0 { throw ExitCode(3) }
    }
}

struct Gen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write synthetic flag records as JSON Lines to standard output (deterministic per seed).")
    @Option(help: "How many flags.") var flags: Int
    @Option(help: "Messages per conversation.") var messages: Int = 20
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Make every flag report this account id on one platform (one case).") var reported: String?

    func validate() throws {
        guard flags >= 0 else { throw ValidationError("--flags must be ≥ 0") }
        guard messages >= 1 else { throw ValidationError("--messages must be ≥ 1") }
    }

    func run() throws {
        var buffer = Data()
        buffer.reserveCapacity(1 << 20)
        Generator(flags: flags, messages: messages, seed: seed, reported: reported).generate { line in
            buffer.append(contentsOf: line.utf8)
            buffer.append(0x0A)
            if buffer.count > 1 << 20 { FileHandle.standardOutput.write(buffer); buffer.removeAll(keepingCapacity: true) }
        }
        FileHandle.standardOutput.write(buffer)
    }
}
