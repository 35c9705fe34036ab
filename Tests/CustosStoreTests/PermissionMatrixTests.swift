import CustosCore
@testable import CustosStore
import Foundation
import Testing

/// Issue 24: the permission matrix (`Permission` in Core) is enforced by the Store for every
/// operation, read or write: walked here role by role, permission by permission, against a real
/// store. A role the matrix does not name is refused (`forbidden`) and the refusal is logged; a
/// role it names is not refused (it may still fail for the state: nothing to claim, no such case).
@Suite struct PermissionMatrixWalk {
    /// One operation per permission: what a user of the role asks the Store to do.
    func operation(_ p: Permission, _ s: Store, _ f: Fixture) throws {
        switch p {
        case .read: _ = try s.cases(); _ = try s.queue(limit: 5); _ = try s.stats(since: nil); _ = try s.holds(); _ = try s.submissions()
            _ = try s.trends(try TrendRange.parse(from: nil, to: nil, by: nil, now: f.now))
        case .ingest: try f.ingest(flagLine(id: "i-\(s.actor.name)") + "\n", name: "i-\(s.actor.name).jsonl", into: s)
        case .claim: _ = try s.claim(nil)
        case .decide: _ = try s.decide("det:a", outcome: .dismiss, reason: "r", category: nil, urgent: nil, annotations: [])
        case .leadDecide: try s.reopen("det:a", reason: "r")
        case .reassign: _ = try s.claim("det:a", for: "mod")
        case .manageCases: try s.mergeCases("C-000001", "C-000002")
        case .manageAgencies: try s.setAgency(code: "C3P", name: nil, jurisdictions: nil, profile: nil, route: nil, retentionDays: 30)
        case .export: _ = try s.sealingKey(agency: "NCA")
        case .manageUsers: _ = try s.users(); _ = try s.tokens()
        case .manageSettings: _ = try s.settings()
        case .backup: _ = try s.backup(to: f.dir.appendingPathComponent("b-\(s.actor.name).db").path)
        case .erase: _ = try s.retention(dryRun: true)
        case .checkpoint: _ = try s.makeCheckpoint(key: try s.signingKey())
        case .manageHashLists: _ = try s.matchStoredAttachments()
        case .revealKnownMaterial:
            let sha = SHA256Hex.of(try Data(contentsOf: KnownMaterialInTheStore.samples.appendingPathComponent("photo.jpg")))
            _ = try s.readAttachment(flag: "det:k", sha256: sha, purpose: AttachmentViews.revealed)
        case .manageActions: _ = try s.addActionEndpoint(name: "e-\(s.actor.name)", url: "http://127.0.0.1:9/", kind: .banAccount, triggers: nil, categories: [])
        case .deliverActions: _ = try s.leaseActions(limit: 1)
        case .resolveActions: try s.resolveAction("msg_none", retry: true, reason: "r")
        }
    }

    @Test(arguments: Permission.allCases)
    func everyRoleIsRefusedOrNotAsTheMatrixSays(permission: Permission) throws {
        let f = try Fixture()
        let admin = try f.store()
        let names: [Role: String] = [.moderator: "mod", .lead: "lead", .compliance: "comp", .admin: "admin", .detector: "det-bot"]
        for (role, name) in names where role != .admin { try admin.addUser(name: name, role: role) }
        try f.ingest(flagLine(id: "a") + "\n")
        if permission == .revealKnownMaterial {
            // A flag whose photo matches a list.
            let known = try KnownMaterialInTheStore()
            _ = try admin.importHashList(Array("\(KnownMaterialInTheStore.listedPDQ)\n".utf8), file: "l.txt", name: "l", kind: .pdq, source: nil,
                                         category: nil, threshold: nil, minQuality: nil)
            try known.withPhoto(f, id: "k")
        }
        for role in Role.allCases {
            let s = try f.store(names[role] ?? "?")
            let before = try admin.custodySize()
            let kind = errorKind { try operation(permission, s, f) }
            let refused = kind == .forbidden
            #expect(refused == !permission.roles.contains(role), "\(permission.rawValue) as \(role.rawValue): \(String(describing: kind))")
            if refused {
                let added = try admin.custodyEntries().dropFirst(Int(before))
                #expect(added.map(\.action) == [CustodyAction.refused.rawValue], "\(permission.rawValue) as \(role.rawValue): \(added.map(\.action))")
                #expect(added.first?.actor == names[role])
            }
        }
    }
}

/// Issue 24: four eyes lives once, in Core (`ReviewRules.mayReview`); the claim-next query is
/// its SQL form, held to the same answer here on every state a flag can be in.
@Suite struct FourEyesOnce {
    @Test(arguments: [true, false])
    func theClaimNextFilterIsTheCoreRule(secondReviewRequired: Bool) throws {
        let f = try team()
        try f.store().addUser(name: "mo", role: .moderator)
        try f.store().addUser(name: "lena", role: .lead)
        try f.ingest((0..<12).map { flagLine(id: "f\($0)") }.joined(separator: "\n") + "\n")
        // Flags in every state: first decisions by alice or bob, escalations, a lead's settled
        // disagreement, a reopened dismissal alice decided before, and one still claimed.
        func decide(_ who: String, _ flag: String, _ outcome: Outcome) throws {
            _ = try f.store(who).claim(flag)
            _ = try f.store(who).decide(flag, outcome: outcome, reason: "r", category: outcome == .confirm ? .grooming : nil, urgent: nil, annotations: [])
        }
        try decide("alice", "f0", .confirm)
        try decide("bob", "f1", .confirm)
        try decide("alice", "f2", .escalate)
        try decide("bob", "f3", .escalate)
        try decide("alice", "f4", .confirm); try decide("bob", "f4", .dismiss)   // a disagreement: to the lead queue
        try decide("alice", "f5", .dismiss)  // final at once
        try f.store("lee").reopen("f5", reason: "look again")
        try decide("lee", "f6", .escalate)
        _ = try f.store("mo").claim("f7")
        // The setting turned off with flags already in second review: their first confirmer
        // still may not give the second (the rule says "whatever the setting says now").
        if !secondReviewRequired { try f.store().setSetting("second-review", "off") }
        let store = try f.store()
        for reviewer in ["alice", "bob", "mo", "lee", "lena"] {
            for queue in ReviewQueue.allCases {
                try store.read { db in
                    let sql = Set(try Store.mayTakeNext(db, queue: queue, reviewer: reviewer, now: f.now, secondReviewRequired: secondReviewRequired, limit: 1000))
                    var core = Set<Int64>()
                    for row in try Int64.fetchAll(db, sql: "SELECT flag FROM flag_state") {
                        let r = try Projection.review(row, db: db)
                        if r.queue == queue && r.liveHolder(at: f.now) == nil && ReviewRules.mayReview(r, reviewer, secondReviewRequired: secondReviewRequired) {
                            core.insert(row)
                        }
                    }
                    #expect(sql == core, "\(reviewer) in the \(queue) queue (second review \(secondReviewRequired))")
                }
            }
        }
    }
}
