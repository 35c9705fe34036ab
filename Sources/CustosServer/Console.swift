import CustosAgencies
import CustosCore
import CustosPackets
import CustosResources
import CustosStore
import Foundation
import Hummingbird
import Mustache
import NIOCore

/// The console's templates (templates/console-*.mustache), escaped through `Escape.html`.
enum Pages {
    static let library: MustacheLibrary = {
        MustacheContentTypes.register(StrictHTML(), named: "STRICT_HTML")
        var library = MustacheLibrary()
        for name in EmbeddedResources.names(in: "templates") where name.hasPrefix("templates/console-") && name.hasSuffix(".mustache") {
            if let text = EmbeddedResources.text(name), let template = try? MustacheTemplate(string: text) {
                library.register(template, named: String(name.dropFirst("templates/".count).dropLast(".mustache".count)))
            }
        }
        return library
    }()

    static func render(_ name: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: "console-" + name) ?? "template \(name) is missing"
    }

    static func errorPage(status: Int, title: String, detail: String) -> String {
        render("error", ["title": title, "heading": "\(status) \(title)", "detail": detail])
    }
}

/// A form body (application/x-www-form-urlencoded): each field's values, decoded.
struct Form {
    var fields: [String: [String]] = [:]
    subscript(_ name: String) -> String? { fields[name]?.first }

    static func read(_ request: Request) async throws -> Form {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        var form = Form()
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            form.fields[decode(parts[0]), default: []].append(parts.count > 1 ? decode(parts[1]) : "")
        }
        return form
    }
}

/// The server-rendered console (no JavaScript needed; console.js adds shortcuts).
struct Console {
    let server: CustosServer

    func register(on router: Router<CustosContext>) {
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/queue"]) }
        router.get("assets/console.css") { _, _ in asset("console.css", "text/css; charset=utf-8") }
        router.get("assets/console.js") { _, _ in asset("console.js", "text/javascript; charset=utf-8") }
        router.get("login") { _, _ in html(Pages.render("login", ["title": "Sign in"])) }
        router.post("login") { request, _ in try await login(request) }
        router.post("logout") { request, _ in
            let (p, _) = try await formSession(request)
            await server.logout(p, reason: "signed out")
            return Response(status: .seeOther, headers: [.location: "/login", .setCookie: server.clearedCookie])
        }
        router.get("queue") { request, _ in try await queue(request) }
        router.post("review/next") { request, _ in
            let (p, _) = try await formSession(request)
            return try await next(p, notice: nil)
        }
        router.get("flags/:key") { request, context in try await flag(request, context) }
        router.get("flags/:key/attachments/:sha") { request, context in try await attachment(request, context) }
        let flagRoutes = router.group("flags/:key")
        for verb in FlagVerb.allCases {
            flagRoutes.post(.init(stringLiteral: verb.rawValue)) { request, context in try await flagAction(request, context, verb) }
        }
        router.get("cases") { _, _ in try await cases() }
        router.get("cases/:id") { request, context in try await casePage(try param(context, "id"), notice: nil) }
        let caseRoutes = router.group("cases/:id")
        for verb in CaseVerb.allCases {
            caseRoutes.post(.init(stringLiteral: verb.rawValue)) { request, context in try await caseAction(request, context, verb) }
        }
        router.get("stats") { request, _ in try await stats(request) }
        // A lead's retry or cancel of a platform action (logged), from the flag page.
        for verb in ["retry", "cancel"] {
            router.post(.init(stringLiteral: "actions/:id/" + verb)) { request, context in
                let (p, form) = try await formSession(request)
                let store = server.acting(p)
                let id = try param(context, "id"), reason = form["reason"] ?? ""
                try await blocking { try store.resolveAction(id, retry: verb == "retry", reason: reason) }
                let back = form["flag"].map { "/flags/\(Console.path($0))" } ?? "/stats"
                return redirect(back)
            }
        }
        router.get("preferences") { _, _ in
            let (_, p) = try server.requestStore()
            return html(Pages.render("preferences", try await layout(p, title: "Preferences")))
        }
        router.post("preferences") { request, _ in
            let (p, form) = try await formSession(request)
            let store = server.acting(p)
            try await blocking { try store.setPreferences(blur: form["blur"] == "1", grayscale: form["grayscale"] == "1") }
            var context = try await layout(p, title: "Preferences")
            context["notice"] = "Preferences saved."
            return html(Pages.render("preferences", context))
        }
        router.post("preferences/password") { request, _ in
            let (p, form) = try await formSession(request)
            let store = server.acting(p)
            let current = form["current"] ?? "", code = form["otp"], new = form["password"] ?? ""
            do {
                try await blocking { try store.changeOwnPassword(current: current, code: code, new: new) }
            } catch let e as CustosError where e.kind == .unauthenticated || e.kind == .invalidInput {
                var context = try await layout(p, title: "Preferences")
                context["notice"] = "Password not changed: \(e.kind == .invalidInput ? e.description : "the current password or the one-time code is wrong")."
                return html(Pages.render("preferences", context), status: .unprocessableContent)
            }
            // The credentials changed, so every session of the user ended, this one too.
            if let id = p.sessionID { _ = await server.sessions.end(id) }
            return Response(status: .seeOther, headers: [.location: "/login", .setCookie: server.clearedCookie])
        }
        router.get("admin") { _, _ in try await admin(notice: nil, extra: [:]) }
        let adminRoutes = router.group("admin")
        adminRoutes.post("users") { request, _ in try await adminAction(request, .addUser) }
        let user = adminRoutes.group("users/:name")
        for verb in [AdminVerb.disable, .password, .totp, .token] {
            user.post(.init(stringLiteral: verb.rawValue)) { request, context in try await adminAction(request, verb, target: try param(context, "name")) }
        }
        adminRoutes.post("tokens/:id/revoke") { request, context in try await adminAction(request, .revoke, target: try param(context, "id")) }
        adminRoutes.post("settings") { request, _ in try await adminAction(request, .setting) }
    }

    // MARK: plumbing

    func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func asset(_ name: String, _ type: String) -> Response {
        let data = EmbeddedResources.data("templates/" + name) ?? Data()
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=3600"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A path parameter, percent-decoded (flag keys carry ':' and anything a detector chose).
    func param(_ context: CustosContext, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        guard let decoded = raw.removingPercentEncoding else { throw CustosError.invalidInput(field: name, reason: "not percent-encoded UTF-8") }
        return decoded
    }

    func redirect(_ location: String) -> Response { Response(status: .seeOther, headers: [.location: location]) }

    /// The page frame's context: who is signed in, their CSRF token, navigation, preferences.
    func layout(_ p: Principal, title: String, nav: String? = nil) async throws -> [String: Any] {
        let store = server.acting(p)
        let prefs = try await blocking { try store.preferences() }
        var c: [String: Any] = ["title": title, "user": p.user, "role": p.role.rawValue, "auth": p.auth.rawValue, "csrf": p.csrf ?? "",
                                "isAdmin": p.role == .admin, "prefs": ["blur": prefs.blur, "grayscale": prefs.grayscale]]
        if let nav { c["nav" + nav] = true }
        return c
    }

    /// A form post of a signed-in session: its CSRF field must match, else the refusal is
    /// logged and answered 403.
    func formSession(_ request: Request) async throws -> (Principal, Form) {
        let (_, p) = try server.requestStore()
        let form = try await Form.read(request)
        guard let csrf = p.csrf, form["csrf"] == csrf else {
            throw await server.refuse(p, .forbidden(actor: p.user, role: p.role, needs: "a form needs the session's CSRF token"), verb: "POST \(request.uri.path)")
        }
        return (p, form)
    }

    static func path(_ key: String) -> String {
        key.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~:"))) ?? key
    }

    // MARK: sign-in

    func login(_ request: Request) async throws -> Response {
        let form = try await Form.read(request)
        do {
            let p = try await server.login(username: form["username"] ?? "", password: form["password"] ?? "", otp: form["otp"])
            if let old = Principal.current { await server.logout(old, reason: "replaced by a new sign-in") }
            return Response(status: .seeOther, headers: [.location: "/queue", .setCookie: server.sessionCookie(p)])
        } catch let e as LoginRefusal {
            var headers: HTTPFields = [.contentType: "text/html; charset=utf-8"]
            if let r = e.retryAfter { headers[.retryAfter] = String(r) }
            return Response(status: .init(code: e.status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: Pages.render("login", ["title": "Sign in", "error": e.message]))))
        }
    }

    // MARK: review

    func queue(_ request: Request, notice: String? = nil) async throws -> Response {
        let (store, p) = try server.requestStore()
        let now = server.now
        let (items, counts) = try await blocking { () throws -> ([QueueItem], (moderator: Int, lead: Int, capped: Bool)) in
            (try store.reviewQueue(limit: 100, role: p.role), try store.queueCounts())
        }
        var c = try await layout(p, title: "Queue", nav: "Queue")
        func shown(_ n: Int) -> String { counts.capped && n >= 10_000 ? "\(n)+" : String(n) }
        c["moderatorCount"] = shown(counts.moderator)
        c["leadCount"] = shown(counts.lead)
        let urgent = items.filter(\.urgent).count
        c["urgentCount"] = urgent > 0 ? String(urgent) : nil
        c["shown"] = items.count
        c["canClaim"] = Permission.claim.roles.contains(p.role)
        c["items"] = items.map { q -> [String: Any] in
            let age = Timestamp.parse(q.detectedAt).map { Console.duration(minutes: (now - $0.epochMillis) / 60_000) } ?? ""
            return ["key": q.key, "path": Console.path(q.key), "status": q.status.rawValue, "urgent": q.urgent, "urgentReason": q.urgentReason ?? "",
                    "score": q.score.map { String(format: "%.2f", $0) } ?? "–", "age": age, "platform": q.platform]
        }
        if let notice { c["notice"] = notice }
        if request.uri.queryParameters["empty"] != nil { c["notice"] = "Nothing is waiting in your queue." }
        return html(Pages.render("queue", c))
    }

    /// An optional for a template: absent is `false`, so `{{#x}}…{{/x}}` skips it (a nil inside
    /// `Any` would render as "nil").
    static func shown(_ value: Any?) -> Any { value ?? false }

    static func duration(minutes: Int64) -> String {
        if minutes < 60 { return "\(max(0, minutes)) min" }
        if minutes < 48 * 60 { return "\(minutes / 60) h \(minutes % 60) min" }
        return "\(minutes / 1440) days"
    }

    /// Claims the next flag and opens it; back to the queue when nothing waits.
    func next(_ p: Principal, notice: String?) async throws -> Response {
        let store = server.acting(p)
        do {
            let claim = try await blocking { try store.claim(nil) }
            return redirect("/flags/\(Console.path(claim.key))")
        } catch let e as CustosError where e.kind == .notFound {
            return redirect("/queue?empty=1")
        }
    }

    func flag(_ request: Request, _ context: CustosContext) async throws -> Response {
        let (store, p) = try server.requestStore()
        let key = try param(context, "key")
        let reveal = request.uri.queryParameters["reveal"].map(String.init)
        let purpose = reveal.map { "reveal attachment \($0) (console)" } ?? "review (console)"
        let view = try await blocking { try store.reviewFlag(key, purpose: purpose) }
        let f = view.flag
        var c = try await layout(p, title: "Flag \(f.key)", nav: "Queue")
        let roles = Dictionary(f.conversation.participants.map { ($0.userID, $0.roleHint) }, uniquingKeysWith: { a, _ in a })
        func roleClass(_ hint: RoleHint?) -> String { hint == .suspectedAdult ? "adult" : hint == .suspectedMinor ? "minor" : "unknown" }
        func roleLabel(_ hint: RoleHint?) -> String { hint == .suspectedAdult ? "suspected adult" : hint == .suspectedMinor ? "suspected minor" : "role unknown" }
        let now = server.now
        let mine = view.review.liveHolder(at: now) == p.user
        c["flag"] = ["key": f.key, "detector": f.detector, "modelVersion": Console.shown(f.modelVersion), "detectedAt": f.detectedAt, "platform": f.platform,
                     "surface": Console.shown(f.surface), "evidenceHash": f.evidenceHash]
        c["path"] = Console.path(f.key)
        c["score"] = f.score.map { String(format: "%.3f", $0) } ?? "–"
        c["signals"] = f.signals
        c["status"] = view.review.status.rawValue
        if let holder = view.review.liveHolder(at: now) {
            c["holder"] = holder
            if let ms = view.review.leaseExpiresMillis { c["leaseExpires"] = Timestamp.utcString(millis: ms); c["leaseExpiresMs"] = String(ms) }
        }
        c["mine"] = mine
        c["claimable"] = view.review.queue != nil && view.review.liveHolder(at: now) == nil && Permission.claim.roles.contains(p.role)
        c["participants"] = f.conversation.participants.map { pt -> [String: Any] in
            ["userID": pt.userID, "screenName": pt.screenName ?? "", "roleClass": roleClass(pt.roleHint), "roleLabel": roleLabel(pt.roleHint),
             "statedAge": pt.statedAge.map { String($0) } ?? "", "country": pt.country ?? ""]
        }
        // Each account's earlier flags (their settled outcomes, cases, referrals, reports, actions; no text).
        let history = try await blocking { try store.accountHistory(flag: key) }
        c["accounts"] = history.map { h -> [String: Any] in
            ["userID": h.userID, "role": roleLabel(h.roleHint.flatMap(RoleHint.init(rawValue:))), "hasFlags": !h.flags.isEmpty,
             "summary": h.total == 0 ? "no other flag names this account" : h.total == 1 ? "1 other flag" : "\(h.total) other flags" + (h.total > h.flags.count ? ", the latest \(h.flags.count) shown" : ""),
             "flags": h.flags.map { f -> [String: Any] in
                 ["key": f.key, "path": Console.path(f.key), "detectedAt": f.detectedAt, "outcome": f.outcome, "decidedAt": Console.shown(f.decidedAt),
                  "category": Console.shown(f.category), "caseID": Console.shown(f.caseID), "caseState": f.caseState ?? "", "facts": f.referrals + f.reports + f.actions]
             }]
        }
        let mayReveal = Permission.revealKnownMaterial.roles.contains(p.role)
        c["messages"] = f.conversation.messages.map { m -> [String: Any] in
            ["sender": m.sender, "roleClass": roleClass(roles[m.sender] ?? nil), "roleLabel": roleLabel(roles[m.sender] ?? nil),
             "local": m.sentAt.text, "utc": Timestamp.utcString(millis: m.sentAt.epochMillis), "text": m.text,
             "attachments": m.attachments.map { a -> [String: Any] in
                 // Known material: no image at all (not even blurred) unless a lead reveals it.
                 let known = view.matches[a.sha256] ?? []
                 let revealed = reveal == a.sha256 && (known.isEmpty || mayReveal)
                 return ["name": a.name ?? "(unnamed)", "mediaType": a.mediaType ?? "unknown type", "size": String(a.size), "sha256": a.sha256,
                         "flagPath": Console.path(f.key), "image": (a.mediaType ?? "").hasPrefix("image/") && (known.isEmpty || revealed),
                         "revealed": revealed, "known": known.map { ["words": $0.words, "label": Console.shown($0.label)] }, "isKnown": !known.isEmpty,
                         "canReveal": !revealed && (known.isEmpty || mayReveal)]
             }]
        }
        c["decisionsHidden"] = view.decisionsHidden
        c["hasDecisions"] = !view.decisions.isEmpty
        c["decisions"] = view.decisions.map { d -> [String: Any] in
            ["outcome": d.outcome.rawValue, "reviewer": d.reviewer, "stage": d.stage.rawValue, "at": d.at, "category": Console.shown(d.category?.rawValue), "reason": d.reason]
        }
        // What the platform was asked to do, and answered (a dead protective action is fixed here, by a lead).
        let actions = try await blocking { try store.actionRequests(flag: key) }
        let mayResolve = Permission.resolveActions.roles.contains(p.role)
        c["actions"] = actions.map { a -> [String: Any] in
            ["words": a.words, "id": a.id, "dead": a.state == .dead, "retry": mayResolve && [.dead, .failed].contains(a.state),
             "cancel": mayResolve && !a.state.finished && a.state != .sending]
        }
        c["hasActions"] = !actions.isEmpty
        c["canDecide"] = mine && Permission.decide.roles.contains(p.role)
        c["categories"] = Category.allCases.map(\.rawValue)
        c["annotations"] = Annotation.allCases.map(\.rawValue)
        c["isLead"] = p.role == .lead
        c["canReopen"] = p.role == .lead && view.review.status == .dismissed
        c["canReassign"] = p.role == .lead && view.review.queue != nil
        return html(Pages.render("flag", c))
    }

    func attachment(_ request: Request, _ context: CustosContext) async throws -> Response {
        let (store, _) = try server.requestStore()
        let key = try param(context, "key"), sha = try param(context, "sha")
        let revealed = request.uri.queryParameters["revealed"] != nil
        let (bytes, type) = try await blocking { try store.readAttachment(flag: key, sha256: sha, purpose: revealed ? AttachmentViews.revealed : AttachmentViews.blurred) }
        // Only image types the console shows are served as themselves; anything else downloads.
        let shown: String? = ["image/png", "image/jpeg", "image/gif", "image/webp"].first { $0 == type }
        let headers: HTTPFields = [.contentType: shown ?? "application/octet-stream", .contentDisposition: shown == nil ? "attachment" : "inline"]
        return Response(status: .ok, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// What the flag page's forms post to (`POST /flags/KEY/VERB`, one route each).
    enum FlagVerb: String, CaseIterable { case claim, release, decide, reopen, reassign }

    func flagAction(_ request: Request, _ context: CustosContext, _ verb: FlagVerb) async throws -> Response {
        let (p, form) = try await formSession(request)
        let store = server.acting(p)
        let key = try param(context, "key")
        let back = "/flags/\(Console.path(key))"
        switch verb {
        case .claim: _ = try await blocking { try store.claim(key) }
        case .release:
            try await blocking { try store.release(key) }
            return redirect("/queue")
        case .decide:
            let d = try DecisionForm.parse(outcome: form["outcome"] ?? "", category: form["category"], reason: form["reason"] ?? "",
                                           urgent: form["urgent"], annotations: form.fields["annotations"] ?? [])
            _ = try await blocking { try store.decide(key, outcome: d.outcome, reason: d.reason, category: d.category, urgent: d.urgent, annotations: d.annotations) }
            if form["next"] == "1" { return try await next(p, notice: nil) }
            return redirect("/queue")
        case .reopen:
            let reason = form["reason"] ?? ""
            try await blocking { try store.reopen(key, reason: reason) }
        case .reassign:
            let to = form["assignee"] ?? ""
            _ = try await blocking { try store.claim(key, for: to) }
        }
        return redirect(back)
    }

    // MARK: cases

    func cases() async throws -> Response {
        let (store, p) = try server.requestStore()
        let list = try await blocking { () throws -> [CaseSummary] in
            try store.cases()
        }
        var c = try await layout(p, title: "Cases", nav: "Cases")
        c["cases"] = list.map { s -> [String: Any] in
            ["id": s.caseID, "state": s.state.rawValue, "platform": s.platform, "accounts": s.reportedAccounts,
             "agencies": s.agencies.map { $0.code + ($0.served ? " (sent)" : "") }.joined(separator: ", "), "flags": s.flagCount, "createdAt": s.createdAt]
        }
        return html(Pages.render("cases", c))
    }

    func casePage(_ id: String, notice: String?) async throws -> Response {
        let (store, p) = try server.requestStore()
        let (d, receipts, holds, submissions) = try await blocking {
            (try store.caseDetail(id, purpose: "case view (console)"), try store.receipts(caseName: id), try store.holds(),
             try store.submissions())
        }
        var c = try await layout(p, title: "Case \(d.summary.caseID)", nav: "Cases")
        c["id"] = d.summary.caseID
        c["state"] = d.summary.state.rawValue
        c["platform"] = d.summary.platform
        c["createdAt"] = d.summary.createdAt
        c["category"] = Console.shown(d.category?.rawValue)
        c["canExport"] = Permission.export.roles.contains(p.role)
        c["routes"] = d.summary.agencies.map { ["code": $0.code, "served": $0.served, "reason": $0.reason] }
        c["submissions"] = submissions.filter { $0.caseID == d.summary.caseID }.map { s -> [String: Any] in
            ["id": String(s.id), "agency": s.agency, "state": s.state.rawValue, "report": s.reportID ?? "–", "error": s.lastError ?? "",
             "files": "\(s.files.filter { $0.fileID != nil }.count) of \(s.files.count)", "updated": s.updatedAt,
             "retry": s.state == .open, "next": Console.describe(s.nextStep)]
        }
        c["canSubmit"] = Permission.export.roles.contains(p.role) && d.summary.agencies.contains { $0.code == "NCMEC" }
        c["hasOpenSubmission"] = submissions.contains { $0.caseID == d.summary.caseID && $0.state == .open }
        c["receipts"] = receipts.map { ["agency": $0.agency, "reference": $0.reference, "at": $0.at] }
        c["holds"] = holds.filter { $0.caseID == d.summary.caseID }.map {
            ["packet": $0.packetID, "agency": $0.agency, "referredAt": $0.referredAt, "until": $0.holdUntil, "state": $0.active ? "held" : "ended"]
        }
        func person(_ x: Person) -> [String: Any] {
            ["userID": x.participant.userID, "screenName": Console.shown(x.participant.screenName), "statedAge": Console.shown(x.participant.statedAge.map { String($0) })]
        }
        c["reported"] = d.reported.map(person)
        c["victims"] = d.victims.map(person)
        c["flags"] = d.flags.map { ["key": $0.key, "path": Console.path($0.key)] }
        c["erased"] = d.erased
        c["decisions"] = d.decisions.map { ["flagKey": $0.flagKey, "reviewer": $0.reviewer, "stage": $0.stage.rawValue, "outcome": $0.outcome.rawValue, "reason": $0.reason, "at": $0.at] }
        let actions = try await blocking { try store.actionRequests(caseName: id) }
        c["actions"] = actions.map { ["words": $0.words, "subject": $0.flag ?? $0.caseID ?? ""] }
        c["hasActions"] = !actions.isEmpty
        c["timeline"] = d.timeline.map { ["seq": String($0.seq), "at": $0.at, "actor": $0.actor, "auth": $0.auth ?? "(not recorded)", "action": $0.action, "subjectID": $0.subjectID] }
        if let notice { c["notice"] = notice }
        return html(Pages.render("case", c))
    }

    /// What the case page's forms post to (`POST /cases/ID/VERB`, one route each).
    enum CaseVerb: String, CaseIterable { case export, submit, receipt }

    func caseAction(_ request: Request, _ context: CustosContext, _ verb: CaseVerb) async throws -> Response {
        let (p, form) = try await formSession(request)
        let store = server.acting(p)
        let id = try param(context, "id")
        switch verb {
        case .export:
            let packet = try await server.export(store: store, caseID: id, agency: form["agency"] ?? "")
            return Response(status: .ok, headers: [.contentType: "application/zip", .contentDisposition: "attachment; filename=\"\(packet.name)\""],
                            body: .init(byteBuffer: ByteBuffer(bytes: packet.bytes)))
        case .submit:
            // Sends (or resumes) the NCMEC submission, as `custos submit` does.
            // Who may submit is settled first: the server's netrc is nobody else's business.
            try await blocking { try store.requirePermission(.export) }
            let endpoint = server.configuration.reportingEndpoint
            guard let host = URL(string: endpoint)?.host else { throw CustosError.invalidInput(field: "--endpoint", reason: "\(endpoint) has no host") }
            let login: String, password: String
            do {
                (login, password) = try Submitter.credentials(host: host, file: server.configuration.netrc)
            } catch let e as CustosError {
                // The operator reads where the file is in the server's log; the page names no path.
                server.logger.error("submit: \(e.description)")
                throw CustosError.invalidState(subject: "the server", state: "without Reporting API credentials",
                                               reason: "the server has no usable credentials for \(host); its operator's log says why")
            }
            let options = Submitter.Options(endpoint: endpoint, login: login, password: password, folder: server.configuration.packets,
                                            keyPath: server.configuration.keyPath)
            do {
                let record = try await Submitter(store: store, options: options, say: { _ in }).submit(caseID: id, agency: "NCMEC")
                return try await casePage(id, notice: "Submission \(record.id) finished: NCMEC report \(record.reportID ?? "?").")
            } catch let stopped as Submitter.Stopped {
                return try await casePage(id, notice: "The submission stopped: \(stopped.message)")
            }
        case .receipt:
            let agency = form["agency"] ?? "", reference = form["reference"] ?? ""
            try await blocking { try store.recordReceipt(caseName: id, agency: agency, reference: reference) }
            return try await casePage(id, notice: "Receipt recorded.")
        }
    }

    static func describe(_ step: ReportingAPI.NextStep) -> String {
        switch step {
        case .done: "none"
        case .submit: "open a report"
        case .upload(let i): "upload file \(i + 1)"
        case .fileinfo(let i): "describe file \(i + 1)"
        case .finish: "finish"
        }
    }

    // MARK: stats

    func stats(_ request: Request) async throws -> Response {
        let (store, p) = try server.requestStore()
        let query = request.uri.queryParameters
        func given(_ name: String) -> String? { query[Substring(name)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        let range = try TrendRange.parse(from: given("from"), to: given("to"), by: given("by"), now: store.clock(), field: { $0 })
        let (s, t) = try await blocking { () throws -> (Stats, Trends) in
            (try store.stats(since: nil, decisionTotals: false), try store.trends(range))
        }
        var c = try await layout(p, title: "Stats", nav: "Stats")
        func minutes(_ m: Double?) -> String { m.map { Console.duration(minutes: Int64($0.rounded())) } ?? "–" }
        c["queueDepth"] = s.queueDepth
        c["leadQueueDepth"] = s.leadQueueDepth
        c["oldest"] = s.oldestQueuedAgeMinutes.map { Console.duration(minutes: $0) } ?? "–"
        c["slaMinutes"] = s.urgentSLAMinutes
        c["breachCount"] = s.urgentBreaches.count
        c["breaches"] = s.urgentBreaches
        c["deadActions"] = s.deadActions
        c["charts"] = [
            Console.chart("Queue depth", [("moderator queue", s.queueDepth), ("lead queue", s.leadQueueDepth)]),
            Console.chart("Cases by state", s.casesByState.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }),
        ]
        // The range's totals: decisions read along the range's index (a total over every
        // decision ever made would read them all on each visit).
        c["firstDecision"] = minutes(t.medianMinutesToFirstDecision)
        c["finalDecision"] = minutes(t.medianMinutesToFinalDecision)
        c["rangeCharts"] = [
            Console.chart("Decisions by outcome in the range", t.decisionsByOutcome.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }),
            Console.chart("Decisions by reviewer in the range", t.decisionsByReviewer.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }),
        ]
        // Trends over the chosen range: the same numbers as `custos stats --json`'s "trends".
        c["from"] = range.fromDay
        c["to"] = range.toDay
        c["steps"] = TrendRange.Step.allCases.map { ["value": $0.rawValue, "selected": $0 == range.step] }
        let per = range.step.rawValue
        let labels = t.buckets.map(\.day)
        let agencies = Set(t.buckets.flatMap(\.referrals.keys)).sorted()
        c["trends"] = [
            Console.trendChart("Decisions by outcome, by \(per)", labels: labels,
                               series: DecisionOutcome.allCases.map { o in (o.rawValue, t.buckets.map { Double($0.decisions[o.rawValue] ?? 0) }) }),
            Console.trendChart("Queue depth at the end of each \(per)", labels: labels,
                               series: [("flags waiting", t.buckets.map { Double($0.queueDepthAtEnd) })]),
            Console.trendChart("Median minutes from detection to decision, by \(per)", labels: labels, series: [
                ("to first decision", t.buckets.map(\.medianMinutesToFirstDecision)),
                ("to final decision", t.buckets.map(\.medianMinutesToFinalDecision)),
            ]),
            Console.trendChart("Urgent flags past the \(t.urgentSLAMinutes)-minute SLA, by \(per)", labels: labels,
                               series: [("breaches", t.buckets.map { Double($0.urgentBreaches) })]),
            Console.trendChart("Cases referred by agency, by \(per)", labels: labels,
                               series: agencies.isEmpty ? [("referrals", t.buckets.map { _ in 0 })]
                                   : agencies.map { a in (a, t.buckets.map { Double($0.referrals[a] ?? 0) }) }),
        ]
        func model(_ p: Trends.Precision) -> String { "\(p.detector) \(p.modelVersion ?? "(no version)")" }
        c["precisionChart"] = Console.chart("Detector precision by model version (% confirmed of decided)",
                                            t.precisionByModelVersion.map { ("\(model($0)) (n=\($0.decided))", Int(($0.precision * 100).rounded())) })
        c["precision"] = (t.precisionByModelVersion.map { ($0, "all") } + t.precision.map { ($0, $0.scoreBand ?? "unscored") }).map { p, band -> [String: Any] in
            ["detector": p.detector, "model": p.modelVersion ?? "–", "band": band, "decided": p.decided, "confirmed": p.confirmed,
             "precision": String(format: "%.1f%%", p.precision * 100)]
        }
        return html(Pages.render("stats", c))
    }

    /// A line chart over time drawn on the server (SVG): one line per series, each with its own
    /// colour and dash pattern named in the legend (colour is never the only cue), and its data
    /// as a table. A missing value (no decision that day) breaks the line.
    static func trendChart(_ title: String, labels: [String], series: [(String, [Double?])]) -> [String: Any] {
        let width = 640, height = 220, left = 56, right = 620, top = 12, bottom = 170
        let maxValue = max(1, series.flatMap { $0.1.compactMap { $0 } }.max() ?? 1)
        let step = labels.count > 1 ? Double(right - left) / Double(labels.count - 1) : 0
        func x(_ i: Int) -> String { String(format: "%.1f", Double(left) + Double(i) * step) }
        func y(_ v: Double) -> String { String(format: "%.1f", Double(bottom) - v / maxValue * Double(bottom - top)) }
        func number(_ v: Double?) -> String {
            guard let v else { return "–" }
            return v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v)
        }
        let lines = series.enumerated().map { n, s -> [String: Any] in
            // Runs of present values, each drawn as one polyline (a lone value as a dot).
            var runs: [[String]] = [], run: [String] = [], dots: [[String: String]] = []
            for (i, v) in s.1.enumerated() {
                if let v { run.append("\(x(i)),\(y(v))") } else if !run.isEmpty { runs.append(run); run = [] }
                if let v { dots.append(["x": x(i), "y": y(v)]) }
            }
            if !run.isEmpty { runs.append(run) }
            return ["name": s.0, "class": "s\(n % 6)", "runs": runs.map { ["points": $0.joined(separator: " ")] }, "dots": labels.count <= 62 ? dots : [],
                    "legendY": bottom + 36 + (n / 3) * 16, "legendTextY": bottom + 40 + (n / 3) * 16,
                    "legendX": left + (n % 3) * 190, "legendX2": left + (n % 3) * 190 + 28, "legendTextX": left + (n % 3) * 190 + 34]
        }
        let rows = labels.enumerated().map { i, label -> [String: Any] in
            ["label": label, "values": series.map { number(i < $0.1.count ? $0.1[i] : nil) }]
        }
        return ["title": title, "width": width, "height": height + ((series.count - 1) / 3) * 16, "lines": lines, "rows": rows,
                "columns": series.map(\.0), "left": left, "right": right, "top": top, "bottom": bottom,
                "maxLabel": number(maxValue), "maxY": top + 4, "zeroY": bottom + 4, "axisY": bottom + 18, "tickX": left - 6,
                "firstLabel": labels.first ?? "", "lastLabel": labels.last ?? "", "lastX": right]
    }

    /// A horizontal bar chart drawn on the server (SVG, with its data as a table beside it).
    static func chart(_ title: String, _ rows: [(String, Int)]) -> [String: Any] {
        let maxValue = max(1, rows.map(\.1).max() ?? 1)
        let bars = rows.enumerated().map { i, r -> [String: Any] in
            let w = Int(Double(r.1) / Double(maxValue) * 300)
            return ["label": r.0, "value": r.1, "y": i * 22 + 2, "textY": i * 22 + 15, "w": w, "valueX": 166 + w]
        }
        return ["title": title, "bars": bars, "width": 520, "height": max(24, rows.count * 22 + 4)]
    }

    // MARK: admin

    func admin(notice: String?, extra: [String: Any]) async throws -> Response {
        let (store, p) = try server.requestStore()
        let data = try await blocking { () throws -> ([UserRecord], [TokenRecord], [(String, String)], [Agency]) in
            (try store.users(), try store.tokens(), try store.settings(), try store.agencies())
        }
        var c = try await layout(p, title: "Admin", nav: "Admin")
        c["users"] = data.0.map { u -> [String: Any] in
            ["name": u.name, "role": u.role.rawValue, "disabled": u.disabled, "state": u.disabled ? "disabled" : "active", "csrf": p.csrf ?? ""]
        }
        c["tokens"] = data.1.map { t -> [String: Any] in ["id": t.id, "user": t.user, "createdAt": t.createdAt, "revokedAt": t.revokedAt ?? "", "active": t.revokedAt == nil, "csrf": p.csrf ?? ""] }
        let set = Dictionary(data.2, uniquingKeysWith: { a, _ in a })
        c["settings"] = Setting.allCases.map { ["key": $0.rawValue, "value": set[$0.rawValue] ?? $0.defaultValue + " (default)"] }
        c["settingNames"] = Setting.allCases.map(\.rawValue)
        c["roles"] = Role.allCases.map(\.rawValue)
        c["agencies"] = data.3.map { a -> [String: Any] in
            ["code": a.code, "name": a.name, "jurisdictions": a.jurisdictions.joined(separator: ", "), "route": a.route.rawValue,
             "retentionDays": a.retentionDays, "sealing": a.publicKey == nil ? "none" : "set"]
        }
        if let notice { c["notice"] = notice }
        c.merge(extra) { _, b in b }
        return html(Pages.render("admin", c))
    }

    /// What the admin page's forms post to, each its own route.
    enum AdminVerb: String { case addUser = "users", disable, password, totp, token, revoke, setting = "settings" }

    func adminAction(_ request: Request, _ verb: AdminVerb, target: String = "") async throws -> Response {
        let (p, form) = try await formSession(request)
        let store = server.acting(p)
        // The admin route group is an admin's: anyone else is refused (logged) before any action
        // runs, even one the Store would allow them on their own account from the CLI.
        try await blocking { try store.requirePermission(.manageUsers) }
        let name = target
        switch verb {
        case .addUser:
            let name = form["name"] ?? ""
            guard let role = Role(rawValue: form["role"] ?? "") else { throw CustosError.invalidInput(field: "role", reason: "unknown role") }
            try await blocking { try store.addUser(name: name, role: role) }
            return try await admin(notice: "Added \(name) as \(role.rawValue); set a password for them below.", extra: [:])
        case .disable:
            try await blocking { try store.disableUser(name: name) }
            await server.sessions.end(user: name)
            return try await admin(notice: "Disabled \(name); their sessions ended and their claims returned to the queue.", extra: [:])
        case .password:
            let password = form["password"] ?? ""
            try await blocking { try store.setPassword(user: name, password: password) }
            if name != p.user { await server.sessions.end(user: name) }
            return try await admin(notice: "Password set for \(name).", extra: [:])
        case .totp:
            let uri = try await blocking { try store.enrolTOTP(user: name) }
            return try await admin(notice: "TOTP enrolled for \(name).", extra: ["shownTOTP": uri])
        case .token:
            let (id, token) = try await blocking { try store.createToken(user: name) }
            return try await admin(notice: "Token \(id) issued for \(name).", extra: ["shownToken": token])
        case .revoke:
            try await blocking { try store.revokeToken(id: target) }
            return try await admin(notice: "Token \(target) revoked.", extra: [:])
        case .setting:
            let key = form["key"] ?? "", value = form["value"] ?? ""
            try await blocking { try store.setSetting(key, value) }
            return try await admin(notice: "\(key) = \(value)", extra: [:])
        }
    }
}

extension CustosServer {
    /// Exports a case as the request's user and answers the packet zip; the packet is kept
    /// under the packets folder as well.
    func export(store: Store, caseID: String, agency: String) async throws -> (name: String, bytes: Data) {
        let folder = configuration.packets
        let keyPath = configuration.keyPath
        let safe = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for (field, value) in [("case", caseID), ("agency", agency)] where value.isEmpty || value.count > 64 || !value.unicodeScalars.allSatisfy(safe.contains) {
            throw CustosError.invalidInput(field: field, reason: "\(quoted(value)) is not a case id or agency code")
        }
        return try await blocking {
            try store.requirePermission(.export)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let key = try store.signingKey(path: keyPath)
            let out = folder.appendingPathComponent("\(caseID)-\(agency)-\(UUID().uuidString.prefix(8))")
            let result = try ReferralExport.run(store: store, caseID: caseID, agency: agency, out: out, zip: true, templates: nil, xsd: nil, key: key,
                                                warn: { _ in })
            guard let zip = result.zip, let bytes = FileManager.default.contents(atPath: zip.path) else {
                throw CustosError.storage(cause: "the packet zip was not written")
            }
            return (result.packetID + ".zip", bytes)
        }
    }
}
