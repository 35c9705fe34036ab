import Foundation

/// Writes synthetic, non-explicit flag records at any scale, deterministically per seed
/// (`custos gen`). Message lengths, participant counts and times vary like real chats.
public struct Generator {
    public var flags: Int
    public var messages: Int
    public var seed: UInt64
    /// When set, every flag reports this account (on one platform), so they form one case.
    public var reported: String?

    public init(flags: Int, messages: Int, seed: UInt64, reported: String? = nil) {
        self.flags = flags; self.messages = messages; self.seed = seed; self.reported = reported
    }

    /// SplitMix64: small, fast, and the same on every platform.
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let words = ["hey", "how", "was", "school", "today", "you", "are", "so", "mature", "for", "your", "age", "what",
                        "game", "playing", "later", "cool", "lol", "ok", "maybe", "tomorrow", "homework", "music", "send",
                        "me", "the", "link", "did", "see", "new", "video", "weekend", "nice", "thanks", "sure", "talk",
                        "soon", "bye", "team", "match", "won", "again", "free", "now", "busy", "haha", "really", "yes", "no"]
    static let platforms = ["ExampleChat", "PixelPlay", "TeenSpace"]
    static let countries = ["US", "GB", "CA", "AU", "DE", "US", "US"]

    /// Calls `emit` with one JSON line (no newline) per flag.
    public func generate(_ emit: (String) -> Void) {
        var rng = RNG(state: seed)
        let base: Int64 = 1_790_000_000_000  // 2026-09
        for i in 0..<flags {
            let adult = reported ?? "u-\(100000 + rng.int(900000))"
            var minor = "u-\(100000 + rng.int(900000))"
            while minor == adult { minor = "u-\(100000 + rng.int(900000))" }
            var participants: [JSONValue] = [
                .object(["user_id": .string(adult), "screen_name": .string("user\(rng.int(99999))"),
                         "role_hint": .string("suspected_adult"), "country": .string(Self.countries[rng.int(Self.countries.count)]),
                         "ip_events": .array([.object(["ip": .string("203.0.113.\(rng.int(255))"), "event": .string("Login"),
                                                       "at": .string(Timestamp.format(millis: base + Int64(i) * 60_000, offsetMinutes: 0))])])]),
                .object(["user_id": .string(minor), "screen_name": .string("kid\(rng.int(99999))"),
                         "role_hint": .string("suspected_minor"), "stated_age": .integer(Int64(11 + rng.int(5))),
                         "country": .string(Self.countries[rng.int(Self.countries.count)])]),
            ]
            if rng.int(10) == 0 {
                var third = "u-\(rng.int(999999))"
                while third == adult || third == minor { third = "u-\(rng.int(999999))" }
                participants.append(.object(["user_id": .string(third), "role_hint": .string("unknown")]))
            }
            let start = base + Int64(i) * 60_000
            var t = start
            var msgs: [JSONValue] = []
            for m in 0..<messages {
                t += Int64(5_000 + rng.int(120_000))
                let n = 1 + rng.int(rng.int(8) == 0 ? 60 : 14)
                let text = (0..<n).map { _ in Self.words[rng.int(Self.words.count)] }.joined(separator: " ")
                let sender = participants[m % 2 == 0 ? 0 : 1]["user_id"]!
                msgs.append(.object(["id": .string("m\(m + 1)"), "sender": sender,
                                     "sent_at": .string(Timestamp.format(millis: t, offsetMinutes: 0)), "text": .string(text)]))
            }
            let scored = rng.int(10) != 0
            let record: JSONValue = .object([
                ("flag_id", .string(String(format: "gen-%08d", i))),
                ("source", .object(["detector": .string("gen"), "model_version": .string("1.0")])),
                ("score", scored ? .number(Double(rng.int(1000)) / 1000) : nil),
                ("detected_at", .string(Timestamp.format(millis: t + 1000, offsetMinutes: 0))),
                ("service", .object(["platform": .string(reported == nil ? Self.platforms[rng.int(Self.platforms.count)] : Self.platforms[0]), "surface": .string("direct_messages")])),
                ("signals", .array([.string("age_gap")])),
                ("conversation", .object(["id": .string("conv-\(i)"), "participants": .array(participants), "messages": .array(msgs)])),
            ])
            emit(record.canonicalString)
        }
    }
}
