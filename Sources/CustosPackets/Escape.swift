import Foundation

/// Escaping for the formats a packet carries. A conversation is hostile input: everything
/// from it passes through here.
public enum Escape {
    /// XML 1.0 character data and attribute values. Characters XML 1.0 cannot carry at all
    /// (C0 controls other than tab, newline, carriage return; U+FFFE, U+FFFF) become a visible
    /// `[U+XXXX]`; the exact text stays in the conversation's canonical JSON.
    public static func xml(_ s: String) -> String {
        escape(s) { c in
            switch c {
            case "&": "&amp;"
            case "<": "&lt;"
            case ">": "&gt;"
            case "\"": "&quot;"
            case "'": "&apos;"
            case "\t", "\n": nil
            // A literal CR would be normalised to LF by every XML parser; a reference keeps it.
            case "\r": "&#13;"
            default: c.value < 0x20 || c.value == 0xFFFE || c.value == 0xFFFF ? visible(c) : nil
            }
        }
    }

    /// HTML text and attribute values, escaped per Unicode scalar (a combining mark after `<`
    /// cannot hide it). Controls other than tab and newline are shown as `[U+XXXX]`.
    public static func html(_ s: String) -> String {
        escape(s) { c in
            switch c {
            case "&": "&amp;"
            case "<": "&lt;"
            case ">": "&gt;"
            case "\"": "&quot;"
            case "'": "&#39;"
            case "`": "&#96;"
            case "\t", "\n": nil
            default: c.value < 0x20 || c.value == 0x7F || (0x80..<0xA0).contains(c.value) ? visible(c) : nil
            }
        }
    }

    /// Plain text read in a terminal or an editor (the packet's transcripts): every control
    /// (C0 but tab, DEL, C1: ESC sequences, OSC 8 links, CR overwrites) and every bidi override
    /// or isolate is shown as `[U+XXXX]`, so a message stays on its one line and reads as sent.
    public static func text(_ s: String) -> String { controls(s, as: visible) }

    /// Text for a terminal line: the same characters as `text`, shown as `\u{1b}`.
    public static func terminal(_ s: String) -> String { controls(s) { "\\u{\(String($0.value, radix: 16))}" } }

    /// Replaces every control but tab (C0, DEL, C1) and every bidi override or isolate.
    static func controls(_ s: String, as shown: (Unicode.Scalar) -> String) -> String {
        escape(s) { c in
            c == "\t" ? nil
                : c.value < 0x20 || c.value == 0x7F || (0x80..<0xA0).contains(c.value)
                    || (0x202A...0x202E).contains(c.value) || (0x2066...0x2069).contains(c.value) ? shown(c) : nil
        }
    }

    static func visible(_ c: Unicode.Scalar) -> String { "[U+" + String(format: "%04X", c.value) + "]" }

    /// Replaces each scalar for which `replacement` gives a string; keeps the others.
    static func escape(_ s: String, _ replacement: (Unicode.Scalar) -> String?) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            if let r = replacement(scalar) { out += r } else { out.unicodeScalars.append(scalar) }
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
