// Package proto holds sealgate's wire types and their codecs: the sealed
// request and response framing, the evidence bundle a worker publishes, and
// the constants both sides agree on. It does no network or file I/O and no
// cryptography beyond hashing; sealing and opening live in package seal.
//
// Every Parse function is strict: it accepts exactly the bytes its Marshal
// would produce for the parsed value and rejects anything else (unknown
// versions, out-of-range lengths, non-zero padding, trailing bytes). All parse
// failures wrap ErrMalformed. The format is specified in SPEC.md beside this
// file, precisely enough to implement it in another language.
package proto
