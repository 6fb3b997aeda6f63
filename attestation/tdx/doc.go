// Package tdx verifies Intel TDX evidence offline: a TDX V4 quote and the
// Intel PCS collateral that a sealgate evidence bundle carries with it.
//
// The work is split the way go-tdx-guest (which does most of it) splits
// it:
//
//   - Parsing: the quote's layout is go-tdx-guest's abi package; the TCB
//     info and QE identity JSON are its pcs types. Nothing here
//     re-implements either. A quote must be V4 with nothing after its
//     signed data.
//   - Collateral encoding: Collateral is ours, a strict, versioned,
//     length-prefixed encoding (Marshal, ParseCollateral) of exactly what
//     Intel PCS returns for a platform, so a client and an auditor verify
//     without fetching anything. The PCK certificate chain travels in the
//     quote itself.
//   - Cryptographic verification (Verify): go-tdx-guest's verify package,
//     fed our collateral through a getter that serves the carried bytes at
//     the PCS URLs it asks for, checks signatures, chains to the pinned
//     Intel SGX Root CA, revocation and TCB levels. Verify adds what a
//     verdict cache needs and the library does not give: validity windows
//     at an injected time (nothing reads the wall clock), a stable error
//     Code per failure (check.Error), TCB statuses other than UpToDate
//     reported rather than refused, and the earliest next update of the
//     collateral used (Claims.NextUpdate).
//   - Policy validation (Validate): a policy's TDX rules applied to the
//     verified Claims: measurements, debug, minimum TEE_TCB_SVN, accepted
//     TCB statuses, TCB evaluation number, required CRLs.
//   - Collection, inside a TD: package tdx/collect gets quotes through
//     configfs-tsm and fetches collateral from Intel PCS through an
//     injected getter. It is a separate package because go-tdx-guest's
//     client package registers a command-line flag when it is linked,
//     which verifiers (the client, the gateway, auditors) must not carry.
//
// REPORT_DATA binding is not checked here: package attestation compares
// Claims.ReportData with the bundle's binding hash between Verify and
// Validate, as for every TEE kind.
//
// Fixture roots for tests are injected through Options.Roots; with Roots
// nil, only the pinned Intel root is trusted. Package tdx/tdxtest builds
// synthetic quotes and collateral under fixture roots for tests and test
// vectors; production code never imports it.
package tdx
