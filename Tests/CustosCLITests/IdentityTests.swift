import CustosCore
import Foundation
import Testing

/// Console identities from the command line: passwords from stdin only, TOTP enrolment, tokens,
/// `cli-actors off`, and every entry's `auth`.
@Suite struct IdentityCLI {
    @Test func passwordsTokensAndAssertedActors() throws {
        let cli = try CLI()
        try cli.initStore()
        #expect(try cli.run(["user", "add", "mia", "--role", "moderator", "--db", cli.db]).status == 0)
        // Never as an argument; too short is refused naming the field; nothing is stored.
        #expect(try cli.run(["user", "set-password", "mia", "--db", cli.db]).status == 64)
        let short = try cli.run(["user", "set-password", "mia", "--password-stdin", "--db", cli.db], stdin: Data("short\n".utf8))
        #expect(short.status == 65 && short.err.contains("password: must be at least 12 characters"))
        #expect(try sqliteShell(cli.db, "SELECT count(*) FROM credentials").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        let set = try cli.run(["user", "set-password", "mia", "--password-stdin", "--db", cli.db], stdin: Data("a long enough password\n".utf8))
        #expect(set.status == 0, "\(set.err)")
        let hash = try sqliteShell(cli.db, "SELECT password_hash FROM credentials WHERE user = 'mia'")
        #expect(hash.hasPrefix("$2b$12$") && !hash.contains("a long enough password"))
        let totp = try cli.run(["user", "totp", "mia", "--db", cli.db])
        #expect(totp.out.hasPrefix("otpauth://totp/CLI%20Test:mia?secret="))
        // A detector token: printed once, stored as its SHA-256.
        #expect(try cli.run(["user", "add", "det", "--role", "detector", "--db", cli.db]).status == 0)
        let token = try cli.run(["token", "create", "det", "--db", cli.db])
        let parts = token.out.split(whereSeparator: \.isWhitespace).map(String.init)
        #expect(parts.count == 2 && parts[1].hasPrefix("custos_"))
        let stored = try sqliteShell(cli.db, "SELECT token_sha256 FROM tokens").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(stored == SHA256Hex.of(parts.last ?? "") && !stored.isEmpty)
        // The entries say how their actor was established.
        #expect(try cli.run(["queue", "--actor", "mia", "--db", cli.db]).status == 0)
        let auths = try sqliteShell(cli.db, "SELECT DISTINCT auth FROM custody WHERE auth IS NOT NULL ORDER BY auth")
        #expect(auths.split(separator: "\n").map(String.init) == ["cli:os-login"])
        // An admin switches --actor off: an assertion is refused (and the refusal logged).
        #expect(try cli.run(["settings", "set", "cli-actors", "off", "--db", cli.db]).status == 0)
        let asserted = try cli.run(["queue", "--actor", "mia", "--db", cli.db])
        #expect(asserted.status == 77 && asserted.err.contains("cli-actors off"))
        #expect(try sqliteShell(cli.db, "SELECT action, actor, auth FROM custody ORDER BY seq DESC LIMIT 1").trimmingCharacters(in: .whitespacesAndNewlines) == "refused|mia|cli:asserted")
        #expect(try cli.run(["settings", "set", "cli-actors", "maybe", "--db", cli.db]).status == 65)
        // A password hash written behind the log's back is named by audit verify.
        _ = try sqliteShell(cli.db, "UPDATE credentials SET password_hash = '$2b$12$forgedforgedforgedforgedforgedforgedforgedforgedforge' WHERE user = 'mia'")
        let verify = try cli.run(["audit", "verify", "--db", cli.db])
        #expect(verify.status == 1 && verify.out.contains("credentials \"mia\": password_sha256"))
    }
}

extension IdentityCLI {
    /// serve listens beyond loopback only with TLS, and takes no --actor.
    @Test func serveRefusesAnOpenListenerWithoutTLS() throws {
        let cli = try CLI()
        try cli.initStore()
        let open = try cli.run(["serve", "--listen", "0.0.0.0:0", "--db", cli.db])
        #expect(open.status == 65 && open.err.contains("needs --tls-cert and --tls-key"))
        let half = try cli.run(["serve", "--tls-cert", "x.pem", "--db", cli.db])
        #expect(half.status == 65 && half.err.contains("give both or neither"))
        #expect(try cli.run(["serve", "--listen", "nonsense", "--db", cli.db]).status == 65)
    }
}
