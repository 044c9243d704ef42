package store

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prober-dev/prober/internal/result"
)

func run(flow string, i int) *result.Run { return &result.Run{Flow: flow, ID: fmt.Sprint(i)} }

func ids(rs []*result.Run) string {
	s := ""
	for _, r := range rs {
		s += r.ID
	}
	return s
}

func TestRing(t *testing.T) {
	tests := []struct {
		keep, add, n int
		want         string
	}{
		{3, 0, 0, ""},
		{3, 2, 0, "10"},
		{3, 3, 0, "210"},
		{3, 5, 0, "432"},
		{3, 7, 2, "65"},
		{3, 7, 10, "654"},
		{1, 4, 0, "3"},
		{5, 9, 1, "8"},
	}
	for _, tt := range tests {
		s := New(tt.keep)
		for i := 0; i < tt.add; i++ {
			s.Observe(run("f", i))
		}
		if got := ids(s.Recent("f", tt.n)); got != tt.want {
			t.Errorf("keep %d add %d n %d: %q, want %q", tt.keep, tt.add, tt.n, got, tt.want)
		}
	}
}

func TestLatestFlowsRetain(t *testing.T) {
	s := New(4)
	if s.Latest("a") != nil || s.Recent("a", 1) != nil {
		t.Fatal("empty store returned runs")
	}
	for i := 0; i < 6; i++ {
		s.Observe(run("a", i))
		s.Observe(run("b", i))
	}
	if s.Latest("a").ID != "5" {
		t.Fatal(s.Latest("a").ID)
	}
	if fmt.Sprint(s.Flows()) != "[a b]" {
		t.Fatal(s.Flows())
	}
	s.Retain([]string{"a"}, 2) // shrink: keep the newest two
	if fmt.Sprint(s.Flows()) != "[a]" || ids(s.Recent("a", 0)) != "54" {
		t.Fatalf("after shrink: %v %q", s.Flows(), ids(s.Recent("a", 0)))
	}
	s.Observe(run("a", 6))
	if got := ids(s.Recent("a", 0)); got != "65" {
		t.Fatalf("after shrink and add: %q", got)
	}
	s.Retain([]string{"a"}, 3) // grow: keeps order, fills up
	s.Observe(run("a", 7))
	s.Observe(run("a", 8))
	if got := ids(s.Recent("a", 0)); got != "876" {
		t.Fatalf("after grow: %q", got)
	}
}

func TestConcurrent(t *testing.T) {
	s := New(10)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				s.Observe(run(fmt.Sprint("f", g%2), i))
				_ = s.Recent("f0", 5)
				_ = s.Flows()
			}
		}()
	}
	wg.Wait()
	if len(s.Recent("f0", 0)) != 10 {
		t.Fatal("bound not kept")
	}
}
