package daemon

import (
	"errors"
	"strings"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/template"
)

// tlsSpec is a step kind's spec that makes a TLS handshake whenever it runs
// (the tls kind's), and so records its certificate.
type tlsSpec interface{ MakesTLSHandshake() bool }

// handshakes says whether st makes a TLS handshake when it runs, and so
// exports its certificate's expiry (metrics.StepShape.Cert): a kind that
// says so, or an HTTP request whose URL is https:// or may be (it starts
// with a value known only when the flow runs). vars are the flow's
// variables, known at load: "{{shop_url}}/healthz" is decided by
// shop_url's value.
func handshakes(st *config.Step, vars map[string]string) bool {
	h, ok := st.Spec.(*config.HTTPSpec)
	if !ok {
		s, ok := st.Spec.(tlsSpec)
		return ok && s.MakesTLSHandshake()
	}
	if h.URL == nil {
		return false
	}
	b, err := h.URL.Expand(nil, loadScope(vars))
	prefix := strings.ToLower(string(b))
	var missing *template.MissingError
	switch {
	case strings.HasPrefix(prefix, "https://"):
		return true
	case err == nil || !errors.As(err, &missing):
		return false // the whole URL is known, and not https
	default:
		// Cut short by a capture, a built-in or a secret: https if the
		// scheme could still be.
		return strings.HasPrefix("https://", prefix)
	}
}

// loadScope is the flow's variables as a template scope; captures,
// built-ins and secrets are missing.
type loadScope map[string]string

func (s loadScope) Var(name string) (string, bool) { v, ok := s[name]; return v, ok }
func (loadScope) Secret(string) (string, bool)     { return "", false }
