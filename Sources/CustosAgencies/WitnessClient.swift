import AsyncHTTPClient
import CustosStore
import Foundation
import NIOCore

/// The one HTTP client for calls to the outside (an agency's reporting API, a witness, a
/// platform's action receiver). It follows no redirect: a 3xx is an answer, so a report or a
/// checkpoint goes only where the operator named, never to another origin or over plain http.
/// It opens as many connections to one host as the deliverer sends requests at once (the
/// client's default of 8 queued three of every four of a batch of 32 behind the others).
public let outsideClient: HTTPClient = {
    var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
    configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: ActionDeliverer.defaultBatch)
    return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
}()

/// How checkpoints reach witnesses (`Store.witnessPost`).
public enum WitnessClient {
    /// One HTTP POST (an answer of at most 64 KiB is read); (0, reason) when there was none.
    public static let post: WitnessPost = { url, body, timeout in
        do {
            let request = try HTTPClient.Request(url: url, method: .POST, headers: ["Content-Type": "text/plain; charset=utf-8"], body: .string(body))
            let response = try outsideClient.execute(request: request, delegate: ResponseAccumulator(request: request, maxBodySize: 64 * 1024),
                                                     deadline: .now() + .milliseconds(Int64(timeout * 1000))).futureResult.wait()
            return (Int(response.status.code), response.body.map { String(buffer: $0) } ?? "")
        } catch {
            return (0, "unreachable: \(error)")
        }
    }
}
