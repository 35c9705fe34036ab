import CustosCore
import Crypto
import Foundation

/// An exclusive lock on a file (`flock`): held by one open file at a time, in this process or
/// any other on the machine, and let go when its holder releases it, exits or is killed. One
/// mechanism for "one at a time" outside a transaction: a submission to an agency (two runs
/// would open two reports) and a witness's state file (two witnesses would cosign a fork).
public final class FileLock: @unchecked Sendable {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// Takes the lock on `path` (created 0600 if missing) without waiting, writing `holder` into
    /// it; nil when another holds it, with what that holder wrote.
    public static func take(_ path: String, holder: String) throws -> Result<FileLock, HeldBy> {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CustosError.storage(cause: "cannot open the lock file \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            var bytes = [UInt8](repeating: 0, count: 512)
            let n = pread(fd, &bytes, bytes.count, 0)
            close(fd)
            guard busy else { throw CustosError.storage(cause: "cannot lock \(path): \(String(cString: strerror(errno)))") }
            return .failure(HeldBy(description: n > 0 ? String(decoding: bytes[0..<n], as: UTF8.self) : "another process"))
        }
        let text = Array(holder.utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, text, text.count, 0)
        return .success(FileLock(fd: fd))
    }

    public struct HeldBy: Error, Sendable { public let description: String }

    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}

extension Store {
    /// One submission of a case to an agency at a time, across every process using this store
    /// (the CLI's `submit`, the console's Submit button): taken before anything is exported or
    /// sent, held until the run ends. A second run is refused, naming the one that holds it.
    public func submissionLock(caseName: String, agency: String) throws -> FileLock {
        let caseID = CaseID.parse(caseName).map(CaseID.format) ?? caseName
        let name = Hex.encode(Array(SHA256.hash(data: Data("\(caseID)\n\(agency)".utf8)))).prefix(16)
        let holder = "`submit` of case \(caseID) to \(agency) by \(actor.name) (process \(getpid()), since \(Timestamp.utcString(millis: clock())))"
        switch try FileLock.take("\(path)-submit-\(name).lock", holder: holder) {
        case .success(let lock): return lock
        case .failure(let held):
            throw CustosError.conflict(subject: "case \(caseID)", reason: "is being submitted to \(agency) already: \(held.description). Nothing was exported or sent; that run resumes or finishes this case's submission (run `custos submit` again once it ends to see where it stands)")
        }
    }
}
