package hostile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/internal/chattest"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/internal/hostile"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// TestChatStreamAttacks attacks a chat reply while it streams: the
// client hands out each delta as its chunk authenticates, so the stream
// must end with the typed error at the first chunk that does not, End
// must never report the reply whole, and the error and the caller's logs
// must hold no canary. It runs its own network of two chat workers (the
// chattest double, which answers with the last message's words in upper
// case, one piece each).
func TestChatStreamAttacks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	network, err := devnet.Start(ctx, devnet.Config{Dir: t.TempDir(), Workers: 2, InsecurePlainHTTP: true,
		Backend: func(int) enclave.Backend { return &chattest.Double{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()

	// message is a user message of about 8 KiB, so that the reply takes
	// several response chunks, whose words are canaries.
	message := func() (string, []string) {
		_, canaries := document()
		return strings.Join(canaries[:300], " "), canaries[:300]
	}
	tests := []struct {
		name     string
		response func(earlier []*hostile.Response, r *hostile.Response) *hostile.Response
		opens    bool // Chat returns a stream: the first chunk is genuine
		want     func(error) bool
	}{
		{"a later chunk altered", func(_ []*hostile.Response, r *hostile.Response) *hostile.Response {
			r.Chunks[len(r.Chunks)-2].Ciphertext[0] ^= 1
			return r
		}, true, func(err error) bool {
			return errors.Is(err, seal.ErrAuthentication) && !errors.Is(err, client.ErrTruncated)
		}},
		{"final chunk dropped", func(_ []*hostile.Response, r *hostile.Response) *hostile.Response {
			r.Chunks = r.Chunks[:len(r.Chunks)-1]
			return r
		}, true, func(err error) bool { var te *client.TruncatedError; return errors.As(err, &te) && te.Received > 0 }},
		{"connection broken after two chunks", func(_ []*hostile.Response, r *hostile.Response) *hostile.Response {
			r.Chunks, r.Abort = r.Chunks[:2], true
			return r
		}, true, func(err error) bool { return errors.Is(err, client.ErrTruncated) }},
		{"an earlier reply replayed", func(earlier []*hostile.Response, _ *hostile.Response) *hostile.Response {
			return earlier[0]
		}, false, func(err error) bool { return errors.Is(err, seal.ErrAuthentication) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g *hostile.Gateway
			var armed atomic.Bool
			g = hostile.Start(hostile.Config{Upstream: network.GatewayURL, Listing: func(list *proto.CandidateList) {
				// In a fixed order, so that a replayed reply names a
				// candidate of the new request at its position.
				slices.SortFunc(list.Candidates, func(a, b proto.CandidateInfo) int { return strings.Compare(a.WorkerID, b.WorkerID) })
			}, Response: func(_ *hostile.Request, r *hostile.Response) *hostile.Response {
				if !armed.Load() {
					return r
				}
				return tt.response(g.Responses(), r)
			}})
			defer g.Close()
			c, err := client.New(client.Config{GatewayURL: g.URL, GatewayCA: g.CertPEM, Credential: network.TenantCredential,
				Policy: policy.InsecureSimulated(), K: 2})
			if err != nil {
				t.Fatal(err)
			}
			chat := func(text string) (*client.ChatStream, error) {
				return c.Chat(ctx, proto.ChatRequest{Messages: []proto.ChatMessage{{Role: proto.RoleUser, Content: text}}})
			}
			earlier, _ := message()
			if res, err := mustChat(chat(earlier)); err != nil || len(res) < 3*proto.ResponseChunkData {
				t.Fatalf("the honest reply before the attack: %d bytes, %v", len(res), err)
			}

			var logs lockedBuffer
			app := slog.New(slog.NewJSONHandler(&logs, nil))
			text, canaries := message()
			armed.Store(true)
			stream, err := chat(text)
			var got strings.Builder
			if err == nil {
				if !tt.opens {
					t.Fatal("the stream opened")
				}
				for d, derr := range stream.Deltas() {
					if derr != nil {
						err = derr
						break
					}
					got.WriteString(d)
				}
				if _, ok := stream.End(); ok {
					t.Fatal("End reports an attacked reply whole")
				}
			} else if tt.opens {
				t.Fatalf("the stream did not open: %v", err)
			}
			app.Error("chat failed", slog.Any("err", err), slog.Int("delta_bytes", got.Len()))
			if err == nil || !tt.want(err) {
				t.Fatalf("err = %v (%T) after %d bytes of deltas", err, err, got.Len())
			}
			if tt.opens {
				// What arrived before the attacked chunk is the genuine
				// reply's start: authenticated, and no more.
				reply := strings.TrimPrefix(got.String(), "Sealed reply: ")
				if reply == got.String() || reply == "" || !strings.HasPrefix(strings.ToUpper(text), reply) {
					t.Fatalf("deltas %.60q… are not the start of the genuine reply", got.String())
				}
			}
			assertNoCanary(t, "the client's error", []byte(fmt.Sprintf("%v %+v", err, err)), canaries)
			assertNoCanary(t, "the caller's logs", logs.Bytes(), canaries)
			assertNoCanary(t, "what the hostile gateway saw", g.Seen(), canaries)
			if bytes.Contains(g.Seen(), []byte(strings.ToUpper(canaries[0]))) {
				t.Fatal("the hostile gateway saw the reply")
			}
		})
	}
}

// mustChat collects a chat stream.
func mustChat(s *client.ChatStream, err error) (string, error) {
	if err != nil {
		return "", err
	}
	res, err := s.Collect()
	if err != nil {
		return "", err
	}
	return res.Text, nil
}
