package runner

import (
	"strconv"

	"github.com/prober-dev/prober/internal/secret"
)

// scope is the variables of one run: captures, then built-ins, then the
// flow's configured vars (shared, read-only). It implements template.Scope.
type scope struct {
	vars map[string]string // the flow's, never written
	// captures are this run's, in the order first taken: a flow captures
	// a handful, so a slice searched from the start costs less than a map
	// (two allocations a run, and hashing at every lookup).
	captures []capture
	secrets  *secret.Set

	flow, region, runID, traceID string
	// idemKey is made at its first use: most flows never send one, and a
	// run has one value however often it is read.
	idemKey     string
	startUnixMS int64
}

type capture struct{ name, value string }

func (s *scope) Var(name string) (string, bool) {
	for i := range s.captures {
		if s.captures[i].name == name {
			return s.captures[i].value, true
		}
	}
	switch name {
	case "flow":
		return s.flow, true
	case "region":
		return s.region, true
	case "run_id":
		return s.runID, true
	case "idempotency_key":
		if s.idemKey == "" {
			s.idemKey = newUUID()
		}
		return s.idemKey, true
	case "trace_id":
		return s.traceID, true
	case "timestamp":
		return strconv.FormatInt(s.startUnixMS/1000, 10), true
	case "timestamp_ms":
		return strconv.FormatInt(s.startUnixMS, 10), true
	case "uuid":
		return newUUID(), true
	}
	v, ok := s.vars[name]
	return v, ok
}

func (s *scope) Secret(name string) (string, bool) { return s.secrets.Get(name) }

// capture sets name to value, a later capture of a name replacing the
// earlier one.
func (s *scope) capture(name, value string) {
	for i := range s.captures {
		if s.captures[i].name == name {
			s.captures[i].value = value
			return
		}
	}
	if s.captures == nil {
		s.captures = make([]capture, 0, 4)
	}
	s.captures = append(s.captures, capture{name, value})
}
