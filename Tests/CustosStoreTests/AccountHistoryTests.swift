import CustosCore
@testable import CustosStore
import Foundation
import GRDB
import Testing

/// Issue 27, item 1: the earlier flags about the same platform account, from an index derived
/// from the evidence (written at ingest, compared with the documents by `audit verify`).
@Suite struct AccountHistoryIndex {
    func decide(_ f: Fixture, _ who: String, _ flag: String, _ outcome: Outcome) throws {
        _ = try f.store(who).claim(flag)
        _ = try f.store(who).decide(flag, outcome: outcome, reason: "r", category: outcome == .confirm ? .grooming : nil, urgent: nil, annotations: [])
    }

    @Test func aFlagShowsTheOtherFlagsAboutItsAccountsWithTheirSettledOutcomes() throws {
        let f = try Fixture()
        for (u, r) in [("alice", Role.moderator), ("bob", .moderator)] { try f.store().addUser(name: u, role: r) }
        try f.ingest([flagLine(id: "a", detected: "2026-11-01T10:00:00Z"), flagLine(id: "b", detected: "2026-11-02T10:00:00Z"),
                      flagLine(id: "c", detected: "2026-11-03T10:00:00Z"), flagLine(id: "d", adult: "u-9", platform: "OtherChat")].joined(separator: "\n"))
        try decide(f, "alice", "det:a", .confirm)
        try decide(f, "bob", "det:a", .confirm)
        try decide(f, "alice", "det:b", .confirm)  // one decision: b is still in review
        let before = try f.store().custodySize()
        let history = try f.store("bob").accountHistory(flag: "det:c")
        #expect(try f.store().custodySize() == before)  // not an evidence read: nothing logged
        let adult = try #require(history.first)
        #expect(adult.userID == "u-1" && adult.roleHint == "suspected_adult" && adult.platform == "ExampleChat" && adult.total == 2)
        #expect(adult.flags.map(\.key) == ["det:b", "det:a"])
        #expect(adult.flags[0].outcome == "in review" && adult.flags[0].category == nil && adult.flags[0].caseID == nil)
        #expect(adult.flags[1].outcome == "confirmed" && adult.flags[1].category == "grooming" && adult.flags[1].caseID == "C-000001" && adult.flags[1].decidedAt != nil)
        // The other flag's adult is another account on another platform: not in this history.
        #expect(!history.contains { $0.userID == "u-9" })
        #expect(try f.store().accountHistory(flag: "det:d").first { $0.userID == "u-9" }?.total == 0)
        // The index is the documents': equal to what SQLite reads out of them.
        #expect(try f.sqlite("SELECT count(*) FROM flag_accounts").1.trimmingCharacters(in: .whitespacesAndNewlines) == "8")
    }

    @Test func anIndexEditedBehindTheLogIsNamedByVerify() throws {
        let f = try Fixture()
        try f.ingest([flagLine(id: "a"), flagLine(id: "b")].joined(separator: "\n"))
        f.editedBehindTheLog = true
        func problems() throws -> [String] {
            try Store.open(path: f.db, actor: Actor(name: "admin", osUser: "admin"), access: .verify).verify().problems
        }
        #expect(try problems().isEmpty)
        // Hiding a repeat contact: the account's row of one flag deleted.
        #expect(try f.sqlite("DELETE FROM flag_accounts WHERE user_id = 'u-1' AND flag = (SELECT min(flag) FROM flag_accounts)").0 == 0)
        #expect(try problems().contains { $0.contains("flag_accounts lacks") && $0.contains("u-1") })
        // Inventing one.
        #expect(try f.sqlite("INSERT INTO flag_accounts VALUES ('ExampleChat', 'u-1', (SELECT min(flag) FROM flag_accounts), 'suspected_adult'); INSERT INTO flag_accounts VALUES ('ExampleChat', 'u-framed', 1, NULL)").0 == 0)
        #expect(try problems().contains { $0.contains("flag_accounts holds") && $0.contains("u-framed") })
    }
}
