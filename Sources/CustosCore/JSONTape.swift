import Foundation

/// A JSON document read in one pass into a flat array of nodes (no tree of dictionaries):
/// the one parser of Custos. `JSONValue.parse` materialises a tape; ingest validates a flag
/// record on its tape and writes RFC 8785 bytes straight from it (`CanonicalWriter`).
///
/// Layout: a scalar is one node; an array is its node followed by its items' subtrees; an
/// object is its node followed by, per member, the key (a string node) and the value's
/// subtree. A container node records its item count and the index just past its subtree.
/// Strings are stored decoded (escapes resolved, UTF-8 checked) in one byte buffer.
///
/// The parser is strict RFC 8259 and refuses what a canonical form cannot keep: invalid
/// UTF-8, lone surrogates, U+0000, duplicate member names, integers beyond ±2^53, nesting
/// deeper than 64, and trailing data; its errors say where (`conversation.messages[3].text:
/// malformed JSON at byte 812: …`).
public struct JSONTape: Sendable {
    public enum Kind: UInt8, Sendable { case null, bool, integer, number, string, array, object }

    struct Node: Sendable {
        var kind: Kind
        /// string: start in `strings`; integer: the value; number: the bit pattern;
        /// bool: 0 or 1; array/object: the item (member) count.
        var a: Int
        /// string: byte length; array/object: the index just past the subtree.
        var b: Int
    }

    var nodes: [Node] = []
    var strings: [UInt8] = []

    public init() {}

    /// Parses `bytes` into this tape, reusing its storage.
    public mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONValue.ParseError) {
        nodes.removeAll(keepingCapacity: true)
        strings.removeAll(keepingCapacity: true)
        var p = TapeParser(bytes: bytes, tape: self)
        self = JSONTape()  // release our storage to the parser (no copy on write)
        defer { self = p.tape }
        try p.parseDocument()
    }

    public static func parse(_ bytes: [UInt8]) throws(JSONValue.ParseError) -> JSONTape {
        var tape = JSONTape()
        try bytes.withUnsafeBufferPointer { (b) throws(JSONValue.ParseError) in try tape.parse(b) }
        return tape
    }

    // MARK: reading

    public static let root = 0

    public func kind(_ i: Int) -> Kind { nodes[i].kind }

    /// The index just past node `i`'s subtree.
    @inline(__always) func end(_ i: Int) -> Int {
        let n = nodes[i]
        return n.kind == .array || n.kind == .object ? n.b : i + 1
    }

    /// An array's or object's item count.
    public func count(_ i: Int) -> Int { nodes[i].a }

    public func typeName(_ i: Int) -> String {
        switch nodes[i].kind {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    public func isNull(_ i: Int) -> Bool { nodes[i].kind == .null }

    /// The items of array `i`, as node indices (none when `i` is nil).
    public func items(_ i: Int?) -> ItemIndices {
        guard let i else { return ItemIndices(tape: self, first: 0, count: 0) }
        return ItemIndices(tape: self, first: i + 1, count: nodes[i].a)
    }

    /// An object's members as (key node, value node) pairs, in document order.
    public func members(_ i: Int) -> MemberIndices { MemberIndices(tape: self, first: i + 1, count: nodes[i].a) }

    public struct ItemIndices: Sequence, IteratorProtocol {
        let tape: JSONTape
        var first: Int
        var count: Int
        public mutating func next() -> Int? {
            guard count > 0 else { return nil }
            count -= 1
            defer { first = tape.end(first) }
            return first
        }
    }

    public struct MemberIndices: Sequence, IteratorProtocol {
        let tape: JSONTape
        var first: Int
        var count: Int
        public mutating func next() -> (key: Int, value: Int)? {
            guard count > 0 else { return nil }
            count -= 1
            defer { first = tape.end(first + 1) }
            return (first, first + 1)
        }
    }

    /// The decoded bytes of string node `i`.
    @inline(__always) public func withBytes<R>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let n = nodes[i]
        return try strings.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[n.a..<(n.a + n.b)])) }
    }

    public func byteCount(_ i: Int) -> Int { nodes[i].b }

    public func string(_ i: Int) -> String? {
        guard nodes[i].kind == .string else { return nil }
        return withBytes(i) { String(decoding: $0, as: UTF8.self) }
    }

    public func integer(_ i: Int) -> Int64? { nodes[i].kind == .integer ? Int64(nodes[i].a) : nil }

    public func double(_ i: Int) -> Double? {
        switch nodes[i].kind {
        case .integer: Double(nodes[i].a)
        case .number: Double(bitPattern: UInt64(UInt(bitPattern: nodes[i].a)))
        default: nil
        }
    }

    /// Whether string node `i` holds exactly `s` (an ASCII member name).
    @inline(__always) public func equals(_ i: Int, _ s: StaticString) -> Bool {
        let n = nodes[i]
        guard n.kind == .string, n.b == s.utf8CodeUnitCount else { return false }
        return strings.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else { return n.b == 0 }
            return memcmp(base + n.a, s.utf8Start, n.b) == 0
        }
    }

    /// Whether string nodes `i` and `j` hold the same bytes.
    func sameString(_ i: Int, _ j: Int) -> Bool {
        let x = nodes[i], y = nodes[j]
        guard x.b == y.b else { return false }
        return strings.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else { return x.b == 0 }
            return memcmp(base + x.a, base + y.a, x.b) == 0
        }
    }

    /// The value of member `key` of object `i`, or nil.
    public func member(_ i: Int, _ key: StaticString) -> Int? {
        for (k, v) in members(i) where equals(k, key) { return v }
        return nil
    }

    /// Node `i` and its subtree as a `JSONValue`.
    public func value(_ i: Int) -> JSONValue {
        let n = nodes[i]
        switch n.kind {
        case .null: return .null
        case .bool: return .bool(n.a != 0)
        case .integer: return .integer(Int64(n.a))
        case .number: return .number(Double(bitPattern: UInt64(UInt(bitPattern: n.a))))
        case .string: return .string(string(i)!)
        case .array:
            var out: [JSONValue] = []
            out.reserveCapacity(n.a)
            for item in items(i) { out.append(value(item)) }
            return .array(out)
        case .object:
            var out: [String: JSONValue] = [:]
            out.reserveCapacity(n.a)
            for (k, v) in members(i) { out[string(k)!] = value(v) }
            return .object(out)
        }
    }
}

/// The parser behind `JSONTape`: recursive descent over bytes, appending nodes.
struct TapeParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var tape: JSONTape
    var index = 0
    var depth = 0

    init(bytes: UnsafeBufferPointer<UInt8>, tape: JSONTape) { self.bytes = bytes; self.tape = tape }

    mutating func parseDocument() throws(JSONValue.ParseError) {
        skipWhitespace()
        try parseValue()
        skipWhitespace()
        if index < bytes.count { throw fail("unexpected data after the JSON value") }
    }

    func fail(_ reason: String) -> JSONValue.ParseError {
        JSONValue.ParseError(offset: min(index, bytes.count), reason: reason)
    }

    @inline(__always) mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(JSONValue.ParseError) {
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): try parseObject()
        case UInt8(ascii: "["): try parseArray()
        case UInt8(ascii: "\""): try parseString()
        case UInt8(ascii: "t"): try expectLiteral("true"); tape.nodes.append(.init(kind: .bool, a: 1, b: 0))
        case UInt8(ascii: "f"): try expectLiteral("false"); tape.nodes.append(.init(kind: .bool, a: 0, b: 0))
        case UInt8(ascii: "n"): try expectLiteral("null"); tape.nodes.append(.init(kind: .null, a: 0, b: 0))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONValue.ParseError) {
        let l = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        for b in l {
            guard index < bytes.count, bytes[index] == b else { throw fail("invalid literal") }
            index += 1
        }
    }

    mutating func enter() throws(JSONValue.ParseError) {
        depth += 1
        if depth > 64 { throw fail("nesting deeper than 64 levels") }
    }

    mutating func parseObject() throws(JSONValue.ParseError) {
        try enter()
        index += 1
        let me = tape.nodes.count
        tape.nodes.append(.init(kind: .object, a: 0, b: 0))
        var count = 0
        // Member names seen, for the duplicate check: a scan while the object is small, a set beyond.
        var keys: [Int] = []
        var keySet: Set<[UInt8]>?
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1; depth -= 1
            tape.nodes[me].b = tape.nodes.count
            return
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw fail("expected a member name in quotes")
            }
            let keyNode = tape.nodes.count
            try parseString()
            if keySet == nil && keys.count < 16 {
                if keys.contains(where: { tape.sameString($0, keyNode) }) { throw duplicate(keyNode) }
                keys.append(keyNode)
            } else {
                var set = keySet ?? Set(keys.map { k in tape.withBytes(k) { Array($0) } })
                keySet = nil  // one owner, so the insert does not copy the set
                guard set.insert(tape.withBytes(keyNode) { Array($0) }).inserted else { throw duplicate(keyNode) }
                keySet = set
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipWhitespace()
            do { try parseValue() } catch { throw error.inside(tape.string(keyNode) ?? "") }
            count += 1
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of input in an object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; break }
            throw fail("expected ',' or '}'")
        }
        depth -= 1
        tape.nodes[me].a = count
        tape.nodes[me].b = tape.nodes.count
    }

    func duplicate(_ keyNode: Int) -> JSONValue.ParseError {
        fail("duplicate member name \"\(tape.string(keyNode) ?? "")\"")
    }

    mutating func parseArray() throws(JSONValue.ParseError) {
        try enter()
        index += 1
        let me = tape.nodes.count
        tape.nodes.append(.init(kind: .array, a: 0, b: 0))
        var count = 0
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1; depth -= 1
            tape.nodes[me].b = tape.nodes.count
            return
        }
        while true {
            skipWhitespace()
            do { try parseValue() } catch { throw error.inside("[\(count)]") }
            count += 1
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of input in an array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; break }
            throw fail("expected ',' or ']'")
        }
        depth -= 1
        tape.nodes[me].a = count
        tape.nodes[me].b = tape.nodes.count
    }

    @inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    mutating func parseNumber() throws(JSONValue.ParseError) {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw fail("invalid number (leading zero)") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let text = UnsafeBufferPointer(rebasing: bytes[start..<index])
        // Beyond ±2^53 a number is rounded (RFC 8785 encodes through IEEE 754 doubles), so two
        // different records would hash alike: refuse such integers rather than round them.
        if isInteger {
            var magnitude: UInt64 = 0
            var ok = text.count <= 20
            let digits = text[0] == UInt8(ascii: "-") ? UnsafeBufferPointer(rebasing: text[1...]) : text
            if ok {
                for d in digits {
                    magnitude = magnitude &* 10 &+ UInt64(d - 0x30)
                    if magnitude > 1 << 53 { ok = false; break }
                }
            }
            guard ok else {
                index = start
                throw fail("integer \(String(decoding: text.prefix(30), as: UTF8.self)) is beyond ±2^53 and cannot be kept exactly")
            }
            let v = Int64(magnitude)
            tape.nodes.append(.init(kind: .integer, a: Int(digits.count == text.count ? v : -v), b: 0))
            return
        }
        guard let d = Double(String(decoding: text, as: UTF8.self)), d.isFinite else { throw fail("number out of range") }
        tape.nodes.append(.init(kind: .number, a: Int(bitPattern: UInt(d.bitPattern)), b: 0))
    }

    mutating func parseString() throws(JSONValue.ParseError) {
        index += 1  // opening quote
        let start = index
        let outStart = tape.strings.count
        // Fast path: no escapes; the bytes are copied as they are once checked.
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                guard UTF8Check.valid(slice) else {
                    index = start
                    throw fail("invalid UTF-8 in a string")
                }
                index += 1
                tape.strings.append(contentsOf: slice)
                tape.nodes.append(.init(kind: .string, a: outStart, b: slice.count))
                return
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw fail("unescaped control character in a string") }
            index += 1
        }
        guard index < bytes.count else { throw fail("unterminated string") }
        // Slow path with escapes.
        tape.strings.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                let length = tape.strings.count - outStart
                let valid = tape.strings.withUnsafeBufferPointer { UTF8Check.valid(UnsafeBufferPointer(rebasing: $0[outStart...])) }
                guard valid else { throw fail("invalid UTF-8 in a string") }
                tape.nodes.append(.init(kind: .string, a: outStart, b: length))
                return
            }
            if b < 0x20 { throw fail("unescaped control character in a string") }
            if b != UInt8(ascii: "\\") { tape.strings.append(b); index += 1; continue }
            index += 1
            guard index < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""): tape.strings.append(0x22)
            case UInt8(ascii: "\\"): tape.strings.append(0x5C)
            case UInt8(ascii: "/"): tape.strings.append(0x2F)
            case UInt8(ascii: "b"): tape.strings.append(0x08)
            case UInt8(ascii: "f"): tape.strings.append(0x0C)
            case UInt8(ascii: "n"): tape.strings.append(0x0A)
            case UInt8(ascii: "r"): tape.strings.append(0x0D)
            case UInt8(ascii: "t"): tape.strings.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate \\u\(String(scalar, radix: 16)) in a string")
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid surrogate pair in a string") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("lone surrogate \\u\(String(scalar, radix: 16)) in a string")
                }
                guard scalar != 0 else { throw fail("U+0000 (NUL) in a string is not accepted") }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                UTF8.encode(u) { tape.strings.append($0) }
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        throw fail("unterminated string")
    }

    mutating func parseHex4() throws(JSONValue.ParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            index += 1
        }
        return v
    }
}

/// UTF-8 validation over bytes, with an ASCII fast path (most of a conversation is ASCII).
enum UTF8Check {
    static func valid(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        guard let base = b.baseAddress else { return true }
        while i < n {
            // Eight ASCII bytes at a time.
            while i + 8 <= n, UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8 }
            guard i < n else { break }
            let c = base[i]
            if c < 0x80 { i += 1; continue }
            return String(validating: UnsafeBufferPointer(rebasing: b[i...]), as: UTF8.self) != nil
        }
        return true
    }
}
