import Foundation

/// A JSON value as read from untrusted input, with a canonical encoding.
///
/// The canonical encoding is RFC 8785 (JSON Canonicalization Scheme): object members
/// sorted by their UTF-16 code units, no insignificant whitespace, strings escaped only
/// where JSON requires it, numbers in ECMAScript's shortest round-trip form. Anyone can
/// recompute it with an RFC 8785 library.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Parses one JSON document. Throws `JSONValue.ParseError` with a readable reason.
    public static func parse(_ data: Data) throws -> JSONValue {
        try parse([UInt8](data))
    }

    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONTape.parse(bytes).value(JSONTape.root)
    }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let offset: Int
        public let reason: String
        /// Where in the document, as `conversation.messages[3].text` (empty at the top).
        public var path = ""
        public var description: String { "\(path.isEmpty ? "" : path + ": ")malformed JSON at byte \(offset + 1): \(reason)" }

        func inside(_ component: String) -> ParseError {
            var e = self
            e.path = path.isEmpty || path.hasPrefix("[") ? component + path : component + "." + path
            return e
        }
    }

    // MARK: canonical encoding

    /// RFC 8785 canonical bytes.
    public var canonicalData: Data { Data(canonicalBytes) }

    public var canonicalBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(256)
        writeCanonical(into: &out)
        return out
    }

    public var canonicalString: String { String(decoding: canonicalBytes, as: UTF8.self) }

    public func writeCanonical(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .integer(let i): out.append(contentsOf: Self.canonicalInteger(i).utf8)
        case .number(let d): out.append(contentsOf: Self.canonicalNumber(d).utf8)
        case .string(let s): Self.writeCanonical(string: s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.writeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let keys = members.count == 1 ? Array(members.keys)
                : members.keys.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) }
            for (i, key) in keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeCanonical(string: key, into: &out)
                out.append(UInt8(ascii: ":"))
                members[key]!.writeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// RFC 8785 section 3.2.2.2 string escaping, on UTF-8 bytes.
    public static func writeCanonical(string: String, into out: inout [UInt8]) {
        var s = string
        s.withUTF8 { writeCanonical(utf8: $0, into: &out) }
    }

    /// RFC 8785 section 3.2.2.2 string escaping of a string's (valid) UTF-8 bytes.
    public static func writeCanonical(utf8 bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        out.append(0x22)
        do {
            var runStart = 0
            for i in 0..<bytes.count {
                let b = bytes[i]
                guard b < 0x20 || b == 0x22 || b == 0x5C else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                runStart = i + 1
                switch b {
                case 0x22: out.append(contentsOf: [0x5C, 0x22])
                case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
                case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
                case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                default:
                    out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(b >> 4)], hexDigits[Int(b & 0x0F)]])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        out.append(0x22)
    }

    public static func writeCanonical(string: String, into out: inout String) {
        var bytes = [UInt8]()
        writeCanonical(string: string, into: &bytes)
        out += String(decoding: bytes, as: UTF8.self)
    }

    static func canonicalInteger(_ i: Int64) -> String {
        // ECMAScript prints integers beyond 2^53 through Double; keep JCS exact for those.
        if i.magnitude <= (1 << 53) { return String(i) }
        return canonicalNumber(Double(i))
    }

    /// ECMAScript Number.prototype.toString for finite doubles (RFC 8785 section 3.2.2.3).
    public static func canonicalNumber(_ d: Double) -> String {
        if d == 0 { return "0" }
        if d.isNaN || d.isInfinite { return "null" }
        // Swift's description is the shortest round-trip digits; re-lay them out as ECMAScript does.
        let negative = d < 0
        var text = "\(abs(d))"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        var digits: String
        var pointPosition: Int
        if let dot = text.firstIndex(of: ".") {
            let intPart = String(text[..<dot])
            let fracPart = String(text[text.index(after: dot)...])
            digits = intPart + fracPart
            pointPosition = intPart.count
        } else {
            digits = text
            pointPosition = text.count
        }
        // Strip leading zeros (adjusting the point), then trailing zeros.
        while digits.count > 1 && digits.hasPrefix("0") {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.count > 1 && digits.hasSuffix("0") { digits.removeLast() }
        let k = digits.count
        let n = pointPosition + exponent  // value = 0.digits * 10^n
        var result: String
        if k <= n && n <= 21 {
            result = digits + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            let idx = digits.index(digits.startIndex, offsetBy: n)
            result = String(digits[..<idx]) + "." + String(digits[idx...])
        } else if -6 < n && n <= 0 {
            result = "0." + String(repeating: "0", count: -n) + digits
        } else {
            let e = n - 1
            let sign = e < 0 ? "-" : "+"
            let mantissa = k == 1 ? digits : String(digits.first!) + "." + String(digits.dropFirst())
            result = mantissa + "e" + sign + String(abs(e))
        }
        return negative ? "-" + result : result
    }
}

extension JSONValue {
    /// Builds an object from optional members, dropping nils.
    public static func object(_ pairs: [(String, JSONValue?)]) -> JSONValue {
        var members: [String: JSONValue] = [:]
        for (k, v) in pairs { if let v { members[k] = v } }
        return .object(members)
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }
    public var intValue: Int64? {
        switch self {
        case .integer(let i): return i
        case .number(let d) where d == d.rounded() && abs(d) < 9e15: return Int64(d)
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }
}
