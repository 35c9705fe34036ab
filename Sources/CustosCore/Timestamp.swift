import Foundation

/// An RFC 3339 timestamp as received: the original text is kept (evidence is stored as
/// received), with the instant in UTC milliseconds and the original UTC offset.
public struct Timestamp: Equatable, Sendable {
    public let text: String
    public let epochMillis: Int64
    public let offsetMinutes: Int

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; returns nil for anything else,
    /// including impossible dates (2026-02-30) and a missing offset.
    public static func parse(_ text: String) -> Timestamp? {
        var storage = text
        // Over the string's own UTF-8 storage: no copy (parsing is on every message's path).
        return storage.withUTF8 { instant($0) }.map { Timestamp(text: text, epochMillis: $0.millis, offsetMinutes: $0.offsetMinutes) }
    }

    /// The instant a timestamp's UTF-8 bytes name (UTC milliseconds) and its offset, or nil
    /// when they are not one `parse` accepts.
    public static func instant(_ b: UnsafeBufferPointer<UInt8>) -> (millis: Int64, offsetMinutes: Int)? {
        guard b.count >= 20 else { return nil }
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= b.count else { return nil }
            var v = 0
            for i in from..<(from + len) {
                let c = b[i]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard let year = num(0, 4), b[4] == 0x2D, let month = num(5, 2), b[7] == 0x2D, let day = num(8, 2),
              b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == 0x20,
              let hour = num(11, 2), b[13] == 0x3A, let minute = num(14, 2), b[16] == 0x3A, let second = num(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second <= 60 else { return nil }
        var i = 19
        var millis = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            guard i > start else { return nil }
            var digits = 0
            for j in start..<min(i, start + 3) { millis = millis * 10 + Int(b[j] - 0x30); digits += 1 }
            while digits < 3 { millis *= 10; digits += 1 }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == 0x3A, let om = num(i + 4, 2),
                  oh < 24, om < 60 else { return nil }
            offset = sign * (oh * 60 + om)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offset * 60)
        return (seconds * 1000 + Int64(millis), offset)
    }

    public init(text: String, epochMillis: Int64, offsetMinutes: Int) {
        self.text = text
        self.epochMillis = epochMillis
        self.offsetMinutes = offsetMinutes
    }

    /// `2026-11-20T13:59:01.000Z`
    public static func utcString(millis: Int64) -> String {
        format(millis: millis, offsetMinutes: 0, fractional: true)
    }

    /// `2026-11-20T13:59:01Z`, or with a `±HH:MM` offset when `offsetMinutes` is not zero.
    public static func format(millis: Int64, offsetMinutes: Int, fractional: Bool = false) -> String {
        let local = millis + Int64(offsetMinutes) * 60_000
        var secs = local >= 0 ? local / 1000 : (local - 999) / 1000
        let ms = Int(local - secs * 1000)
        var days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
        secs -= days * 86400
        let (y, m, d) = civilFromDays(Int(days))
        days = 0
        let hh = Int(secs / 3600), mm = Int(secs % 3600 / 60), ss = Int(secs % 60)
        var s = pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T" + pad(hh, 2) + ":" + pad(mm, 2) + ":" + pad(ss, 2)
        if fractional { s += "." + pad(ms, 3) }
        if offsetMinutes == 0 {
            s += "Z"
        } else {
            let a = abs(offsetMinutes)
            s += (offsetMinutes < 0 ? "-" : "+") + pad(a / 60, 2) + ":" + pad(a % 60, 2)
        }
        return s
    }

    /// Parses `YYYY-MM-DD` to the UTC midnight of that day.
    public static func parseDate(_ text: String) -> Int64? {
        parse(text + "T00:00:00Z")?.epochMillis
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days-from-civil algorithms.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
