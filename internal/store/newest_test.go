package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// NewestFinal says what decoding the newest run says (passed when it is
// final; not ok when it is not final or there is none), for runs of every
// shape the encoding has: hex and raw ids, no start or planned time, a
// status outside the coded ones, retried or not; and allocates nothing.
func TestNewestFinalMatchesDecoding(t *testing.T) {
	s := New(10)
	if _, ok := s.NewestFinal("none"); ok {
		t.Fatal("a flow with no run: ok")
	}
	rng := rand.New(rand.NewPCG(7, 11))
	t0 := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	statuses := []result.Status{result.Passed, result.Failed, result.Status("weird")}
	for i := range 500 {
		r := &result.Run{Flow: "f", Region: "eu-west-1", Status: statuses[rng.IntN(len(statuses))],
			Retried: rng.IntN(3) == 0, Duration: time.Duration(rng.IntN(1e9)),
			Steps: []result.Step{{Name: "a", Status: result.Passed, URL: "http://x/a"}}}
		if rng.IntN(2) == 0 {
			r.ID, r.TraceID = fmt.Sprintf("%016x", rng.Uint64()), fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
		} else {
			r.ID, r.TraceID, r.RetryOf = fmt.Sprint("run-", i), "not hex", "x"
		}
		if rng.IntN(4) != 0 {
			r.Start = t0.Add(time.Duration(i) * time.Second)
		}
		if rng.IntN(4) != 0 {
			r.Planned = t0.Add(time.Duration(i) * time.Second)
		}
		s.Observe(r)
		newest := s.Recent("f", 1)[0]
		passed, ok := s.NewestFinal("f")
		if ok != newest.Final() || (ok && passed != newest.OK()) {
			t.Fatalf("run %d (status %q, retried %v): NewestFinal %v, %v; decoded: final %v, ok %v",
				i, r.Status, r.Retried, passed, ok, newest.Final(), newest.OK())
		}
	}
	if a := testing.AllocsPerRun(100, func() { s.NewestFinal("f") }); a != 0 {
		t.Errorf("NewestFinal allocates %.0f times, want 0", a)
	}
}

// An encoding cut before its status is not whole (the caller then decodes
// the run, which shows what it can).
func TestRunHeadMalformed(t *testing.T) {
	enc := appendRun(nil, &result.Run{ID: "0123456789abcdef", Status: result.Passed})
	// The head ends with the status: the first byte that differs from the
	// same run failed.
	other := appendRun(nil, &result.Run{ID: "0123456789abcdef", Status: result.Failed})
	head := 0
	for enc[head] == other[head] {
		head++
	}
	head++
	for n := range head {
		if _, _, whole := runHead(enc[:n]); whole {
			t.Errorf("runHead of %d of %d bytes (the head is %d): whole", n, len(enc), head)
		}
	}
	if _, passed, whole := runHead(enc[:head]); !whole || !passed {
		t.Errorf("runHead of the head: passed %v, whole %v", passed, whole)
	}
}
