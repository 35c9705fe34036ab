import CustosAgencies
import CustosCore
import CustosPackets
import CustosStore
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// The JSON API (openapi.yaml): each operation calls the store as the request's user. Failures
/// are thrown as the store's typed errors; ProblemMiddleware turns them into problem+json.
struct API: APIProtocol {
    let server: CustosServer

    func createSession(_ input: Operations.CreateSession.Input) async throws -> Operations.CreateSession.Output {
        guard case .json(let login) = input.body else { throw CustosError.invalidInput(field: "body", reason: "expected JSON") }
        let p = try await server.login(username: login.username, password: login.password, otp: login.otp)
        if let old = Principal.current { await server.logout(old, reason: "replaced by a new sign-in") }
        Principal.cookieBox?.value = server.sessionCookie(p)
        return .ok(.init(body: .json(.init(csrfToken: p.csrf ?? "", user: p.user, role: p.role.rawValue, auth: p.auth.rawValue))))
    }

    func deleteSession(_ input: Operations.DeleteSession.Input) async throws -> Operations.DeleteSession.Output {
        let (_, p) = try server.requestStore()
        await server.logout(p, reason: "signed out")
        return .noContent(.init())
    }

    func listQueue(_ input: Operations.ListQueue.Input) async throws -> Operations.ListQueue.Output {
        let (store, p) = try server.requestStore()
        let limit = input.query.limit ?? 50
        guard (1...1000).contains(limit) else { throw CustosError.invalidInput(field: "limit", reason: "must be from 1 to 1000") }
        let (items, counts) = try await blocking { () throws -> ([QueueItem], (Int, Int, Bool)) in
            let counts = try store.queueCounts()
            return (try store.reviewQueue(limit: limit, role: p.role), (counts.moderator, counts.lead, counts.capped))
        }
        return .ok(.init(body: .json(.init(moderator: counts.0, lead: counts.1, countsCapped: counts.2, items: items.map(API.queueItem)))))
    }

    static func queueItem(_ q: QueueItem) -> Components.Schemas.QueueItem {
        .init(key: q.key, status: q.status.rawValue, urgent: q.urgent, urgentReason: q.urgentReason, score: q.score, detectedAt: q.detectedAt, platform: q.platform)
    }

    func ingestFlags(_ input: Operations.IngestFlags.Input) async throws -> Operations.IngestFlags.Output {
        let (store, _) = try server.requestStore()
        guard case .applicationXNdjson(let body) = input.body else { throw CustosError.invalidInput(field: "body", reason: "expected application/x-ndjson") }
        return .ok(.init(body: .json(try await FlagIntake.ingest(body, store: store))))
    }

    func claimNextFlag(_ input: Operations.ClaimNextFlag.Input) async throws -> Operations.ClaimNextFlag.Output {
        let (store, _) = try server.requestStore()
        do {
            let claim = try await blocking { try store.claim(nil) }
            return .ok(.init(body: .json(API.claim(claim))))
        } catch let e as CustosError where e.kind == .notFound {
            return .noContent(.init())
        }
    }

    static func claim(_ c: Claim) -> Components.Schemas.Claim {
        .init(key: c.key, holder: c.holder, expiresAt: c.expiresAt, status: c.status.rawValue)
    }

    func claimFlag(_ input: Operations.ClaimFlag.Input) async throws -> Operations.ClaimFlag.Output {
        let (store, _) = try server.requestStore()
        let key = input.path.key
        let claim = try await blocking { try store.claim(key) }
        return .ok(.init(body: .json(API.claim(claim))))
    }

    func releaseFlag(_ input: Operations.ReleaseFlag.Input) async throws -> Operations.ReleaseFlag.Output {
        let (store, _) = try server.requestStore()
        let key = input.path.key
        try await blocking { try store.release(key) }
        return .noContent(.init())
    }

    func getFlag(_ input: Operations.GetFlag.Input) async throws -> Operations.GetFlag.Output {
        let (store, _) = try server.requestStore()
        let key = input.path.key
        let (view, history) = try await blocking { (try store.reviewFlag(key, purpose: "review (api)", hashes: true), try store.accountHistory(flag: key)) }
        return .ok(.init(body: .json(API.flag(view, history: history))))
    }

    static func flag(_ v: ReviewView, history: [AccountHistory]? = nil) -> Components.Schemas.Flag {
        let f = v.flag
        return .init(
            key: f.key, status: v.review.status.rawValue, holder: v.review.holder,
            leaseExpiresAt: v.review.leaseExpiresMillis.map { Timestamp.utcString(millis: $0) },
            detector: f.detector, modelVersion: f.modelVersion, score: f.score, detectedAt: f.detectedAt, platform: f.platform,
            surface: f.surface, signals: f.signals, evidenceHash: f.evidenceHash,
            participants: f.conversation.participants.map {
                .init(userId: $0.userID, screenName: $0.screenName, displayName: $0.displayName, roleHint: $0.roleHint?.rawValue,
                      statedAge: $0.statedAge, country: $0.country)
            },
            messages: f.conversation.messages.map { m in
                .init(id: m.id, sender: m.sender, sentAt: m.sentAt.text, text: m.text,
                      attachments: m.attachments.map { a in
                          let h = v.attachmentHashes[a.sha256]
                          return .init(name: a.name, mediaType: a.mediaType, sha256: a.sha256, size: a.size, md5: h?.md5, pdq: h?.pdq?.hex,
                                       pdqQuality: h?.pdq.map { Int64($0.quality) }, notHashed: h?.notHashed,
                                       matches: v.matches[a.sha256]?.map { .init(list: $0.list, kind: .init(rawValue: $0.kind.rawValue) ?? .sha256, hash: $0.hash,
                                                                                  distance: Int64($0.distance), label: $0.label) })
                      })
            },
            decisions: v.decisions.map(decision), decisionsHidden: v.decisionsHidden,
            accountHistory: history?.map { h in
                .init(platform: h.platform, userId: h.userID, roleHint: h.roleHint, otherFlags: Int64(h.total), flags: h.flags.map { f in
                    .init(flag: f.key, detectedAt: f.detectedAt, outcome: f.outcome, decidedAt: f.decidedAt, category: f.category, _case: f.caseID,
                          caseState: f.caseState, referrals: f.referrals, reports: f.reports, platformActions: f.actions)
                })
            })
    }

    static func decision(_ d: Store.DecisionRecord) -> Components.Schemas.Decision {
        .init(reviewer: d.reviewer, stage: d.stage.rawValue, outcome: d.outcome.rawValue, reason: d.reason, category: d.category?.rawValue, at: d.at)
    }

    func decideFlag(_ input: Operations.DecideFlag.Input) async throws -> Operations.DecideFlag.Output {
        let (store, _) = try server.requestStore()
        guard case .json(let d) = input.body else { throw CustosError.invalidInput(field: "body", reason: "expected JSON") }
        let key = input.path.key
        let decision = try DecisionForm.parse(outcome: d.outcome.rawValue, category: d.category, reason: d.reason, urgent: d.urgent, annotations: d.annotations ?? [])
        let result = try await blocking {
            try store.decide(key, outcome: decision.outcome, reason: decision.reason, category: decision.category, urgent: decision.urgent, annotations: decision.annotations)
        }
        return .ok(.init(body: .json(.init(key: result.key, status: result.status.rawValue, note: result.note, _case: result.caseID))))
    }

    func listCases(_ input: Operations.ListCases.Input) async throws -> Operations.ListCases.Output {
        let (store, _) = try server.requestStore()
        let cases = try await blocking { () throws -> [CaseSummary] in
            return try store.cases()
        }
        return .ok(.init(body: .json(cases.map(API.caseSummary))))
    }

    static func caseSummary(_ c: CaseSummary) -> Components.Schemas.CaseSummary {
        .init(id: c.caseID, state: c.state.rawValue, platform: c.platform, reportedAccounts: c.reportedAccounts, agencies: c.agencies.map(\.code),
              flags: c.flagCount, createdAt: c.createdAt)
    }

    func getCase(_ input: Operations.GetCase.Input) async throws -> Operations.GetCase.Output {
        let (store, _) = try server.requestStore()
        let id = input.path.id
        let c = try await blocking { try store.caseDetail(id, purpose: "case view (api)") }
        return .ok(.init(body: .json(.init(
            summary: API.caseSummary(c.summary), category: c.category?.rawValue, flags: c.flags.map(\.key), decisions: c.decisions.map(API.decision),
            timeline: c.timeline.map { .init(seq: $0.seq, at: $0.at, actor: $0.actor, auth: $0.auth, action: $0.action, subjectType: $0.subjectType, subjectId: $0.subjectID) }))))
    }

    func exportCase(_ input: Operations.ExportCase.Input) async throws -> Operations.ExportCase.Output {
        let (store, _) = try server.requestStore()
        guard case .json(let body) = input.body else { throw CustosError.invalidInput(field: "body", reason: "expected JSON") }
        let id = input.path.id
        let packet = try await server.export(store: store, caseID: id, agency: body.agency)
        return .ok(.init(headers: .init(contentDisposition: "attachment; filename=\"\(packet.name)\""),
                         body: .applicationZip(HTTPBody(packet.bytes))))
    }

    func getStats(_ input: Operations.GetStats.Input) async throws -> Operations.GetStats.Output {
        let (store, _) = try server.requestStore()
        let s = try await blocking { () throws -> Stats in
            return try store.stats(since: nil)
        }
        return .ok(.init(body: .json(.init(
            queueDepth: s.queueDepth, leadQueueDepth: s.leadQueueDepth, oldestQueuedAgeMinutes: s.oldestQueuedAgeMinutes,
            medianMinutesToFirstDecision: s.medianMinutesToFirstDecision, medianMinutesToFinalDecision: s.medianMinutesToFinalDecision,
            decisionsByOutcome: .init(additionalProperties: s.decisionsByOutcome), decisionsByReviewer: .init(additionalProperties: s.decisionsByReviewer),
            casesByState: .init(additionalProperties: s.casesByState), urgentSlaMinutes: s.urgentSLAMinutes, urgentBreaches: s.urgentBreaches))))
    }

    func createCheckpoint(_ input: Operations.CreateCheckpoint.Input) async throws -> Operations.CreateCheckpoint.Output {
        let (store, _) = try server.requestStore()
        let keyPath = server.configuration.keyPath
        let c = try await blocking { () throws -> StoredCheckpoint in
            return try store.makeCheckpoint(key: try store.signingKey(path: keyPath))
        }
        return .ok(.init(body: .json(.init(id: c.id, size: c.size, note: c.note))))
    }

    func proveEntry(_ input: Operations.ProveEntry.Input) async throws -> Operations.ProveEntry.Output {
        let (store, _) = try server.requestStore()
        let seq = input.path.seq
        let proof = try await blocking { () throws -> TlogProof in
            try store.inclusionProof(seq: seq, checkpoint: try store.checkpoint(id: nil))
        }
        return .ok(.init(body: .plainText(HTTPBody(proof.text))))
    }
}

/// A decision as a form or the API gives it, checked against the vocabulary.
struct DecisionForm {
    let outcome: Outcome
    let reason: String
    let category: Category?
    let urgent: String?
    let annotations: [Annotation]

    static func parse(outcome: String, category: String?, reason: String, urgent: String?, annotations: [String]) throws -> DecisionForm {
        guard let o = Outcome(rawValue: outcome) else { throw CustosError.invalidInput(field: "outcome", reason: "must be confirm, dismiss or escalate") }
        let cat = category.flatMap { $0.isEmpty ? nil : $0 }
        var c: Category?
        if let cat {
            guard let parsed = Category(rawValue: cat) else {
                throw CustosError.invalidInput(field: "category", reason: "\(quoted(cat)) is not one of \(Category.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            c = parsed
        }
        let anns = try annotations.map { a -> Annotation in
            guard let parsed = Annotation(rawValue: a) else {
                throw CustosError.invalidInput(field: "annotations", reason: "\(quoted(a)) is not one of \(Annotation.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return parsed
        }
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw CustosError.invalidInput(field: "reason", reason: "a reason is required") }
        let u = urgent.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        return DecisionForm(outcome: o, reason: reason, category: c, urgent: u, annotations: anns)
    }
}

