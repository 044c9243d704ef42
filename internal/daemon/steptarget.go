package daemon

import "github.com/prober-dev/prober/internal/config"

// stepTarget is what a configured step talks to, for the flow page: an
// HTTP step's URL template, a kind's target as its spec states it
// (Target: "tcp://{{host}}:25"), else the kind's name, never "".
func stepTarget(st *config.Step) string {
	if st.Kind == "" {
		return st.URL.String()
	}
	if t, ok := st.Spec.(interface{ Target() string }); ok {
		return t.Target()
	}
	return st.Kind
}
