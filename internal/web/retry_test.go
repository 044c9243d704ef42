package web

import (
	"testing"

	"github.com/prober-dev/prober/internal/result"
)

// TestStepRetriesShown: a step its retry: tried again says so on the run
// page, told from until's polls (attempts alone).
func TestStepRetriesShown(t *testing.T) {
	s := &server{}
	var v runView
	s.addSteps(&v, &result.Run{Steps: []result.Step{
		{Name: "get", Status: result.Passed, Attempts: 3, Retries: 2},
		{Name: "one", Status: result.Failed, Attempts: 2, Retries: 1},
		{Name: "poll", Status: result.Passed, Attempts: 4},
	}})
	want := []string{"✓ passed (3 attempts, 2 retries)", "✗ failed (2 attempts, 1 retry)", "✓ passed (4 attempts)"}
	for i, w := range want {
		if got := v.Steps[i].StatusText; got != w {
			t.Errorf("step %d: %q, want %q", i, got, w)
		}
	}
}
