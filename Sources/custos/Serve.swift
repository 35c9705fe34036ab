import ArgumentParser
import CustosAgencies
import CustosCore
import CustosServer
import CustosStore
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the review console and the JSON API (/api/v1) until SIGTERM or SIGINT, then finish the requests in flight.",
        discussion: """
            People sign in with a password (`custos user set-password`) and, for compliance and admin (or everyone with \
            `settings set totp-required all`), a TOTP code (`custos user totp`); machine clients send a bearer token \
            (`custos token create`). Listening beyond loopback needs --tls-cert and --tls-key (or a TLS reverse proxy in \
            front on loopback, with --secure-cookies). The OpenAPI document is served at /api/v1/openapi.yaml.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "HOST:PORT to listen on.") var listen = "127.0.0.1:8080"
    @Option(help: "TLS certificate chain (PEM).") var tlsCert: String?
    @Option(help: "TLS private key (PEM).") var tlsKey: String?
    @Flag(help: "Mark cookies Secure (set automatically with TLS; use behind a TLS-terminating proxy).") var secureCookies = false
    @Option(help: "Where exported packets are kept (default: packets/ beside the store).") var packets: String?
    @Option(help: "The signing key file (default: the one init wrote, or $CUSTOS_KEY).") var key: String?
    @Option(help: "NCMEC's Reporting API for the console's submissions: test or production.") var environment: ReportingAPI.Environment = .test
    @Option(help: "The Reporting API's base URL, overriding --environment.") var endpoint: String?
    @Option(help: "The netrc file with the Reporting API credentials (default: $CUSTOS_NETRC, else ~/.netrc).") var netrc: String?
    @Flag(inversion: .prefixedNo, help: "Deliver platform actions in the background (when the server's user may).") var deliverActions = true
    /// One connection for every request, as before readers were added (scripts/bench compares).
    @Flag(help: .hidden) var oneConnection = false

    func run() throws {
        let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (0...65535).contains(port) else {
            throw CustosError.invalidInput(field: "--listen", reason: "\(quoted(listen)) is not HOST:PORT")
        }
        let host = String(parts[0])
        guard (tlsCert == nil) == (tlsKey == nil) else { throw CustosError.invalidInput(field: "--tls-cert/--tls-key", reason: "give both or neither") }
        let loopback = host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.")
        guard loopback || tlsCert != nil else {
            throw CustosError.invalidInput(field: "--listen", reason: "\(host) is not a loopback address: serving beyond this machine needs --tls-cert and --tls-key (or a TLS proxy in front of a loopback listener)")
        }
        var tls: TLSConfiguration?
        if let tlsCert, let tlsKey {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(tlsCert)
                tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                               privateKey: .privateKey(try NIOSSLPrivateKey(file: tlsKey, format: .pem)))
            } catch {
                throw CustosError.invalidInput(field: "--tls-cert/--tls-key", reason: "cannot load the certificate or key: \(error)")
            }
        }
        // A pool: pages read from WAL readers while an ingest holds the one writer.
        let store = try global.open(key: key, readers: !oneConnection)
        // The server writes as each request's user; --actor makes no sense here.
        guard global.actor == nil else { throw CustosError.invalidInput(field: "--actor", reason: "serve acts as each signed-in user; it takes no --actor") }
        // Clients wait on commits: none of them pays for copying the WAL into the database.
        try store.checkpointWALInBackground()
        let packetsDir = packets.map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: store.path).deletingLastPathComponent().appendingPathComponent("packets")
        var logger = Logger(label: "custos.serve")
        logger.logLevel = .info
        let server = CustosServer(store: store, configuration: .init(packets: packetsDir, keyPath: global.keyPath(key),
                                                                      secureCookies: secureCookies || tls != nil,
                                                                      reportingEndpoint: (endpoint ?? environment.baseURL).trimmingCharacters(in: CharacterSet(charactersIn: "/")),
                                                                      netrc: netrc), logger: logger)
        let router = try server.router()
        let address = BindAddress.hostname(host, port: port)
        let config = ApplicationConfiguration(address: address, serverName: "custos")
        let scheme = tls == nil ? "http" : "https"
        FileHandle.standardOutput.write(Data("custos console on \(scheme)://\(listen)/ (API: \(scheme)://\(listen)/api/v1, OpenAPI: /api/v1/openapi.yaml)\n".utf8))
        final class Failure: @unchecked Sendable { var error: Error? }
        let failure = Failure()
        let done = DispatchSemaphore(value: 0)
        let tlsConfig = tls
        Task { await server.maintain() }
        // Platform actions go out in the background when the server's user may deliver them.
        if !deliverActions {
            FileHandle.standardOutput.write(Data("not delivering platform actions (--no-deliver-actions)\n".utf8))
        } else if store.mayDeliverActions() {
            let deliverer = ActionDeliverer(store: store), log = logger
            Task { await deliverer.run { log.warning("platform actions: \($0)") } }
            FileHandle.standardOutput.write(Data("delivering platform actions as \(store.actor.name)\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data("not delivering platform actions: \(store.actor.name) lacks deliver-actions (run `custos actions deliver` as compliance or admin)\n".utf8))
        }
        Task {
            do {
                if let tlsConfig {
                    try await Application(router: router, server: try .tls(.http1(configuration: .init(idleTimeout: CustosServer.idleTimeout)), tlsConfiguration: tlsConfig),
                                          configuration: config, logger: logger).runService()
                } else {
                    try await Application(router: router, server: .http1(configuration: .init(idleTimeout: CustosServer.idleTimeout)), configuration: config, logger: logger).runService()
                }
            } catch { failure.error = error }
            done.signal()
        }
        done.wait()
        if let e = failure.error { throw CustosError.storage(cause: "the server stopped: \(e)") }
    }
}
