package schedule

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// BenchmarkSet10k: giving the scheduler 10,000 flows (start-up and every
// reload), then stopping it.
func BenchmarkSet10k(b *testing.B) {
	jobs := make([]Job, 10000)
	for i := range jobs {
		jobs[i] = Job{Name: fmt.Sprintf("flow-%05d", i), Schedule: config.Schedule{Every: time.Hour},
			Run: func(context.Context, time.Time) {}}
	}
	b.ReportAllocs()
	for b.Loop() {
		s := New(Options{})
		if err := s.Set(jobs); err != nil {
			b.Fatal(err)
		}
		if err := s.Set(jobs); err != nil { // a reload keeping every flow
			b.Fatal(err)
		}
		s.Stop(context.Background())
	}
}
