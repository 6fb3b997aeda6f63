package seal

import "errors"

var (
	// ErrAuthentication: a wrap, commitment tag or chunk did not
	// authenticate. Tampering, reordering, splicing, a swapped candidate list
	// and a wrong key all end here, on purpose without detail.
	ErrAuthentication = errors.New("sealed message failed authentication")
	// ErrTruncated: the stream ended before its final chunk.
	ErrTruncated = errors.New("sealed stream truncated before its final chunk")
	// ErrTrailingData: bytes followed the final chunk or the terminal event.
	ErrTrailingData = errors.New("data after the end of the sealed stream")
	// ErrNotCandidate: a response names a key that is not the request's
	// candidate at that position.
	ErrNotCandidate = errors.New("response is not from a candidate of this request")
	// ErrReplay: the worker has already served this request id under its
	// current key.
	ErrReplay = errors.New("request id already served")
	// ErrUnknownKey: the request is not sealed to any key this worker holds.
	ErrUnknownKey = errors.New("request not sealed to a key of this worker")
	// ErrStale: the request's timestamp is outside the accepted window.
	ErrStale = errors.New("request timestamp outside the accepted window")
	// ErrSuite: the suite is unsupported, below the required minimum, or not
	// the suite of the key it is used with.
	ErrSuite = errors.New("hpke suite not acceptable")
	// ErrReplayCacheFull: the worker cannot remember more request ids until
	// older ones expire; it refuses rather than forget one.
	ErrReplayCacheFull = errors.New("replay cache full")
)
