import CustosCore
import Foundation
import Testing

/// Issue 27's acceptance: detector precision by model version in `custos stats --json` equals
/// a count done with the sqlite3 shell on the same store.
@Suite struct TrendsFromTheCommandLine {
    @Test func precisionByModelVersionEqualsTheSQLiteShellsCount() throws {
        let c = try CLI()
        try c.initStore()
        // 30 flags from two model versions of one detector.
        let lines = try c.run(["gen", "--flags", "30", "--messages", "2", "--seed", "11"]).out.split(separator: "\n").enumerated().map { i, line in
            i % 2 == 0 ? String(line) : line.replacingOccurrences(of: #""model_version":"1.0""#, with: #""model_version":"2.0""#)
        }
        #expect(lines.count == 30 && lines.filter { $0.contains(#""model_version":"2.0""#) }.count == 15)
        try Data(lines.joined(separator: "\n").utf8).write(to: c.dir.appendingPathComponent("gen.jsonl"))
        #expect(try c.run(["ingest", "gen.jsonl", "--db", c.db]).status == 0)
        for m in ["m1", "m2"] { #expect(try c.run(["user", "add", m, "--role", "moderator", "--db", c.db]).status == 0) }
        // A third dismissed (final on one review), a third confirmed twice (final), a third
        // confirmed once (still in second review: not settled, not counted).
        for i in 0..<30 {
            let key = "gen:gen-" + String(format: "%08d", i)
            func decide(_ who: String, _ outcome: String) throws {
                #expect(try c.run(["claim", key, "--db", c.db, "--actor", who]).status == 0)
                var args = ["decide", key, "--outcome", outcome, "--reason", "r", "--db", c.db, "--actor", who]
                if outcome == "confirm" { args += ["--category", "grooming"] }
                let r = try c.run(args)
                #expect(r.status == 0, "\(r.err)")
            }
            if i % 3 == 0 { try decide("m1", "dismiss"); continue }
            try decide("m1", "confirm")
            if i % 3 == 1 { try decide("m2", "confirm") }
        }
        let stats = try c.run(["stats", "--json", "--db", c.db])
        #expect(stats.status == 0, "\(stats.err)")
        let rows = try #require(JSONValue.parse(Data(stats.out.utf8))["trends"]?["detector_precision_by_model_version"]?.arrayValue)
        let ours = rows.map { r in
            [r["detector"]?.stringValue ?? "", r["model_version"]?.stringValue ?? "", r["decided"]?.canonicalString ?? "", r["confirmed"]?.canonicalString ?? ""]
                .joined(separator: "|")
        }
        let shell = try sqliteShell(c.db, """
            SELECT f.detector, f.model_version, count(*), sum(s.status = 'confirmed') FROM flags f JOIN flag_state s ON s.flag = f.id
            WHERE s.status IN ('confirmed', 'dismissed') GROUP BY 1, 2 ORDER BY 1, 2
            """).split(separator: "\n").map(String.init)
        #expect(shell.count == 2)
        #expect(ours == shell)
        // And the share, to three places: confirmed / decided.
        for r in rows {
            let decided = Double(r["decided"]?.canonicalString ?? "") ?? 0, confirmed = Double(r["confirmed"]?.canonicalString ?? "") ?? -1
            #expect(r["precision"]?.canonicalString == JSONValue.number((confirmed / decided * 1000).rounded() / 1000).canonicalString)
        }
        // A bad range is refused, naming it, and nothing is written.
        let before = try sqliteShell(c.db, "SELECT count(*) FROM custody")
        let bad = try c.run(["stats", "--from", "2026-02-30", "--db", c.db])
        #expect(bad.status != 0 && bad.err.contains("--from"))
        #expect(try sqliteShell(c.db, "SELECT count(*) FROM custody") == before)
    }
}
