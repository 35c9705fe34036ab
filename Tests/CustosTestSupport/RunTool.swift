import Foundation

/// Runs a tool found on PATH (sqlite3, openssl, bagit.py, …) and returns its exit status and
/// combined output: how the tests act as a person with a shell, or as an agency with public tools.
@discardableResult
public func runTool(_ args: [String], cwd: URL? = nil) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    if let cwd { p.currentDirectoryURL = cwd }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
