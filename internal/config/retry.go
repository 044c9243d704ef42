package config

import (
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Retry is a step's retry: block: how often one request is tried again
// when it fails in a way a later try may not (a 429, a 5xx, a refused
// connection). Each until poll gets its own tries.
type Retry struct {
	Attempts   int           // total tries of one request; 1 is no retry
	On         []string      // the failure classes retried (result.Class names)
	Backoff    time.Duration // the first wait; doubled each retry, full jitter
	MaxBackoff time.Duration // the cap of a wait (Retry-After may ask for more)
	// NonIdempotent allows retrying POST and PATCH: off by default because
	// a POST /pay whose answer was lost may have charged, and a retry
	// would charge twice.
	NonIdempotent bool
}

// Retries reports whether a failure of class is retried.
func (r *Retry) Retries(class string) bool { return slices.Contains(r.On, class) }

// The retry: defaults and bounds.
const (
	maxRetryAttempts  = 10
	defaultBackoff    = 500 * time.Millisecond
	defaultMaxBackoff = 10 * time.Second
)

// DefaultRetryOn are the classes retried when on: is not set: the ones a
// server or network under load answers with and a later try may not.
var DefaultRetryOn = []string{"http_429", "http_5xx", "connect_refused", "connect_timeout", "network", "timeout"}

// retryable are the classes on: accepts: failures of the attempt, not of
// the step's own expectations. (Class names as result spells them: config
// is upstream of result.)
var retryable = []string{"http_429", "http_5xx", "http_4xx", "dns", "connect_refused", "connect_timeout", "tls", "timeout", "network"}

// IdempotentMethod reports whether an HTTP method may be retried without
// non_idempotent: true (RFC 9110 9.2.2).
func IdempotentMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}

func (fc *flowCtx) retry(n *yaml.Node, s *Step) *Retry {
	f := fc.f
	o := f.object(n, "retry", []string{"attempts", "on", "backoff", "max_backoff", "non_idempotent"})
	r := &Retry{Attempts: 1, On: DefaultRetryOn, Backoff: defaultBackoff, MaxBackoff: defaultMaxBackoff}
	if v := o.get("attempts"); v != nil {
		if a, ok := f.integer(v, "retry.attempts", 1, maxRetryAttempts); ok {
			r.Attempts = int(a)
		}
	}
	if v := o.get("on"); v != nil {
		r.On = nil
		for _, it := range f.list(v, "a list of failure classes") {
			c, ok := f.str(it, "a failure class")
			if !ok {
				continue
			}
			if !slices.Contains(retryable, c) {
				f.errorf(it, "retry.on: %s is not a class a retry can help (one of %s)", quote(c), strings.Join(retryable, ", "))
				continue
			}
			r.On = append(r.On, c)
		}
	}
	if v := o.get("backoff"); v != nil {
		if d, ok := f.positive(v, "retry.backoff"); ok {
			r.Backoff = d
		}
	}
	if v := o.get("max_backoff"); v != nil {
		if d, ok := f.positive(v, "retry.max_backoff"); ok {
			if d < r.Backoff {
				f.errorf(v, "retry.max_backoff %s is shorter than retry.backoff %s", d, r.Backoff)
			} else {
				r.MaxBackoff = d
			}
		}
	} else {
		r.MaxBackoff = max(r.MaxBackoff, r.Backoff)
	}
	if v := o.get("non_idempotent"); v != nil {
		if b, ok := f.boolean(v); ok {
			r.NonIdempotent = b
		}
	}
	// A retried POST may charge twice: say so where it is written, not
	// when the second charge shows up.
	if s.Kind == "" && r.Attempts > 1 && !r.NonIdempotent && s.Method != "" && !IdempotentMethod(s.Method) {
		f.errorf(n, "retry of a %s step needs non_idempotent: true (a retried %s may act twice, e.g. charge twice)", s.Method, s.Method)
	}
	return r
}
