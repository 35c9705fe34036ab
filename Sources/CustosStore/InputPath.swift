import CustosCore
import Foundation

/// Paths a person names (an input, an output, the store): what is there, checked before
/// anything is read or written, so a folder, a FIFO or a device gets a message, not a trap
/// or a hang.
public enum InputPath {
    /// Refuses anything but a regular file that this process may read (or, with
    /// `mayBeMissing`, write); nothing there is fine only with `mayBeMissing`. `kind` and
    /// `hint` word the not-found message. Returns whether the file exists.
    @discardableResult
    public static func requireRegularFile(_ path: String, role: String, mayBeMissing: Bool = false,
                                          kind: String = "file", hint: String? = nil) throws -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT && mayBeMissing { return false }
            throw errno == ENOENT ? CustosError.notFound(kind: kind, name: path, hint: hint ?? role)
                                  : CustosError.storage(cause: "\(role) \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            let what = switch info.st_mode & S_IFMT {
            case S_IFDIR: "a folder"
            case S_IFIFO: "a FIFO (use - and a pipe for streams)"
            case S_IFCHR, S_IFBLK: "a device"
            default: "not a regular file"
            }
            throw CustosError.invalidInput(field: role, reason: "\(path) is \(what)")
        }
        guard access(path, mayBeMissing ? W_OK : R_OK) == 0 else {
            throw CustosError.storage(cause: "\(role) \(path): \(String(cString: strerror(errno)))")
        }
        return true
    }
}
