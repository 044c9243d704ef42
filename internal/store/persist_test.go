package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// historyStore is an hour of checkout runs once a minute in regions a and b,
// b's pay failing in the last 10 minutes.
func historyStore() *Store {
	st := New(10)
	for i := range 60 {
		start := at(time.Duration(i) * time.Minute)
		st.Observe(mkRun("a", start, true, "a"))
		st.Observe(mkRun("b", start, i < 50, "b"))
	}
	return st
}

type historyView struct {
	since          time.Time
	good, total    [3]int
	dgood, dtotal  int
	regions        []RegionCount
	depFlows, deps []string
}

func viewHistory(st *Store, end time.Time) historyView {
	var v historyView
	v.since = st.FlowHistorySince("checkout")
	for i, w := range []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour} {
		v.good[i], v.total[i] = st.FlowCounts("checkout", w, end)
	}
	v.dgood, v.dtotal = st.DependencyCounts("bank-gateway", 10*time.Minute, end)
	v.regions = st.DependencyRegionCounts("bank-gateway", 10*time.Minute, end)
	v.depFlows, v.deps = st.DependencyFlows("bank-gateway"), st.Dependencies()
	return v
}

func TestHistorySnapshotRoundTrip(t *testing.T) {
	st := historyStore()
	end := at(60 * time.Minute)
	want := viewHistory(st, end)
	if !want.since.Equal(t0) || want.total[2] != 120 || len(want.regions) != 2 || want.regions[1].Good != 0 {
		t.Fatalf("the fixture is not what the test assumes: %+v", want)
	}
	path := filepath.Join(t.TempDir(), "history")
	if err := st.SaveHistory(path, end); err != nil {
		t.Fatal(err)
	}
	fresh := New(10)
	if err := fresh.LoadHistory(path, end.Add(30*time.Second), 72*time.Hour); err != nil {
		t.Fatal(err)
	}
	got := viewHistory(fresh, end)
	if !got.since.Equal(want.since) || got.good != want.good || got.total != want.total || got.dgood != want.dgood ||
		got.dtotal != want.dtotal || !slices.Equal(got.regions, want.regions) || !slices.Equal(got.depFlows, want.depFlows) ||
		!slices.Equal(got.deps, want.deps) {
		t.Errorf("after a round trip\n%+v\nwant\n%+v", got, want)
	}
	// No temporary file is left beside the snapshot.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("files beside the snapshot: %v", ents)
	}
	// Runs after the load count on top of the loaded history.
	fresh.Observe(mkRun("a", end, true, "a"))
	if g, n := fresh.FlowCounts("checkout", time.Hour, end.Add(time.Minute)); n != 119 || g != 109 {
		t.Errorf("after one more run: %d of %d over 1h, want 109 of 119 (the first minute left the window)", g, n)
	}
}

// Buckets older than the longest window a rule reads are dropped at load; a
// flow whose whole history is older is not loaded at all.
func TestHistorySnapshotDropsOld(t *testing.T) {
	st := historyStore()
	b := st.AppendHistory(nil, at(time.Hour))
	fresh := New(10)
	// Loaded 40 minutes later keeping 1h: only the last 20 minutes of runs
	// (40..59) remain.
	if err := fresh.RestoreHistory(b, at(100*time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, n := fresh.FlowCounts("checkout", 3*time.Hour, at(100*time.Minute)); n != 40 {
		t.Errorf("kept %d runs, want the 40 of the last hour", n)
	}
	if got := fresh.FlowHistorySince("checkout"); !got.Equal(t0) {
		t.Errorf("history since %v, want %v: it began then", got, t0)
	}
	old := New(10)
	if err := old.RestoreHistory(b, at(5*time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	if f := old.Flows(); len(f) != 0 || !old.FlowHistorySince("checkout").IsZero() {
		t.Errorf("history older than the longest window loaded: %v", f)
	}
}

// A snapshot that cannot be read is one clear error and a store left fresh.
func TestHistorySnapshotCorrupt(t *testing.T) {
	good := historyStore().AppendHistory(nil, at(time.Hour))
	flip := slices.Clone(good)
	flip[len(flip)/2] ^= 0x40
	version := slices.Clone(good)
	version[len(historyMagic)] = 9
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "unreadable history snapshot: empty"},
		{"not a snapshot", []byte("{\"flows\": []}"), "unreadable history snapshot: not a history snapshot"},
		{"header only", good[:historyHeader-1], "unreadable history snapshot: not a history snapshot"},
		{"truncated", good[:len(good)-7], "unreadable history snapshot: truncated"},
		{"bit flipped", flip, "unreadable history snapshot: checksum mismatch"},
		{"other version", version, "unreadable history snapshot: version 9, this prober reads 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history")
			if err := os.WriteFile(path, tt.b, 0o600); err != nil {
				t.Fatal(err)
			}
			st := New(10)
			err := st.LoadHistory(path, at(time.Hour), 72*time.Hour)
			if !errors.Is(err, ErrBadHistory) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v, want one naming %s and saying %q", err, path, tt.want)
			}
			if len(st.Flows()) != 0 || len(st.Dependencies()) != 0 {
				t.Errorf("a bad snapshot loaded something: %v %v", st.Flows(), st.Dependencies())
			}
		})
	}
	err := New(1).LoadHistory(filepath.Join(t.TempDir(), "none"), at(0), time.Hour)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing snapshot: %v, want fs.ErrNotExist", err)
	}
}

func FuzzHistorySnapshot(f *testing.F) {
	f.Add(historyStore().AppendHistory(nil, at(time.Hour)))
	f.Add([]byte(historyMagic + "\x01\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st := New(10)
		if err := st.RestoreHistory(b, at(time.Hour), 72*time.Hour); err != nil {
			if !errors.Is(err, ErrBadHistory) {
				t.Fatalf("error %v does not wrap ErrBadHistory", err)
			}
			return
		}
		// Whatever was read is written and read again.
		again := st.AppendHistory(nil, at(time.Hour))
		if err := New(10).RestoreHistory(again, at(time.Hour), 72*time.Hour); err != nil {
			t.Fatalf("a snapshot of a loaded snapshot does not load: %v", err)
		}
		_ = viewHistory(st, at(time.Hour))
	})
}

// BenchmarkHistorySnapshot: a snapshot of 10,000 flows with an hour of
// runs each (what the daemon writes every minute), its size, and the save
// to a file (a chunk at a time under the read lock).
func BenchmarkHistorySnapshot(b *testing.B) {
	st := New(10)
	for i := range 10_000 {
		for m := range 60 {
			r := mkRun("a", at(time.Duration(m)*time.Minute), m != 30, "t")
			r.Flow = fmt.Sprintf("flow-%05d", i)
			st.Observe(r)
		}
	}
	b.Run("snapshot", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = st.AppendHistory(buf[:0], at(time.Hour))
		}
		b.ReportMetric(float64(len(buf)), "bytes")
	})
	b.Run("save", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "history")
		b.ReportAllocs()
		for b.Loop() {
			if err := st.SaveHistory(path, at(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// One minute's save of 10,000 flows' counts (one dependency called by
// every flow, in two regions) allocates a chunk's buffer and the
// dependency's list of callers, not the snapshot: it was 31 MB (the
// counters copied under the lock, then encoded into a slice grown by
// append), which at every save raised the collector's goal; now 240 KB.
// The file is the snapshot AppendHistory makes, and loads back allocating
// the file, the flows' state and little more: 12 MB for a 5 MB file (was
// 28: the file read into a buffer grown by doubling, bad cells made for
// every counter, two-byte cells narrowed afterwards).
func TestSaveHistoryAllocates(t *testing.T) {
	const flows = 10_000
	st := New(1)
	var r result.Run
	for i := range flows {
		for m := range 3 {
			loadRun(&r, fmt.Sprintf("load-%05d", i), nil, i, at(time.Duration(m)*time.Minute))
			if i%2 == 1 {
				r.Region = "other"
			}
			if m == 1 && i%100 == 0 {
				r.Status, r.Class, r.FailedStep = result.Failed, result.HTTP5xx, "pay"
				r.Steps[2].Status, r.Steps[2].Class = result.Failed, result.HTTP5xx
			}
			st.Observe(&r)
		}
	}
	st.Flows() // the sorted names, as the rules' every cycle leaves them
	path := filepath.Join(t.TempDir(), "history")
	now := at(3 * time.Minute)
	if err := st.SaveHistory(path, now); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := st.SaveHistory(path, now); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a save of %d flows: %d bytes written, %d allocated", flows, len(got), allocated)
	if allocated > 512<<10 && !raceEnabled {
		t.Errorf("a save allocated %d bytes, want at most 512 KiB", allocated)
	}
	if want := st.AppendHistory(nil, now); !slices.Equal(got, want) {
		t.Errorf("the file (%d bytes) is not AppendHistory's snapshot (%d bytes)", len(got), len(want))
	}
	back := New(1)
	runtime.ReadMemStats(&before)
	if err := back.LoadHistory(path, now, 72*time.Hour); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	loaded := after.TotalAlloc - before.TotalAlloc
	t.Logf("a load: %d bytes allocated", loaded)
	if loaded > 3*uint64(len(got)) && !raceEnabled {
		t.Errorf("a load of %d bytes allocated %d, want at most 3 times the file", len(got), loaded)
	}
	for _, f := range []string{"load-00000", "load-00001", "load-09999"} {
		g, n := back.FlowCounts(f, time.Hour, now)
		wg, wn := st.FlowCounts(f, time.Hour, now)
		if g != wg || n != wn || n != 3 {
			t.Errorf("%s: loaded %d/%d, saved %d/%d (want 3 runs)", f, g, n, wg, wn)
		}
	}
	if got, want := back.DependencyRegionCounts("bank-gateway", time.Hour, now), st.DependencyRegionCounts("bank-gateway", time.Hour, now); !slices.Equal(got, want) || len(got) != 2 {
		t.Errorf("dependency by region: loaded %v, saved %v", got, want)
	}
	if got := back.DependencyFlows("bank-gateway"); len(got) != flows {
		t.Errorf("loaded %d callers of bank-gateway, want %d", len(got), flows)
	}
}
