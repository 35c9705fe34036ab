import Foundation

/// Runs a store call (GRDB blocks its thread on the database) off Swift's cooperative threads,
/// so the console's requests and the action deliverer never starve each other.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        blockingQueue.async { c.resume(with: Result { try body() }) }
    }
}

public func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in blockingQueue.async { c.resume(returning: body()) } }
}

private let blockingQueue = DispatchQueue(label: "custos.blocking", attributes: .concurrent)
