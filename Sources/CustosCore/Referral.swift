import Foundation

/// Everything a referral packet holds, read from the store in one transaction. The packet
/// builder sees only this, never the database.
public struct ReferralSnapshot: Sendable {
    public struct Organisation: Sendable {
        public var name: String
        public var contactEmail: String
        public var logOrigin: String
        public var publicKeyPEM: String
        public init(name: String, contactEmail: String, logOrigin: String, publicKeyPEM: String) {
            self.name = name; self.contactEmail = contactEmail; self.logOrigin = logOrigin; self.publicKeyPEM = publicKeyPEM
        }
    }

    public struct AgencyInfo: Sendable {
        public var code: String
        public var name: String
        public var profile: AgencyProfile
        public var retentionDays: Int
        public init(code: String, name: String, profile: AgencyProfile, retentionDays: Int) {
            self.code = code; self.name = name; self.profile = profile; self.retentionDays = retentionDays
        }
    }

    public struct Flag: Sendable {
        public var key: String
        public var detector: String
        public var flagID: String
        public var modelVersion: String?
        public var score: Double?
        public var detectedAt: String
        public var platform: String
        public var surface: String?
        public var signals: [String]
        public var evidenceHash: String
        public var conversation: Conversation
        /// The canonical document whose SHA-256 is `evidenceHash`.
        public var canonical: Data
        public init(key: String, detector: String, flagID: String, modelVersion: String?, score: Double?, detectedAt: String,
                    platform: String, surface: String?, signals: [String], evidenceHash: String, conversation: Conversation, canonical: Data) {
            self.key = key; self.detector = detector; self.flagID = flagID; self.modelVersion = modelVersion; self.score = score
            self.detectedAt = detectedAt; self.platform = platform; self.surface = surface; self.signals = signals
            self.evidenceHash = evidenceHash; self.conversation = conversation; self.canonical = canonical
        }
    }

    public struct Decision: Sendable {
        public var flagKey: String
        public var reviewer: String
        public var stage: FlagStatus
        public var outcome: DecisionOutcome
        public var reason: String
        public var category: Category?
        public var annotations: [String]
        public var urgentReason: String?
        public var at: String
        public var final: Bool
        public init(flagKey: String, reviewer: String, stage: FlagStatus, outcome: DecisionOutcome, reason: String, category: Category?,
                    annotations: [String], urgentReason: String?, at: String, final: Bool) {
            self.flagKey = flagKey; self.reviewer = reviewer; self.stage = stage; self.outcome = outcome; self.reason = reason
            self.category = category; self.annotations = annotations; self.urgentReason = urgentReason; self.at = at; self.final = final
        }
    }

    public var packetID: String
    /// Earlier packets for the same case and agency: this one supplements the latest.
    public var supplements: String?
    public var caseID: String
    public var platform: String
    public var agency: AgencyInfo
    public var organisation: Organisation
    public var createdAt: String
    public var exportedBy: String
    public var category: Category?
    public var annotations: [Annotation]
    public var urgentReasons: [String]
    public var reported: [Person]
    public var victims: [Person]
    public var flags: [Flag]
    public var decisions: [Decision]
    /// The custody entries about this case and its flags, each covered by `checkpointNote`.
    public var custody: [CustodyEntry]
    public var proofs: [TlogProof]
    public var checkpointNote: String
    /// Attachment bytes by SHA-256 (only those the store holds).
    public var attachments: [String: Data]
    /// NCMEC report ids of earlier finished submissions about a reported account (by account
    /// id): the CyberTipline XML names them in `priorCTReports`.
    public var priorReports: [String: [String]] = [:]

    public init(packetID: String, supplements: String?, caseID: String, platform: String, agency: AgencyInfo,
                organisation: Organisation, createdAt: String, exportedBy: String, category: Category?, annotations: [Annotation],
                urgentReasons: [String], reported: [Person], victims: [Person], flags: [Flag], decisions: [Decision],
                custody: [CustodyEntry], proofs: [TlogProof], checkpointNote: String, attachments: [String: Data]) {
        self.packetID = packetID; self.supplements = supplements; self.caseID = caseID; self.platform = platform
        self.agency = agency; self.organisation = organisation; self.createdAt = createdAt; self.exportedBy = exportedBy
        self.category = category; self.annotations = annotations; self.urgentReasons = urgentReasons
        self.reported = reported; self.victims = victims; self.flags = flags; self.decisions = decisions
        self.custody = custody; self.proofs = proofs; self.checkpointNote = checkpointNote; self.attachments = attachments
    }
}
