import CXML
import Foundation

/// Schema validation through libxml2 (the C side is Sources/CXML).
enum LibXML2 {
    /// nil when `document` is valid against `schema`, else what is wrong, with line numbers.
    static func validate(document: Data, schema: Data) -> String? {
        let message = schema.withUnsafeBytes { s in
            document.withUnsafeBytes { d in
                custos_xsd_validate(s.baseAddress?.assumingMemoryBound(to: CChar.self), s.count,
                                    d.baseAddress?.assumingMemoryBound(to: CChar.self), d.count)
            }
        }
        guard let message else { return nil }
        defer { free(message) }
        return String(cString: message)
    }
}
