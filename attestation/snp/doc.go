// Package snp verifies and collects AMD SEV-SNP evidence: an attestation
// report, signed by the chip's endorsement key, and the collateral that
// proves that key is AMD's.
//
// It is split the way go-sev-guest is, and builds on it:
//
//   - Parsing. The report's layout is go-sev-guest's (package abi); this
//     package adds only strictness (exactly ReportSize bytes, a known
//     signature algorithm).
//   - Collateral. Collateral is our encoding of everything needed to verify
//     a report offline: the VCEK or VLEK certificate, the ASK or ASVK, the
//     ARK, and optionally the ARK's CRL, DER as AMD's Key Distribution
//     Service serves them. Marshal and ParseCollateral are canonical and
//     strict. A bundle carries it in proto.Bundle.Collateral.
//   - Cryptographic verification. Verify checks the report's signature and
//     the certificate chain up to a pinned ARK, revocation from the carried
//     CRL, and the validity of every certificate and the CRL at an injected
//     time, then returns the verified Claims. The cryptography is
//     go-sev-guest's verify.SnpAttestation, fed only the carried
//     certificates and CRL: certificate fetching is off and its getter
//     refuses the network, so nothing is fetched and the wall clock is
//     never read. Each failure is a *check.Error with its own code.
//   - Policy validation. Validate checks Claims against a policy's SNP
//     rules: launch measurement, host data, minimum TCB, the guest policy's
//     debug, migration-agent and SMT bits, and whether a CRL is required.
//   - Collection, in package attestation/snp/collect: a Collector runs
//     inside a confidential VM, gets a report for a REPORT_DATA through
//     configfs-tsm (go-configfs-tsm's report package, behind go-sev-guest's
//     client.QuoteProvider) and assembles its Collateral from the host's
//     certificate table and, for what is missing and for the CRL, AMD KDS
//     through an injected trust.HTTPSGetter. It is a separate package
//     because go-sev-guest's client package registers command-line flags
//     when linked; only the worker links it.
//
// Test fixtures (test-only AMD chains, reports, CRLs) are in package
// attestation/snp/snptest; the test vectors in testvectors/attestation/snp
// are made by scripts/gen-snp-vectors.
//
// REPORT_DATA is not checked here: the caller (package attestation)
// compares Claims.ReportData with the bundle's binding hash, after Verify
// and before Validate.
//
// Decisions this package makes:
//
//   - The trust anchor is the ARK. Options.Roots pins ARK certificates per
//     product line; nil means AMDRoots, the ARKs go-sev-guest embeds, and no
//     production path accepts another root. The carried ARK must be one of
//     them byte for byte; the carried ASK or ASVK must be signed by it (so
//     an intermediate AMD reissues needs no new release, the root does).
//   - Following X.509, the ARK's CRL covers what the ARK signs: the ASK and
//     ASVK. VCEKs are not looked up in it (AMD issues them all with serial
//     number 0 and supersedes them by TCB, which the minimum TCB enforces).
//   - A missing CRL under require_crl is reported as check.CodeRevoked,
//     the code package check reserves for "no CRL where one is required".
//   - Claims.NextUpdate is the earliest of the CRL's next update and every
//     certificate's expiry: a cached verdict must not outlive it.
//   - The endorsement key's certificate must certify the report's
//     REPORTED_TCB and, for a VCEK, its CHIP_ID, or the chain is refused.
//
// The package does not log. It imports go-sev-guest's verify package,
// which registers one command-line flag (-workaround_kds_productname, off)
// on the global flag set when linked into a program.
package snp
