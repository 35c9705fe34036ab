// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "custos",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "custos", targets: ["custos"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", exact: "2.1.1"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", exact: "0.9.20"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", exact: "2.5.0"),
        .package(url: "https://github.com/apple/swift-openapi-generator", exact: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", exact: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird", exact: "2.1.0"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
    ],
    targets: [
        // Pure model: canonical encoding, hashing, Merkle math, review rules. No I/O, no clock.
        .target(
            name: "CustosCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // migrations/, templates/ and the sample data, compiled into the binary so that a
        // copied `custos` needs no files beside it.
        .target(
            name: "CustosResources",
            exclude: ["samples"],
            plugins: [.plugin(name: "EmbedFilesPlugin")]),
        .target(
            name: "CustosStore",
            dependencies: [
                "CustosCore", "CustosResources", "CXML", "CustosMedia",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C interface, for the few statements run per record (DirectStatement).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                // Login secrets: bcrypt password hashes and RFC 6238 codes.
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HummingbirdOTP", package: "hummingbird-auth"),
            ]),
        // libxml2's schema validator, linked in-process (Debian: libxml2-dev).
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        .target(name: "CXML", dependencies: ["CLibXML2"]),
        // PNG and JPEG decoding with Debian's libpng and libjpeg-turbo (on a fresh machine of
        // this kind), their long jumps kept inside C; and the attachment hashes built on it.
        .target(name: "CImage", linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),
        .target(
            name: "CustosMedia",
            dependencies: ["CustosCore", "CImage", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "CustosPackets",
            dependencies: [
                "CustosCore", "CustosResources", "CXML",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]),
        // Custos and the outside: the referral export workflow (the CLI and the console share
        // it), the NCMEC Reporting API client (`custos submit`) and the witness client, over
        // http(s) with AsyncHTTPClient (not Foundation's URLSession, which a static build cannot
        // link). The store does no networking.
        .target(
            name: "CustosAgencies",
            dependencies: [
                "CustosCore", "CustosStore", "CustosPackets",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // `custos serve`: the console and the JSON API (its OpenAPI document, openapi.yaml, is
        // compiled into the server's types by swift-openapi-generator, so the two cannot drift).
        .target(
            name: "CustosServer",
            dependencies: [
                "CustosCore", "CustosStore", "CustosPackets", "CustosResources", "CustosAgencies",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]),
        .executableTarget(
            name: "custos",
            dependencies: [
                "CustosCore", "CustosStore", "CustosPackets", "CustosResources", "CustosAgencies", "CustosServer", "CustosMedia",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .executableTarget(name: "EmbedFiles", path: "Sources/EmbedFiles"),
        .plugin(
            name: "EmbedFilesPlugin",
            capability: .buildTool(),
            dependencies: ["EmbedFiles"],
            path: "Sources/EmbedFilesPlugin"),
        .testTarget(name: "CustosCoreTests", dependencies: ["CustosCore", "CustosMedia", "CustosTestSupport"], exclude: ["pdq"], resources: [.copy("vectors")]),
        .target(name: "CustosTestSupport", path: "Tests/CustosTestSupport"),
        .testTarget(name: "CustosStoreTests", dependencies: ["CustosStore", "CustosCore", "CustosTestSupport",
                                                          .product(name: "Crypto", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "CustosPacketsTests", dependencies: ["CustosPackets", "CustosStore", "CustosCore", "CustosTestSupport",
                                                            .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .testTarget(name: "CustosCLITests", dependencies: ["CustosCore", "custos"]),
        .testTarget(name: "CustosServerTests", dependencies: ["CustosServer", "CustosAgencies", "CustosStore", "CustosCore", "CustosPackets", "CustosResources", "CustosTestSupport",
                                                           .product(name: "HummingbirdTesting", package: "hummingbird"),
                                                           .product(name: "HummingbirdOTP", package: "hummingbird-auth")]),
    ]
)
