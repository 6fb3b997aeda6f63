package translog_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/internal/pgtest"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// t0 is the tests' frozen clock.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func now() time.Time { return t0 }

// testBundle returns a well-formed (not verifiable) evidence bundle with
// the given collateral and a random key and nonce.
func testBundle(t testing.TB, collateral []byte) []byte {
	t.Helper()
	b := proto.Bundle{Kind: "sim", Report: []byte("report"), Collateral: collateral}
	rand.Read(b.Nonce[:])
	pub := make([]byte, 32)
	rand.Read(pub)
	b.Keys.HPKE = []proto.HPKEKey{{KEM: proto.KEMX25519, PublicKey: pub}}
	b.Keys.Signing = make([]byte, 32)
	rand.Read(b.Keys.Signing)
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// evidence returns an admission entry for a fresh bundle with collateral.
func evidence(t testing.TB, kind translog.Kind, worker string, collateral []byte) translog.Pending {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	e, coll, err := translog.NewEvidence(kind, t0, worker, "acme", pub, make([]byte, 64), [32]byte{1}, testBundle(t, collateral))
	if err != nil {
		t.Fatal(err)
	}
	return translog.Pending{Entry: e, Collateral: coll}
}

func newSigner(t testing.TB, origin string) *translog.Signer {
	t.Helper()
	skey, _, err := translog.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := translog.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// backends opens a fresh store of each kind.
func backends(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			return openStore(t, filepath.Join(t.TempDir(), "gw.db"))
		},
		"postgres": func(t *testing.T) store.Store { return openStore(t, pgtest.DSN(t)) },
	}
}

func openStore(t testing.TB, target string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newLog(t testing.TB, st store.Store, s *translog.Signer) *translog.Log {
	t.Helper()
	l, err := translog.New(context.Background(), translog.Config{Storage: st.(translog.Storage), Signer: s, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func pgtestDSN(t *testing.T) string { return pgtest.DSN(t) }
