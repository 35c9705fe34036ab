import Crypto
import Foundation

/// RFC 9162 section 2.1 Merkle tree hashing and proofs.
public enum Merkle {
    public typealias Hash = [UInt8]

    public static func leafHash<D: DataProtocol>(_ data: D) -> Hash {
        var h = SHA256()
        h.update(data: [0x00])
        h.update(data: data)
        return Array(h.finalize())
    }

    public static func nodeHash(_ left: Hash, _ right: Hash) -> Hash {
        var h = SHA256()
        h.update(data: [0x01])
        h.update(data: left)
        h.update(data: right)
        return Array(h.finalize())
    }

    public static let emptyRoot: Hash = Array(SHA256.hash(data: Data()))

    /// Largest power of two strictly less than n (n > 1).
    static func split(_ n: Int64) -> Int64 {
        var k: Int64 = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// Supplies hashes of perfect, aligned subtrees: level 0 is a leaf hash, level L index i
    /// covers leaves [i·2^L, (i+1)·2^L).
    public typealias NodeSource = (_ level: Int, _ index: Int64) throws -> Hash

    /// MTH(D[start..<end]) using stored perfect subtrees: O(log n) lookups.
    public static func subtreeHash(_ start: Int64, _ end: Int64, nodes: NodeSource) throws -> Hash {
        let n = end - start
        if n == 0 { return emptyRoot }
        if n & (n - 1) == 0 && start % n == 0 {
            return try nodes(n.trailingZeroBitCount, start / n)
        }
        let k = split(n)
        return nodeHash(try subtreeHash(start, start + k, nodes: nodes), try subtreeHash(start + k, end, nodes: nodes))
    }

    public static func root(size: Int64, nodes: NodeSource) throws -> Hash {
        try subtreeHash(0, size, nodes: nodes)
    }

    /// RFC 9162 2.1.3.1: PATH(m, D[n]) for leaf `index` in the tree of `size` leaves.
    public static func inclusionProof(index: Int64, size: Int64, nodes: NodeSource) throws -> [Hash] {
        precondition(index >= 0 && index < size)
        var proof: [Hash] = []
        try path(index, 0, size, nodes, &proof)
        return proof
    }

    private static func path(_ m: Int64, _ start: Int64, _ end: Int64, _ nodes: NodeSource, _ proof: inout [Hash]) throws {
        let n = end - start
        if n <= 1 { return }
        let k = split(n)
        if m < k {
            try path(m, start, start + k, nodes, &proof)
            proof.append(try subtreeHash(start + k, end, nodes: nodes))
        } else {
            try path(m - k, start + k, end, nodes, &proof)
            proof.append(try subtreeHash(start, start + k, nodes: nodes))
        }
    }

    /// RFC 9162 2.1.4.1: PROOF(m, D[n]) between the first `size1` leaves and `size2`.
    public static func consistencyProof(size1: Int64, size2: Int64, nodes: NodeSource) throws -> [Hash] {
        precondition(0 < size1 && size1 <= size2)
        var proof: [Hash] = []
        try subproof(size1, 0, size2, true, nodes, &proof)
        return proof
    }

    private static func subproof(_ m: Int64, _ start: Int64, _ end: Int64, _ b: Bool, _ nodes: NodeSource,
                                 _ proof: inout [Hash]) throws {
        let n = end - start
        if m == n {
            if !b { proof.append(try subtreeHash(start, end, nodes: nodes)) }
            return
        }
        let k = split(n)
        if m <= k {
            try subproof(m, start, start + k, b, nodes, &proof)
            proof.append(try subtreeHash(start + k, end, nodes: nodes))
        } else {
            try subproof(m - k, start + k, end, false, nodes, &proof)
            proof.append(try subtreeHash(start, start + k, nodes: nodes))
        }
    }

    /// RFC 9162 2.1.3.2: verifies that `leaf` is leaf `index` of the tree with `root`.
    public static func verifyInclusion(index: Int64, size: Int64, leaf: Hash, proof: [Hash], root: Hash) -> Bool {
        guard index >= 0, index < size, leaf.count == 32, root.count == 32,
              proof.allSatisfy({ $0.count == 32 }) else { return false }
        var fn = index
        var sn = size - 1
        var r = leaf
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// RFC 9162 2.1.4.2: verifies that the tree `root2` of `size2` extends `root1` of `size1`.
    public static func verifyConsistency(size1: Int64, size2: Int64, root1: Hash, root2: Hash, proof: [Hash]) -> Bool {
        guard size1 > 0, size1 <= size2 else { return false }  // a proof from the empty tree proves nothing
        if size1 == size2 { return proof.isEmpty && root1 == root2 }
        guard size1 > 0, root1.count == 32, root2.count == 32, proof.allSatisfy({ $0.count == 32 }) else { return false }
        guard !proof.isEmpty else { return false }
        var path = proof
        if size1 & (size1 - 1) == 0 { path.insert(root1, at: 0) }
        guard !path.isEmpty else { return false }
        var fn = size1 - 1
        var sn = size2 - 1
        while fn & 1 == 1 { fn >>= 1; sn >>= 1 }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == root1 && sr == root2 && sn == 0
    }

    /// Computes the root over in-memory leaf hashes (for tests and one-pass verification).
    public static func root(leaves: [Hash]) -> Hash {
        var builder = FrontierBuilder()
        for l in leaves { builder.append(l) }
        return builder.root
    }

    /// The perfect subtrees that leaf `index` completes, lowest first, as (level, index, hash):
    /// the one place a level of the tree is built. `sibling(level, index)` gives the left
    /// sibling subtree's root (from a frontier in memory, or from stored nodes).
    public static func completed(by leaf: Hash, at index: Int64,
                                 sibling: (_ level: Int, _ index: Int64) throws -> Hash) rethrows -> [(level: Int, index: Int64, hash: Hash)] {
        var completed: [(Int, Int64, Hash)] = []
        var h = leaf
        var idx = index
        var level = 0
        while idx & 1 == 1 {
            h = nodeHash(try sibling(level, idx - 1), h)
            level += 1
            idx >>= 1
            completed.append((level, idx, h))
        }
        return completed
    }

    /// O(log n) state for appending leaves and reading the current root (the "frontier":
    /// the roots of the perfect subtrees, left to right).
    public struct FrontierBuilder: Sendable {
        public private(set) var size: Int64 = 0
        var stack: [Hash] = []

        public init() {}

        /// The frontier of a tree of `size` leaves from its stored perfect subtrees (one per set
        /// bit of `size`, largest first): appending to it continues that tree.
        public init(size: Int64, nodes: NodeSource) throws {
            var start: Int64 = 0
            for level in stride(from: 62, through: 0, by: -1) where size & (Int64(1) << level) != 0 {
                stack.append(try nodes(level, start >> level))
                start += Int64(1) << level
            }
            self.size = size
        }

        /// Appends a leaf; returns the perfect subtrees it completes as (level, index, hash).
        @discardableResult
        public mutating func append(_ leaf: Hash) -> [(level: Int, index: Int64, hash: Hash)] {
            let completed = Merkle.completed(by: leaf, at: size) { _, _ in stack.removeLast() }
            stack.append(completed.last?.hash ?? leaf)
            size += 1
            return completed
        }

        public var root: Hash {
            guard var r = stack.last else { return Merkle.emptyRoot }
            for h in stack.dropLast().reversed() { r = Merkle.nodeHash(h, r) }
            return r
        }
    }
}
