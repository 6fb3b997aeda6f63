// Package storetest is the conformance suite of store.Store: every
// backend must pass it, so that the gateway behaves the same on each.
//
// A backend's test calls Run with a function that opens a fresh, empty
// store for one test and closes it in t.Cleanup, and RunReopen with one
// that can also open the same database again.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/proto"
)

// t0 is the suite's clock: tests never read time.Now.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs the suite. open returns a fresh, empty store and arranges for
// its Close in t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"WorkerRoundTrip", testWorkerRoundTrip},
		{"TimesAreUTCMillis", testTimesAreUTCMillis},
		{"WorkerNotFound", testWorkerNotFound},
		{"PutWorkerRejects", testPutWorkerRejects},
		{"UpsertKeepsEarlierKeys", testUpsertKeepsEarlierKeys},
		{"KeyMovesToNewWorker", testKeyMovesToNewWorker},
		{"KeysOrder", testKeysOrder},
		{"PruneKeys", testPruneKeys},
		{"WorkerState", testWorkerState},
		{"DeleteWorkerLeavesTombstone", testDeleteWorker},
		{"WorkersUpdatedSince", testWorkersUpdatedSince},
		{"ByteOrder", testByteOrder},
		{"Providers", testProviders},
		{"ProviderKeys", testProviderKeys},
		{"Tenants", testTenants},
		{"TenantKeysAndLimits", testTenantKeysAndLimits},
		{"Pools", testPools},
		{"PoolReservations", testPoolReservations},
		{"ConcurrentPutWorker", testConcurrentPutWorker},
		{"PingAndClose", testPingAndClose},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// RunReopen checks that what a store wrote survives its Close. open
// returns a fresh, empty store and a function that opens the same
// database again (closing it in t.Cleanup).
func RunReopen(t *testing.T, open func(t *testing.T) (s store.Store, reopen func(t *testing.T) store.Store)) {
	ctx := t.Context()
	s, reopen := open(t)
	w := fullWorker("w-1")
	k1, k2 := key(1, "w-1", w.ExpiresAt), key(2, "w-1", w.ExpiresAt.Add(time.Minute))
	must(t, s.PutWorker(ctx, w, []store.Key{k1, k2}))
	gone := fullWorker("w-gone")
	must(t, s.PutWorker(ctx, gone, nil))
	if _, err := s.DeleteWorker(ctx, "w-gone", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	p, ten := provider("p-1", 1), tenant("t-1", 2)
	must(t, s.CreateProvider(ctx, p))
	must(t, s.CreateTenant(ctx, ten))
	pool := store.Pool{ID: "pool-1", TenantID: "t-1", Name: "main", Workers: []string{"n1", "n2"}, Slots: 3, Lend: true, CreatedAt: t0}
	must(t, s.CreatePool(ctx, pool))
	must(t, s.Close())

	s = reopen(t)
	gotW, err := s.Workers(ctx)
	must(t, err)
	if len(gotW) != 1 {
		t.Fatalf("workers after reopen: found %d, want 1", len(gotW))
	}
	checkEqual(t, "worker after reopen", gotW[0], w)
	gotK, err := s.Keys(ctx)
	must(t, err)
	checkEqual(t, "keys after reopen", gotK, []store.Key{k1, k2})
	del, err := s.DeletedWorkersSince(ctx, t0)
	must(t, err)
	checkEqual(t, "tombstones after reopen", del, []string{"w-gone"})
	gotP, err := s.Providers(ctx)
	must(t, err)
	checkEqual(t, "providers after reopen", gotP, []store.Provider{p})
	gotT, err := s.Tenants(ctx)
	must(t, err)
	checkEqual(t, "tenants after reopen", gotT, []store.Tenant{ten})
	gotPools, err := s.Pools(ctx)
	must(t, err)
	checkEqual(t, "pools after reopen", gotPools, []store.Pool{pool})
}

// Fixtures.

func fullWorker(id string) store.Worker {
	bundle := []byte("evidence bundle of " + id)
	pin := sha256.Sum256([]byte("spki of " + id))
	return store.Worker{
		ID: id, URL: "https://" + id + ".example:8443", ProviderID: "prov-1",
		Tasks: []string{"summarize", "translate"}, Models: []string{"llama-3-8b", "mistral-7b"},
		Region: "eu-west", Capacity: 4, Kind: "tdx",
		Bundle: bundle, BundleHash: sha256.Sum256(bundle),
		Endorsement: bytes.Repeat([]byte{0xE5}, 64), TLSPin: pin[:],
		State:      store.StateActive,
		AdmittedAt: t0, ExpiresAt: t0.Add(15 * time.Minute), AttestedAt: t0.Add(time.Minute), UpdatedAt: t0.Add(time.Minute),
	}
}

// minimalWorker leaves every optional field empty.
func minimalWorker(id string) store.Worker {
	return store.Worker{ID: id, URL: "http://" + id, ProviderID: "prov-1", Capacity: 1, Kind: "sim",
		State: store.StateActive, UpdatedAt: t0}
}

func key(b byte, worker string, expires time.Time) store.Key {
	var id proto.KeyID
	id[0], id[len(id)-1] = b, ^b
	return store.Key{ID: id, WorkerID: worker, ExpiresAt: expires}
}

func hash(n byte) [32]byte { return sha256.Sum256([]byte{n}) }

func provider(id string, n byte) store.Provider {
	return store.Provider{ID: id, Name: "Provider " + id, KeyHash: hash(n),
		SigningKey: bytes.Repeat([]byte{n}, 32), CreatedAt: t0}
}

func tenant(id string, n byte) store.Tenant {
	return store.Tenant{ID: id, Name: "Tenant " + id, KeyHash: hash(n), RequestsPerSecond: 2.5,
		BurstRequests: 10, BytesPerSecond: 1 << 20, BurstBytes: 4 << 20, CreatedAt: t0}
}

// Assertions.

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkErr checks that err wraps target (when set) and mentions every
// substring in want.
func checkErr(t *testing.T, what string, err, target error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: found no error, want one wrapping %v mentioning %q", what, target, want)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("%s: found %v, want an error wrapping %v", what, err, target)
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("%s: found %q, want it to mention %q", what, err, s)
		}
	}
}

// checkEqual compares got and want deeply, times with time.Equal, and
// checks that every non-zero time in got is in UTC.
func checkEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := diff(reflect.ValueOf(got), reflect.ValueOf(want), ""); d != "" {
		t.Fatalf("%s:%s\nfound %+v\nwant  %+v", what, d, got, want)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// diff describes the first difference between got and want, at path
// (a field or index path from the compared value; "" at the top).
func diff(got, want reflect.Value, path string) string {
	at := " " + path + ":"
	if path == "" {
		at = ""
	}
	if got.Type() != want.Type() {
		return fmt.Sprintf("%s found type %v, want %v", at, got.Type(), want.Type())
	}
	switch {
	case got.Type() == timeType:
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w) {
			return fmt.Sprintf("%s found %v, want %v", at, g, w)
		}
		if !g.IsZero() && g.Location() != time.UTC {
			return fmt.Sprintf("%s found location %v, want UTC", at, g.Location())
		}
		return ""
	case got.Kind() == reflect.Struct:
		for i := range got.NumField() {
			if d := diff(got.Field(i), want.Field(i), path+"."+got.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case got.Kind() == reflect.Slice && got.Type().Elem().Kind() == reflect.Struct:
		if got.IsNil() != want.IsNil() || got.Len() != want.Len() {
			return fmt.Sprintf("%s found %d elements (nil %v), want %d (nil %v)", at, got.Len(), got.IsNil(), want.Len(), want.IsNil())
		}
		for i := range got.Len() {
			if d := diff(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	// Slices of bytes and strings: nil and empty differ, as documented.
	if !reflect.DeepEqual(got.Interface(), want.Interface()) {
		return fmt.Sprintf("%s found %#v, want %#v", at, got.Interface(), want.Interface())
	}
	return ""
}

// Workers.

func testWorkerRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	full, min := fullWorker("w-full"), minimalWorker("w-min")
	must(t, s.PutWorker(ctx, full, nil))
	must(t, s.PutWorker(ctx, min, nil))
	got, err := s.Worker(ctx, "w-full")
	must(t, err)
	checkEqual(t, "worker w-full", got, full)
	got, err = s.Worker(ctx, "w-min")
	must(t, err)
	// Empty lists and byte strings read back as nil.
	checkEqual(t, "worker w-min", got, min)
	all, err := s.Workers(ctx)
	must(t, err)
	checkEqual(t, "workers", all, []store.Worker{full, min})

	drained := fullWorker("w-drained")
	drained.State, drained.DrainedAt = store.StateDraining, t0.Add(2*time.Minute)
	must(t, s.PutWorker(ctx, drained, nil))
	got, err = s.Worker(ctx, "w-drained")
	must(t, err)
	checkEqual(t, "draining worker", got, drained)
}

func testTimesAreUTCMillis(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("IST", 5*3600+1800)
	at := time.Date(2030, 1, 2, 8, 34, 5, 123_456_789, zone) // 03:04:05.123456789 UTC
	w := minimalWorker("w")
	w.AdmittedAt, w.ExpiresAt, w.AttestedAt, w.UpdatedAt = at, at.Add(time.Hour), at, at
	k := key(1, "w", at.Add(time.Hour))
	must(t, s.PutWorker(ctx, w, []store.Key{k}))
	got, err := s.Worker(ctx, "w")
	must(t, err)
	wantAt := time.Date(2030, 1, 2, 3, 4, 5, 123_000_000, time.UTC)
	want := w
	want.AdmittedAt, want.ExpiresAt, want.AttestedAt, want.UpdatedAt = wantAt, wantAt.Add(time.Hour), wantAt, wantAt
	checkEqual(t, "worker with sub-millisecond times in +05:30", got, want)
	keys, err := s.Keys(ctx)
	must(t, err)
	k.ExpiresAt = wantAt.Add(time.Hour)
	checkEqual(t, "keys", keys, []store.Key{k})
}

func testWorkerNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Worker(ctx, "absent")
	checkErr(t, "Worker of an absent id", err, store.ErrNotFound, `"absent"`)
	err = s.SetWorkerState(ctx, "absent", store.StateDraining, t0)
	checkErr(t, "SetWorkerState of an absent id", err, store.ErrNotFound, `"absent"`)
	ws, err := s.Workers(ctx)
	must(t, err)
	if ws != nil {
		t.Fatalf("workers of an empty store: found %+v, want nil", ws)
	}
	keys, err := s.Keys(ctx)
	must(t, err)
	if keys != nil {
		t.Fatalf("keys of an empty store: found %+v, want nil", keys)
	}
}

func testPutWorkerRejects(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		edit    func(*store.Worker)
		keys    []store.Key
		wantErr string
	}{
		{"no id", func(w *store.Worker) { w.ID = "" }, nil, "id: found \"\""},
		{"no url", func(w *store.Worker) { w.URL = "" }, nil, "url: found \"\""},
		{"no provider", func(w *store.Worker) { w.ProviderID = "" }, nil, "provider id: found \"\""},
		{"no kind", func(w *store.Worker) { w.Kind = "" }, nil, "kind: found \"\""},
		{"zero capacity", func(w *store.Worker) { w.Capacity = 0 }, nil, "capacity: found 0, want at least 1"},
		{"unknown state", func(w *store.Worker) { w.State = "paused" }, nil, `state: found "paused"`},
		{"no state", func(w *store.Worker) { w.State = "" }, nil, `state: found ""`},
		{"draining without a time", func(w *store.Worker) { w.State = store.StateDraining }, nil, "drained at: found the zero time"},
		{"active with a drain time", func(w *store.Worker) { w.DrainedAt = t0 }, nil, "drained at: found 2030-01-02"},
		{"short tls pin", func(w *store.Worker) { w.TLSPin = make([]byte, 31) }, nil, "tls pin: found 31 bytes, want 32"},
		{"empty tls pin", func(w *store.Worker) { w.TLSPin = []byte{} }, nil, "tls pin: found 0 bytes"},
		{"no updated at", func(w *store.Worker) { w.UpdatedAt = time.Time{} }, nil, "updated at: found the zero time"},
		{"task with a comma", func(w *store.Worker) { w.Tasks = []string{"a", "b,c"} }, nil, `tasks[1]: found "b,c"`},
		{"empty task", func(w *store.Worker) { w.Tasks = []string{""} }, nil, `tasks[0]: found ""`},
		{"model with a comma", func(w *store.Worker) { w.Models = []string{"m,1"} }, nil, `models[0]: found "m,1"`},
		{"key of another worker", func(*store.Worker) {}, []store.Key{key(1, "w", t0), key(2, "other", t0)}, `keys[1]: worker id: found "other", want "w"`},
	} {
		w := fullWorker("w")
		tc.edit(&w)
		err := s.PutWorker(ctx, w, tc.keys)
		checkErr(t, tc.name, err, nil, tc.wantErr)
	}
	ws, err := s.Workers(ctx)
	must(t, err)
	keys, err := s.Keys(ctx)
	must(t, err)
	if len(ws) != 0 || len(keys) != 0 {
		t.Fatalf("after rejected puts: found %d workers and %d keys, want none", len(ws), len(keys))
	}
}

func testUpsertKeepsEarlierKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := fullWorker("w-1")
	k1 := key(1, "w-1", w.ExpiresAt)
	must(t, s.PutWorker(ctx, w, []store.Key{k1}))
	// Re-registration: everything changes, a new key; the old key stays.
	w2 := w
	w2.URL, w2.Bundle, w2.BundleHash = "https://w-1.example:9443", []byte("bundle 2"), sha256.Sum256([]byte("bundle 2"))
	w2.Tasks, w2.Models, w2.Region, w2.Capacity = []string{"embed"}, nil, "us-east", 9
	w2.Endorsement, w2.TLSPin, w2.ProviderID, w2.Kind = nil, nil, "prov-2", "snp"
	w2.AdmittedAt, w2.ExpiresAt, w2.AttestedAt, w2.UpdatedAt = t0.Add(10*time.Minute), t0.Add(25*time.Minute), t0.Add(10*time.Minute), t0.Add(10*time.Minute)
	k2 := key(2, "w-1", w2.ExpiresAt)
	must(t, s.PutWorker(ctx, w2, []store.Key{k2}))
	got, err := s.Worker(ctx, "w-1")
	must(t, err)
	checkEqual(t, "worker after upsert", got, w2)
	keys, err := s.Keys(ctx)
	must(t, err)
	checkEqual(t, "keys after upsert", keys, []store.Key{k1, k2})
	// The same key again, with a later expiry: updated in place.
	k2.ExpiresAt = t0.Add(time.Hour)
	must(t, s.PutWorker(ctx, w2, []store.Key{k2}))
	keys, err = s.Keys(ctx)
	must(t, err)
	checkEqual(t, "keys after re-putting a key", keys, []store.Key{k1, k2})
}

func testKeyMovesToNewWorker(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		must(t, s.PutWorker(ctx, minimalWorker(id), []store.Key{key(9, id, t0)}))
	}
	keys, err := s.Keys(ctx)
	must(t, err)
	checkEqual(t, "keys", keys, []store.Key{key(9, "b", t0)})
}

func testKeysOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Put in an order that is none of the sort keys.
	must(t, s.PutWorker(ctx, minimalWorker("b"), []store.Key{key(1, "b", t0)}))
	must(t, s.PutWorker(ctx, minimalWorker("a"), []store.Key{
		key(5, "a", t0.Add(time.Minute)), key(4, "a", t0), key(3, "a", t0.Add(time.Minute)),
	}))
	keys, err := s.Keys(ctx)
	must(t, err)
	checkEqual(t, "keys ordered by worker, expiry and id", keys, []store.Key{
		key(4, "a", t0), key(3, "a", t0.Add(time.Minute)), key(5, "a", t0.Add(time.Minute)), key(1, "b", t0),
	})
}

func testPruneKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	kNow, kLater, kHour := key(1, "w", t0), key(2, "w", t0.Add(time.Millisecond)), key(3, "w", t0.Add(time.Hour))
	must(t, s.PutWorker(ctx, minimalWorker("w"), []store.Key{kNow, kLater, kHour}))
	for _, step := range []struct {
		now  time.Time
		n    int64
		left []store.Key
	}{
		{t0.Add(-time.Millisecond), 0, []store.Key{kNow, kLater, kHour}},
		{t0, 1, []store.Key{kLater, kHour}}, // expired at now counts
		{t0, 0, []store.Key{kLater, kHour}},
		{t0.Add(time.Hour), 2, nil},
	} {
		n, err := s.PruneKeys(ctx, step.now)
		must(t, err)
		if n != step.n {
			t.Fatalf("PruneKeys(%v): found %d deleted, want %d", step.now, n, step.n)
		}
		keys, err := s.Keys(ctx)
		must(t, err)
		checkEqual(t, fmt.Sprintf("keys after PruneKeys(%v)", step.now), keys, step.left)
	}
	// The worker stays: pruning touches keys only.
	if _, err := s.Worker(ctx, "w"); err != nil {
		t.Fatalf("worker after pruning all its keys: %v, want it kept", err)
	}
}

func testWorkerState(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := fullWorker("w")
	must(t, s.PutWorker(ctx, w, nil))
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)

	must(t, s.SetWorkerState(ctx, "w", store.StateDraining, t1))
	got, err := s.Worker(ctx, "w")
	must(t, err)
	want := w
	want.State, want.DrainedAt, want.UpdatedAt = store.StateDraining, t1, t1
	checkEqual(t, "worker after draining", got, want)

	must(t, s.SetWorkerState(ctx, "w", store.StateActive, t2))
	got, err = s.Worker(ctx, "w")
	must(t, err)
	want.State, want.DrainedAt, want.UpdatedAt = store.StateActive, time.Time{}, t2
	checkEqual(t, "worker after reactivating", got, want)

	checkErr(t, "SetWorkerState paused", s.SetWorkerState(ctx, "w", "paused", t2), nil, `state: found "paused"`)
	checkErr(t, "SetWorkerState at the zero time", s.SetWorkerState(ctx, "w", store.StateDraining, time.Time{}), nil, "at: found the zero time")
	got, err = s.Worker(ctx, "w")
	must(t, err)
	checkEqual(t, "worker after rejected state changes", got, want)
}

func testDeleteWorker(t *testing.T, s store.Store) {
	ctx := t.Context()
	t1 := t0.Add(time.Hour)
	ka, kb := key(1, "a", t0), key(2, "b", t0)
	must(t, s.PutWorker(ctx, minimalWorker("a"), []store.Key{ka}))
	must(t, s.PutWorker(ctx, minimalWorker("b"), []store.Key{kb}))

	existed, err := s.DeleteWorker(ctx, "a", t1)
	must(t, err)
	if !existed {
		t.Fatal("DeleteWorker of a stored worker: found existed=false, want true")
	}
	_, err = s.Worker(ctx, "a")
	checkErr(t, "Worker after delete", err, store.ErrNotFound)
	keys, err := s.Keys(ctx)
	must(t, err)
	checkEqual(t, "keys after deleting a", keys, []store.Key{kb})
	ws, err := s.Workers(ctx)
	must(t, err)
	if len(ws) != 1 || ws[0].ID != "b" {
		t.Fatalf("workers after deleting a: found %+v, want only b", ws)
	}

	for _, tc := range []struct {
		since time.Time
		want  []string
	}{
		{time.Time{}, []string{"a"}},
		{t1.Add(-time.Millisecond), []string{"a"}},
		{t1, nil}, // strictly after
	} {
		del, err := s.DeletedWorkersSince(ctx, tc.since)
		must(t, err)
		checkEqual(t, fmt.Sprintf("DeletedWorkersSince(%v)", tc.since), del, tc.want)
	}

	// Absent workers: no error, no tombstone.
	existed, err = s.DeleteWorker(ctx, "a", t1.Add(time.Hour))
	must(t, err)
	if existed {
		t.Fatal("second DeleteWorker of a: found existed=true, want false")
	}
	existed, err = s.DeleteWorker(ctx, "never", t1)
	must(t, err)
	if existed {
		t.Fatal("DeleteWorker of a never-stored id: found existed=true, want false")
	}
	del, err := s.DeletedWorkersSince(ctx, time.Time{})
	must(t, err)
	checkEqual(t, "tombstones after deleting absent workers", del, []string{"a"})
	del, err = s.DeletedWorkersSince(ctx, t1)
	must(t, err)
	checkEqual(t, "tombstones after t1 (the second delete found nothing to date)", del, []string(nil))

	checkErr(t, "DeleteWorker at the zero time", func() error { _, err := s.DeleteWorker(ctx, "b", time.Time{}); return err }(),
		nil, "at: found the zero time")
	if _, err := s.Worker(ctx, "b"); err != nil {
		t.Fatalf("worker b after a rejected delete: %v", err)
	}

	// Re-enrolling clears the tombstone: an id is a worker or a tombstone.
	must(t, s.PutWorker(ctx, minimalWorker("a"), nil))
	del, err = s.DeletedWorkersSince(ctx, time.Time{})
	must(t, err)
	checkEqual(t, "tombstones after a re-enrolled", del, []string(nil))
}

func testWorkersUpdatedSince(t *testing.T, s store.Store) {
	ctx := t.Context()
	var all []store.Worker
	for i, id := range []string{"w0", "w1", "w2"} {
		w := minimalWorker(id)
		w.UpdatedAt = t0.Add(time.Duration(i) * time.Second)
		must(t, s.PutWorker(ctx, w, nil))
		all = append(all, w)
	}
	for _, tc := range []struct {
		since time.Time
		want  []store.Worker
	}{
		{time.Time{}, all},
		{t0.Add(-time.Millisecond), all},
		{t0, all[1:]}, // strictly after
		{t0.Add(time.Second - time.Millisecond), all[1:]},
		{t0.Add(2 * time.Second), nil},
	} {
		got, err := s.WorkersUpdatedSince(ctx, tc.since)
		must(t, err)
		checkEqual(t, fmt.Sprintf("WorkersUpdatedSince(%v)", tc.since), got, tc.want)
	}
	// A state change is an update.
	must(t, s.SetWorkerState(ctx, "w0", store.StateDraining, t0.Add(time.Minute)))
	got, err := s.WorkersUpdatedSince(ctx, t0.Add(2*time.Second))
	must(t, err)
	if len(got) != 1 || got[0].ID != "w0" || got[0].State != store.StateDraining {
		t.Fatalf("WorkersUpdatedSince after draining w0: found %+v, want w0 draining", got)
	}
}

// Listings are in byte order on every backend, whatever a database's
// locale would say.
func testByteOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids := []string{"b", "ab", "B", "a-b", "a", "é", "Z"}
	want := slices.Sorted(slices.Values(ids)) // B Z a a-b ab b é
	for i, id := range ids {
		must(t, s.PutWorker(ctx, minimalWorker(id), nil))
		must(t, s.CreateTenant(ctx, tenant(id, byte(i))))
		must(t, s.CreatePool(ctx, store.Pool{ID: id, TenantID: id, Name: "p", CreatedAt: t0}))
	}
	must(t, s.SetPoolWorkers(ctx, "a", ids))
	ws, err := s.Workers(ctx)
	must(t, err)
	var got []string
	for _, w := range ws {
		got = append(got, w.ID)
	}
	checkEqual(t, "worker ids", got, want)
	ts, err := s.Tenants(ctx)
	must(t, err)
	got = nil
	for _, tn := range ts {
		got = append(got, tn.ID)
	}
	checkEqual(t, "tenant ids", got, want)
	pools, err := s.Pools(ctx)
	must(t, err)
	got = nil
	for _, p := range pools {
		got = append(got, p.ID)
	}
	checkEqual(t, "pool ids", got, want)
	checkEqual(t, "workers of pool a", pools[slices.Index(want, "a")].Workers, want)
}

// Providers.

func testProviders(t *testing.T, s store.Store) {
	ctx := t.Context()
	p2, p1 := provider("p-2", 2), provider("p-1", 1)
	p1.SigningKey = nil
	must(t, s.CreateProvider(ctx, p2))
	must(t, s.CreateProvider(ctx, p1))

	got, err := s.Provider(ctx, "p-2")
	must(t, err)
	checkEqual(t, "provider p-2", got, p2)
	got, err = s.ProviderByKeyHash(ctx, hash(1))
	must(t, err)
	checkEqual(t, "provider by key hash 1", got, p1)
	all, err := s.Providers(ctx)
	must(t, err)
	checkEqual(t, "providers", all, []store.Provider{p1, p2})

	dupID := provider("p-1", 3)
	checkErr(t, "CreateProvider with a taken id", s.CreateProvider(ctx, dupID), store.ErrExists, `"p-1"`)
	dupHash := provider("p-3", 2)
	checkErr(t, "CreateProvider with a taken key hash", s.CreateProvider(ctx, dupHash), store.ErrExists, `"p-3"`)
	_, err = s.Provider(ctx, "p-3")
	checkErr(t, "Provider p-3 after its rejected create", err, store.ErrNotFound, `"p-3"`)
	_, err = s.ProviderByKeyHash(ctx, hash(3))
	checkErr(t, "ProviderByKeyHash of an unknown hash", err, store.ErrNotFound)

	for _, tc := range []struct {
		name    string
		edit    func(*store.Provider)
		wantErr string
	}{
		{"no id", func(p *store.Provider) { p.ID = "" }, `id: found ""`},
		{"no name", func(p *store.Provider) { p.Name = "" }, `name: found ""`},
		{"zero key hash", func(p *store.Provider) { p.KeyHash = [32]byte{} }, "key hash: found all zero bytes"},
		{"short signing key", func(p *store.Provider) { p.SigningKey = make([]byte, 31) }, "signing key: found 31 bytes, want 32"},
		{"no created at", func(p *store.Provider) { p.CreatedAt = time.Time{} }, "created at: found the zero time"},
	} {
		p := provider("p-new", 9)
		tc.edit(&p)
		checkErr(t, "CreateProvider with "+tc.name, s.CreateProvider(ctx, p), nil, tc.wantErr)
	}
	all, err = s.Providers(ctx)
	must(t, err)
	checkEqual(t, "providers after rejected creates", all, []store.Provider{p1, p2})
}

func testProviderKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	p1, p2 := provider("p-1", 1), provider("p-2", 2)
	must(t, s.CreateProvider(ctx, p1))
	must(t, s.CreateProvider(ctx, p2))

	must(t, s.SetProviderKeyHash(ctx, "p-1", hash(7)))
	got, err := s.ProviderByKeyHash(ctx, hash(7))
	must(t, err)
	if got.ID != "p-1" {
		t.Fatalf("provider of the new key hash: found %q, want p-1", got.ID)
	}
	_, err = s.ProviderByKeyHash(ctx, hash(1))
	checkErr(t, "ProviderByKeyHash of the replaced hash", err, store.ErrNotFound)
	checkErr(t, "SetProviderKeyHash to p-2's hash", s.SetProviderKeyHash(ctx, "p-1", hash(2)), store.ErrExists, `"p-1"`)
	checkErr(t, "SetProviderKeyHash of an absent provider", s.SetProviderKeyHash(ctx, "absent", hash(8)), store.ErrNotFound, `"absent"`)
	checkErr(t, "SetProviderKeyHash to zero", s.SetProviderKeyHash(ctx, "p-1", [32]byte{}), nil, "key hash: found all zero bytes")

	pub := bytes.Repeat([]byte{0x42}, 32)
	must(t, s.SetProviderSigningKey(ctx, "p-1", pub))
	got, err = s.Provider(ctx, "p-1")
	must(t, err)
	want := p1
	want.KeyHash, want.SigningKey = hash(7), pub
	checkEqual(t, "provider after new key hash and signing key", got, want)
	must(t, s.SetProviderSigningKey(ctx, "p-1", nil))
	got, err = s.Provider(ctx, "p-1")
	must(t, err)
	want.SigningKey = nil
	checkEqual(t, "provider after removing its signing key", got, want)
	checkErr(t, "SetProviderSigningKey of 33 bytes", s.SetProviderSigningKey(ctx, "p-1", make([]byte, 33)), nil, "signing key: found 33 bytes")
	checkErr(t, "SetProviderSigningKey of an absent provider", s.SetProviderSigningKey(ctx, "absent", pub), store.ErrNotFound, `"absent"`)
	got, err = s.Provider(ctx, "p-2")
	must(t, err)
	checkEqual(t, "provider p-2, untouched", got, p2)
}

// Tenants.

func testTenants(t *testing.T, s store.Store) {
	ctx := t.Context()
	t2, t1 := tenant("t-2", 2), tenant("t-1", 1)
	t1.RequestsPerSecond, t1.BurstRequests, t1.BytesPerSecond, t1.BurstBytes = 0, 0, 0, 0
	must(t, s.CreateTenant(ctx, t2))
	must(t, s.CreateTenant(ctx, t1))
	got, err := s.Tenant(ctx, "t-2")
	must(t, err)
	checkEqual(t, "tenant t-2", got, t2)
	got, err = s.TenantByKeyHash(ctx, hash(1))
	must(t, err)
	checkEqual(t, "tenant by key hash 1", got, t1)
	all, err := s.Tenants(ctx)
	must(t, err)
	checkEqual(t, "tenants", all, []store.Tenant{t1, t2})

	checkErr(t, "CreateTenant with a taken id", s.CreateTenant(ctx, tenant("t-1", 3)), store.ErrExists, `"t-1"`)
	checkErr(t, "CreateTenant with a taken key hash", s.CreateTenant(ctx, tenant("t-3", 2)), store.ErrExists, `"t-3"`)
	_, err = s.Tenant(ctx, "t-3")
	checkErr(t, "Tenant t-3 after its rejected create", err, store.ErrNotFound, `"t-3"`)
	_, err = s.TenantByKeyHash(ctx, hash(3))
	checkErr(t, "TenantByKeyHash of an unknown hash", err, store.ErrNotFound)

	for _, tc := range []struct {
		name    string
		edit    func(*store.Tenant)
		wantErr string
	}{
		{"no id", func(x *store.Tenant) { x.ID = "" }, `id: found ""`},
		{"no name", func(x *store.Tenant) { x.Name = "" }, `name: found ""`},
		{"zero key hash", func(x *store.Tenant) { x.KeyHash = [32]byte{} }, "key hash: found all zero bytes"},
		{"NaN rps", func(x *store.Tenant) { x.RequestsPerSecond = math.NaN() }, "requests per second: found NaN"},
		{"infinite rps", func(x *store.Tenant) { x.RequestsPerSecond = math.Inf(1) }, "requests per second: found +Inf"},
		{"negative rps", func(x *store.Tenant) { x.RequestsPerSecond = -1 }, "requests per second: found -1"},
		{"negative burst", func(x *store.Tenant) { x.BurstRequests = -1 }, "burst requests: found -1"},
		{"negative bps", func(x *store.Tenant) { x.BytesPerSecond = -1 }, "bytes per second: found -1"},
		{"negative burst bytes", func(x *store.Tenant) { x.BurstBytes = -1 }, "burst bytes: found -1"},
		{"no created at", func(x *store.Tenant) { x.CreatedAt = time.Time{} }, "created at: found the zero time"},
	} {
		x := tenant("t-new", 9)
		tc.edit(&x)
		checkErr(t, "CreateTenant with "+tc.name, s.CreateTenant(ctx, x), nil, tc.wantErr)
	}
	all, err = s.Tenants(ctx)
	must(t, err)
	checkEqual(t, "tenants after rejected creates", all, []store.Tenant{t1, t2})
}

func testTenantKeysAndLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	t1, t2 := tenant("t-1", 1), tenant("t-2", 2)
	must(t, s.CreateTenant(ctx, t1))
	must(t, s.CreateTenant(ctx, t2))

	must(t, s.SetTenantKeyHash(ctx, "t-1", hash(7)))
	got, err := s.TenantByKeyHash(ctx, hash(7))
	must(t, err)
	if got.ID != "t-1" {
		t.Fatalf("tenant of the new key hash: found %q, want t-1", got.ID)
	}
	_, err = s.TenantByKeyHash(ctx, hash(1))
	checkErr(t, "TenantByKeyHash of the replaced hash", err, store.ErrNotFound)
	checkErr(t, "SetTenantKeyHash to t-2's hash", s.SetTenantKeyHash(ctx, "t-1", hash(2)), store.ErrExists, `"t-1"`)
	checkErr(t, "SetTenantKeyHash of an absent tenant", s.SetTenantKeyHash(ctx, "absent", hash(8)), store.ErrNotFound, `"absent"`)
	checkErr(t, "SetTenantKeyHash to zero", s.SetTenantKeyHash(ctx, "t-1", [32]byte{}), nil, "key hash: found all zero bytes")

	must(t, s.SetTenantLimits(ctx, "t-1", 0.125, 3, 12345, 67890))
	got, err = s.Tenant(ctx, "t-1")
	must(t, err)
	want := t1
	want.KeyHash, want.RequestsPerSecond, want.BurstRequests, want.BytesPerSecond, want.BurstBytes = hash(7), 0.125, 3, 12345, 67890
	checkEqual(t, "tenant after new key hash and limits", got, want)
	checkErr(t, "SetTenantLimits with negative burst bytes", s.SetTenantLimits(ctx, "t-1", 1, 1, 1, -5), nil, "burst bytes: found -5")
	checkErr(t, "SetTenantLimits with NaN", s.SetTenantLimits(ctx, "t-1", math.NaN(), 1, 1, 1), nil, "requests per second: found NaN")
	checkErr(t, "SetTenantLimits of an absent tenant", s.SetTenantLimits(ctx, "absent", 1, 1, 1, 1), store.ErrNotFound, `"absent"`)
	got, err = s.Tenant(ctx, "t-1")
	must(t, err)
	checkEqual(t, "tenant after rejected limits", got, want)
	got, err = s.Tenant(ctx, "t-2")
	must(t, err)
	checkEqual(t, "tenant t-2, untouched", got, t2)
}

// Pools.

func testPools(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateTenant(ctx, tenant("t-1", 1)))
	must(t, s.CreateTenant(ctx, tenant("t-2", 2)))
	empty := store.Pool{ID: "pool-b", TenantID: "t-1", Name: "batch", Slots: 0, Lend: false, CreatedAt: t0}
	withWorkers := store.Pool{ID: "pool-a", TenantID: "t-1", Name: "interactive", Workers: []string{"n3", "n1", "n2"},
		Slots: 5, Lend: true, CreatedAt: t0.Add(time.Second)}
	must(t, s.CreatePool(ctx, empty))
	must(t, s.CreatePool(ctx, withWorkers))
	pools, err := s.Pools(ctx)
	must(t, err)
	wantA := withWorkers
	wantA.Workers = []string{"n1", "n2", "n3"} // sorted
	checkEqual(t, "pools", pools, []store.Pool{wantA, empty})

	// The same name in another tenant is fine; in the same tenant it is not.
	other := store.Pool{ID: "pool-c", TenantID: "t-2", Name: "batch", CreatedAt: t0}
	must(t, s.CreatePool(ctx, other))
	checkErr(t, "CreatePool with a taken id", s.CreatePool(ctx, store.Pool{ID: "pool-a", TenantID: "t-2", Name: "x", CreatedAt: t0}),
		store.ErrExists, `"pool-a"`)
	checkErr(t, "CreatePool with a taken name", s.CreatePool(ctx, store.Pool{ID: "pool-d", TenantID: "t-1", Name: "batch", CreatedAt: t0}),
		store.ErrExists, `"pool-d"`, `"batch"`)
	checkErr(t, "CreatePool for an absent tenant", s.CreatePool(ctx, store.Pool{ID: "pool-e", TenantID: "absent", Name: "x", CreatedAt: t0}),
		store.ErrNotFound, `"pool-e"`, `tenant "absent"`)
	for _, tc := range []struct {
		name    string
		edit    func(*store.Pool)
		wantErr string
	}{
		{"no id", func(p *store.Pool) { p.ID = "" }, `id: found ""`},
		{"no tenant", func(p *store.Pool) { p.TenantID = "" }, `tenant id: found ""`},
		{"no name", func(p *store.Pool) { p.Name = "" }, `name: found ""`},
		{"negative slots", func(p *store.Pool) { p.Slots = -1 }, "slots: found -1"},
		{"no created at", func(p *store.Pool) { p.CreatedAt = time.Time{} }, "created at: found the zero time"},
		{"empty worker id", func(p *store.Pool) { p.Workers = []string{"n9", ""} }, `workers[1]: found ""`},
		{"repeated worker", func(p *store.Pool) { p.Workers = []string{"n8", "n9", "n8"} }, `workers[2]: found "n8", already at workers[0]`},
	} {
		p := store.Pool{ID: "pool-new", TenantID: "t-2", Name: "new", CreatedAt: t0}
		tc.edit(&p)
		checkErr(t, "CreatePool with "+tc.name, s.CreatePool(ctx, p), nil, tc.wantErr)
	}
	pools, err = s.Pools(ctx)
	must(t, err)
	checkEqual(t, "pools after rejected creates", pools, []store.Pool{wantA, empty, other})

	must(t, s.DeletePool(ctx, "pool-a"))
	checkErr(t, "DeletePool again", s.DeletePool(ctx, "pool-a"), store.ErrNotFound, `"pool-a"`)
	pools, err = s.Pools(ctx)
	must(t, err)
	checkEqual(t, "pools after deleting pool-a", pools, []store.Pool{empty, other})
	// Its reservations went with it.
	must(t, s.SetPoolWorkers(ctx, "pool-b", []string{"n1"}))
}

func testPoolReservations(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateTenant(ctx, tenant("t-1", 1)))
	a := store.Pool{ID: "a", TenantID: "t-1", Name: "a", Workers: []string{"n1", "n2"}, Slots: 1, CreatedAt: t0}
	b := store.Pool{ID: "b", TenantID: "t-1", Name: "b", CreatedAt: t0}
	must(t, s.CreatePool(ctx, a))
	must(t, s.CreatePool(ctx, b))

	// A node is reserved by one pool at most.
	err := s.CreatePool(ctx, store.Pool{ID: "c", TenantID: "t-1", Name: "c", Workers: []string{"n9", "n2"}, CreatedAt: t0})
	checkErr(t, "CreatePool reserving a node of pool a", err, store.ErrExists, `"c"`, `worker "n2"`, `pool "a"`)
	checkErr(t, "SetPoolWorkers reserving a node of pool a", s.SetPoolWorkers(ctx, "b", []string{"n0", "n1"}),
		store.ErrExists, `"b"`, `worker "n1"`, `pool "a"`)
	pools, err := s.Pools(ctx)
	must(t, err)
	checkEqual(t, "pools after rejected reservations (no pool c, b unchanged)", pools, []store.Pool{a, b})

	// Replace, reorder, clear. Reserved nodes need not be enrolled workers.
	must(t, s.SetPoolWorkers(ctx, "a", []string{"n4", "n2", "n3"}))
	must(t, s.SetPoolWorkers(ctx, "b", []string{"n1"})) // released by a
	pools, err = s.Pools(ctx)
	must(t, err)
	wantA, wantB := a, b
	wantA.Workers, wantB.Workers = []string{"n2", "n3", "n4"}, []string{"n1"}
	checkEqual(t, "pools after SetPoolWorkers", pools, []store.Pool{wantA, wantB})
	must(t, s.SetPoolWorkers(ctx, "a", nil))
	pools, err = s.Pools(ctx)
	must(t, err)
	wantA.Workers = nil
	checkEqual(t, "pools after clearing a", pools, []store.Pool{wantA, wantB})

	checkErr(t, "SetPoolWorkers of an absent pool", s.SetPoolWorkers(ctx, "absent", []string{"n7"}), store.ErrNotFound, `"absent"`)
	checkErr(t, "SetPoolWorkers with a repeat", s.SetPoolWorkers(ctx, "a", []string{"n7", "n7"}), nil, `workers[1]: found "n7", already at workers[0]`)
	pools, err = s.Pools(ctx)
	must(t, err)
	checkEqual(t, "pools after rejected SetPoolWorkers", pools, []store.Pool{wantA, wantB})
	checkErr(t, "DeletePool of an absent pool", s.DeletePool(ctx, "absent"), store.ErrNotFound, `"absent"`)
}

// Concurrency.

func testConcurrentPutWorker(t *testing.T, s store.Store) {
	ctx := t.Context()
	const goroutines, rounds = 8, 10
	// Each put writes the shared worker with fields that all derive from
	// one tag, its own worker, and one key for each.
	put := func(g, i int) error {
		tag := fmt.Sprintf("g%d-i%d", g, i)
		shared := minimalWorker("shared")
		shared.URL, shared.Region, shared.Bundle = "https://"+tag, tag, []byte(tag)
		shared.BundleHash, shared.Capacity = sha256.Sum256([]byte(tag)), 100*g+i+1
		own := minimalWorker(fmt.Sprintf("own-%d", g))
		own.Capacity = i + 1
		if err := s.PutWorker(ctx, shared, []store.Key{key(0, "shared", t0), concurrentKey(0xAA, g, i, "shared")}); err != nil {
			return err
		}
		return s.PutWorker(ctx, own, []store.Key{concurrentKey(0xBB, g, i, own.ID)})
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards errs
		errs []error
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				if err := put(g, i); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("goroutine %d round %d: %w", g, i, err))
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	ws, err := s.Workers(ctx)
	must(t, err)
	if len(ws) != goroutines+1 {
		t.Fatalf("workers: found %d, want %d", len(ws), goroutines+1)
	}
	for g := range goroutines {
		if w := ws[g]; w.ID != fmt.Sprintf("own-%d", g) || w.Capacity != rounds {
			t.Fatalf("worker own-%d: found id %q capacity %d, want its last round's capacity %d", g, w.ID, w.Capacity, rounds)
		}
	}
	shared := ws[goroutines]
	tag := shared.Region
	var g, i int
	if _, err := fmt.Sscanf(tag, "g%d-i%d", &g, &i); err != nil {
		t.Fatalf("shared worker region: found %q, want a put's tag", tag)
	}
	if shared.URL != "https://"+tag || string(shared.Bundle) != tag || shared.BundleHash != sha256.Sum256([]byte(tag)) || shared.Capacity != 100*g+i+1 {
		t.Fatalf("shared worker mixes puts: found %+v, want every field from put %s", shared, tag)
	}
	keys, err := s.Keys(ctx)
	must(t, err)
	count := map[string]int{}
	for _, k := range keys {
		count[k.WorkerID]++
	}
	if count["shared"] != goroutines*rounds+1 {
		t.Fatalf("keys of the shared worker: found %d, want %d", count["shared"], goroutines*rounds+1)
	}
	for g := range goroutines {
		if id := fmt.Sprintf("own-%d", g); count[id] != rounds {
			t.Fatalf("keys of %s: found %d, want %d", id, count[id], rounds)
		}
	}
}

func concurrentKey(tag byte, g, i int, worker string) store.Key {
	k := key(tag, worker, t0.Add(time.Hour))
	k.ID[1], k.ID[2] = byte(g), byte(i)
	return k
}

func testPingAndClose(t *testing.T, s store.Store) {
	must(t, s.Ping(t.Context()))
	must(t, s.Close())
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: found %v, want nil", err)
	}
}
