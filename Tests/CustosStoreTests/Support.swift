import CustosCore
import CustosTestSupport
@testable import CustosStore
import Foundation
import GRDB
import Testing

/// A fresh store in a temporary folder, created by OS user "admin".
final class Fixture {
    let dir: URL
    let db: String
    var now: Int64 = 1_795_183_141_000
    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        db = dir.appendingPathComponent("t.db").path
        _ = try Store.create(path: db, keyPath: nil, org: "Test Org", contactEmail: "t@example.com", actor: Actor(name: "admin", osUser: "admin"))
    }
    /// Set when a test edits the file behind the store's back (with the sqlite3 shell).
    var editedBehindTheLog = false

    /// Every workflow a test runs leaves a store whose tables equal the replay of its log.
    deinit {
        if !editedBehindTheLog, FileManager.default.fileExists(atPath: db) {
            do {
                let r = try Store.open(path: db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).verify()
                if !r.ok { Issue.record("the store a test left does not verify: \(r.problems)") }
                // ... and is rebuilt from its log and evidence alone, table for table.
                let rebuilt = dir.appendingPathComponent("rebuilt.db").path
                if r.ok {
                    _ = try Store.open(path: db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).rebuild(to: rebuilt)
                    let differ = try differingTables(db, rebuilt)
                    if !differ.isEmpty { Issue.record("the store a test left rebuilds with other rows in \(differ)") }
                }
            } catch {
                Issue.record("the store a test left cannot be verified: \(error)")
            }
        }
        try? FileManager.default.removeItem(at: dir)
    }

    func store(_ actor: String = "admin") throws -> Store {
        let s = try Store.open(path: db, actor: Actor(name: actor, osUser: "admin"))
        let t = now
        s.clock = { t }
        return s
    }

    func write(_ name: String, _ text: String) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    /// Ingests JSON Lines text (through `store`, or a store opened for it); returns the
    /// summary and the rejections.
    @discardableResult
    func ingest(_ text: String, name: String = "in.jsonl", into store: Store? = nil) throws -> (IngestSummary, [Rejection]) {
        let url = try write(name, text)
        let ing = Ingestor(store: try store ?? self.store())
        var rejects: [Rejection] = []
        ing.onReject = { rejects.append($0) }
        try ing.ingestJSONLines(FileHandle(forReadingAtPath: url.path)!, name: name, baseDirectory: dir)
        return (ing.summary, rejects)
    }

    /// Runs SQL with the sqlite3 shell, as someone editing the file behind Custos's back would.
    @discardableResult
    func sqlite(_ sql: String) throws -> (Int32, String) {
        if !sql.uppercased().hasPrefix("SELECT") && !sql.uppercased().hasPrefix("PRAGMA") { editedBehindTheLog = true }
        let r = try runTool(["sqlite3", db, sql])
        return (r.status, r.output)
    }

    /// The store's database file and its WAL, as bytes (where erased text must not be).
    func fileBytes() throws -> Data {
        var d = try Data(contentsOf: URL(fileURLWithPath: db))
        if let wal = try? Data(contentsOf: URL(fileURLWithPath: db + "-wal")) { d += wal }
        return d
    }

    func count(_ table: String) throws -> Int { Int(try sqlite("SELECT count(*) FROM \(table)").1.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
}

/// The tables of two store files whose rows differ (every table, every column, in key order).
func differingTables(_ a: String, _ b: String) throws -> [String] {
    func dump(_ path: String) throws -> [String: [String]] {
        let q = try DatabaseQueue(path: path)
        defer { try? q.close() }
        return try q.read { db in
            var out: [String: [String]] = [:]
            for t in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'") {
                out[t] = try Row.fetchAll(db, sql: "SELECT * FROM \"\(t)\"").map { $0.databaseValues.map { "\($0)" }.joined(separator: "\u{1F}") }.sorted()
            }
            return out
        }
    }
    let x = try dump(a), y = try dump(b)
    return Set(x.keys).union(y.keys).sorted().filter { x[$0] != y[$0] }
}

/// A valid flag record as one JSON line.
func flagLine(id: String, score: Double? = 0.9, detected: String = "2026-11-20T14:03:00Z", text: String = "hello",
              adult: String = "u-1", adultCountry: String = "US", minorCountry: String = "US", platform: String = "ExampleChat",
              attachments: String = "") -> String {
    let s = score.map { "\"score\":\($0)," } ?? ""
    let t = String(data: try! JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed]), encoding: .utf8)!.dropFirst().dropLast()
    return """
    {"flag_id":"\(id)","source":{"detector":"det","model_version":"1"},\(s)"detected_at":"\(detected)","service":{"platform":"\(platform)"},"conversation":{"id":"conv-\(id)","participants":[{"user_id":"\(adult)","role_hint":"suspected_adult","country":"\(adultCountry)","screen_name":"grown"},{"user_id":"u-2","role_hint":"suspected_minor","stated_age":13,"country":"\(minorCountry)"}],"messages":[{"id":"m1","sender":"\(adult)","sent_at":"2026-11-20T13:59:01Z","text":\(t)\(attachments)},{"id":"m2","sender":"u-2","sent_at":"2026-11-20T13:59:40+01:00","text":"hi"}]}}
    """
}

/// The kind of `CustosError` the body throws; nil when it succeeds or throws something else.
func errorKind(_ body: () throws -> Void) -> CustosError.Kind? {
    do { try body(); return nil } catch let e as CustosError { return e.kind } catch { return nil }
}
