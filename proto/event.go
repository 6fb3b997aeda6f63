package proto

import (
	"encoding/binary"
	"fmt"
	"io"
)

// EventType says what an Event of the response stream carries.
type EventType uint8

// The response stream is a sequence of events; exactly one terminal event
// (EventEnd or EventError) ends it.
const (
	// EventData carries a piece of the task's output, as UTF-8 text.
	EventData EventType = 1
	// EventError carries a JSON ErrorBody: the task failed inside the worker.
	EventError EventType = 2
	// EventEnd carries a JSON EndBody: the task finished.
	EventEnd EventType = 3
)

// MaxEventData bounds one event's data.
const MaxEventData = 1 << 20

// Event is one record of the decrypted response stream.
type Event struct {
	Type EventType
	Data []byte
}

// Terminal reports whether e ends the stream.
func (e Event) Terminal() bool { return e.Type == EventEnd || e.Type == EventError }

// ErrorBody is the JSON body of an EventError.
type ErrorBody struct {
	// Code is a stable machine-readable code such as "bad_request".
	Code string `json:"code"`
	// Message is a short human-readable description; it never quotes input.
	Message string `json:"message"`
}

// EndBody is the JSON body of an EventEnd.
type EndBody struct {
	// Backend names the inference backend, such as "builtin".
	Backend string `json:"backend"`
	// Model names the model or algorithm that produced the output.
	Model string `json:"model"`
	// ModelDigest is the digest ("sha256:" and 64 hex digits) the
	// worker's evidence binds for Model (WorkerKeys.Models), set by the
	// worker, never by a backend. Empty when the evidence binds no digest
	// for Model. A client checks it against its verified evidence.
	ModelDigest string `json:"model_digest,omitempty"`
	// InputUnits and OutputUnits count the work done, in the backend's
	// units (bytes for builtin tasks, tokens for models).
	InputUnits  int64 `json:"input_units"`
	OutputUnits int64 `json:"output_units"`
}

// AppendEvent appends the encoding of e: type byte, 4-byte length, data.
func AppendEvent(dst []byte, e Event) []byte {
	dst = append(dst, byte(e.Type))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Data)))
	return append(dst, e.Data...)
}

// ReadEvent reads one event from r. A clean end of input before the first
// byte is io.EOF.
func ReadEvent(r io.Reader) (Event, error) {
	var pre [5]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Event{}, err
	}
	e := Event{Type: EventType(pre[0])}
	if e.Type < EventData || e.Type > EventEnd {
		return Event{}, malformed("event", "type", "found %d, want 1 to 3", pre[0])
	}
	n := binary.BigEndian.Uint32(pre[1:])
	if n > MaxEventData {
		return Event{}, malformed("event", "length", "found %d, want at most %d", n, MaxEventData)
	}
	e.Data = make([]byte, n)
	if _, err := io.ReadFull(r, e.Data); err != nil {
		return Event{}, noEOF(err)
	}
	return e, nil
}

func (t EventType) String() string {
	switch t {
	case EventData:
		return "data"
	case EventError:
		return "error"
	case EventEnd:
		return "end"
	}
	return fmt.Sprintf("event(%d)", uint8(t))
}
