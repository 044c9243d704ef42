package runner

import (
	"strconv"

	"github.com/prober-dev/prober/internal/secret"
)

// scope is the variables of one run: captures, then built-ins, then the
// flow's configured vars (shared, read-only). It implements template.Scope.
type scope struct {
	vars     map[string]string // the flow's, never written
	captures map[string]string // this run's
	secrets  *secret.Set

	flow, region, runID, idemKey, traceID string
	startUnixMS                           int64
}

func (s *scope) Var(name string) (string, bool) {
	if v, ok := s.captures[name]; ok {
		return v, true
	}
	switch name {
	case "flow":
		return s.flow, true
	case "region":
		return s.region, true
	case "run_id":
		return s.runID, true
	case "idempotency_key":
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

func (s *scope) capture(name, value string) {
	if s.captures == nil {
		s.captures = make(map[string]string, 4)
	}
	s.captures[name] = value
}
