package browserkind

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"testing/synctest"

	"github.com/prober-dev/prober/internal/config"
)

// TestBrowserConcurrencyYAML: probes.yaml's browser_concurrency reaches
// the kind at every load; a load without it gives the kind's own; a bad
// value is an error at its place.
func TestBrowserConcurrencyYAML(t *testing.T) {
	k := New(Options{})
	load := func(top string) error {
		fsys := fstest.MapFS{
			"probes.yaml":  {Data: []byte(top + "flows: [flows/f.yaml]\n")},
			"flows/f.yaml": {Data: []byte("name: f\nsteps:\n  - name: s\n    browser: {actions: [{goto: 'http://127.0.0.1:1/'}]}\n")},
		}
		_, err := config.Load(fsys, "probes.yaml", config.Options{StepKinds: []config.StepKind{k}})
		return err
	}
	for _, tc := range []struct {
		top  string
		want int
		err  string
	}{
		{"browser_concurrency: 5\n", 5, ""},
		{"", DefaultConcurrency, ""},
		{"browser_concurrency: 3\n", 3, ""},
		{"browser_concurrency: 0\n", 3, "probes.yaml:1:22: browser_concurrency"}, // an error changes nothing
		{"browser_concurrency: 65\n", 3, "browser_concurrency"},
	} {
		err := load(tc.top)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: error %v, want %q", tc.top, err, tc.err)
		}
		if got := k.b.slots.max(); got != tc.want {
			t.Errorf("%q: limit %d, want %d", tc.top, got, tc.want)
		}
	}
}

// TestSlots: at most the limit at once; a waiter gets a freed slot or
// gives up with its context; a raised limit lets waiters in at once, a
// lowered one admits none until enough are freed.
func TestSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s slots
		s.setLimit(2)
		ctx := t.Context()
		r1, _ := s.acquire(ctx)
		r2, _ := s.acquire(ctx)
		got := make(chan func(), 1)
		go func() {
			r, err := s.acquire(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- r
		}()
		synctest.Wait()
		if len(got) != 0 {
			t.Fatal("a third slot of 2")
		}
		s.setLimit(3)
		synctest.Wait()
		if len(got) != 1 {
			t.Fatal("a raised limit let no waiter in")
		}
		r3 := <-got

		s.setLimit(1) // 3 in use
		r1()
		r1() // twice frees once
		short, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := s.acquire(short)
			done <- err
		}()
		synctest.Wait()
		if len(done) != 0 {
			t.Fatal("a slot with 2 in use of 1")
		}
		cancel()
		if err := <-done; err == nil {
			t.Fatal("a canceled wait got a slot")
		}
		r2()
		r3()
		r, err := s.acquire(ctx)
		if err != nil || s.used != 1 {
			t.Fatalf("after all freed: %v, %d used", err, s.used)
		}
		r()
	})
}
