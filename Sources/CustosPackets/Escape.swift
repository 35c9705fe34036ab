import Foundation

/// Escaping for the formats a packet carries. A conversation is hostile input: everything
/// from it passes through here.
public enum Escape {
    /// XML 1.0 character data and attribute values. Characters XML 1.0 cannot carry at all
    /// (C0 controls other than tab, newline, carriage return; U+FFFE, U+FFFF) become a visible
    /// `[U+XXXX]`; the exact text stays in the conversation's canonical JSON.
    public static func xml(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    out += "[U+" + String(format: "%04X", scalar.value) + "]"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// HTML text and attribute values, escaped per Unicode scalar (a combining mark after `<`
    /// cannot hide it). Controls other than tab and newline are shown as `[U+XXXX]`.
    public static func html(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "`": out += "&#96;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) {
                    out += "[U+" + String(format: "%04X", scalar.value) + "]"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A safe file name component: only [A-Za-z0-9._-], anything else as `_`.
    public static func fileName(_ s: String) -> String {
        let mapped = s.unicodeScalars.map { c -> Character in
            (c.isASCII && (CharacterSet.alphanumerics.contains(c) || c == "." || c == "-" || c == "_")) ? Character(c) : "_"
        }
        let name = String(mapped).trimmingCharacters(in: CharacterSet(charactersIn: "."))
        return name.isEmpty ? "_" : String(name.prefix(80))
    }
}
