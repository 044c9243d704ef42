package daemon

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/schedule"
)

// CheckShard says whether s and role go together: sharding splits the flows between probers whose results meet
// in Prometheus, where one evaluator reads them all. A sharded prober that
// evaluated rules itself would see only its own flows' results.
func CheckShard(s schedule.Shard, role Role) error {
	if s.Count > 1 && role != RoleProbe {
		return fmt.Errorf("--shard %s needs --role probe: shards export their own flows' series to one Prometheus, where a --role evaluate prober reads them all", s)
	}
	return nil
}

// ownFlows is cfg with only the flows this shard runs: it schedules them,
// exports their series and lists them on its status page. The others are
// another shard's. Without sharding it is cfg.
func (d *Daemon) ownFlows(cfg *config.Config) *config.Config {
	if d.opts.Shard.Count <= 1 {
		return cfg
	}
	own := *cfg
	own.Flows = make([]*config.Flow, 0, len(cfg.Flows)/d.opts.Shard.Count+1)
	for _, f := range cfg.Flows {
		if d.opts.Shard.Owns(f.Name) {
			own.Flows = append(own.Flows, f)
		}
	}
	d.log.Info("shard", "shard", d.opts.Shard.String(), "flows", len(own.Flows), "of", len(cfg.Flows))
	return &own
}

// registerBehind exports whether the scheduler is behind: 1 while runs are
// being skipped (one in the last minute). One series, whatever the flows:
// which flows skip is prober_runs_skipped_total{flow}.
func (d *Daemon) registerBehind(cfg *config.Config) {
	d.regionReg(cfg).MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "prober_schedule_behind",
		Help: "1 while the prober is behind its schedule: a run was skipped in the last minute because the flow's previous run was still going (the flow is slower than its interval, or the prober is overloaded).",
	}, func() float64 {
		if _, behind := d.sched.Behind(time.Now()); behind {
			return 1
		}
		return 0
	}))
}

// behindNote is the scheduler's backlog for the pages' banner, "" while
// it keeps up.
func (d *Daemon) behindNote() string {
	if b, behind := d.sched.Behind(time.Now()); behind {
		return b.String()
	}
	return ""
}

// withBehind answers /readyz with 200 and "ready, behind: ..." while the
// scheduler skips runs: a prober that is behind still runs (and reports)
// what it can, and taking it out of service or restarting it would not
// make it catch up. Everything else, and not-ready, is the web handler's.
func (d *Daemon) withBehind(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			// Behind first: it is cheap, ready() walks every flow.
			if b, behind := d.sched.Behind(time.Now()); behind && d.ready() == nil {
				body := "ready, behind: " + b.String() + "\n"
				if note := d.reloadFailure(); note != "" {
					body = "ready, " + note + "; behind: " + b.String() + "\n"
				}
				h := w.Header()
				h.Set("Content-Type", "text/plain; charset=utf-8")
				h.Set("Content-Length", strconv.Itoa(len(body)))
				h.Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusOK)
				if r.Method == http.MethodGet {
					_, _ = w.Write([]byte(body))
				}
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Behind is the scheduler's backlog at now, as /readyz and the status page
// say it; its Total counts the runs skipped since start even while the
// prober keeps up (the load harness reads it without gathering every
// flow's series).
func (d *Daemon) Behind(now time.Time) (schedule.Backlog, bool) { return d.sched.Behind(now) }
