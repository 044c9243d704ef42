package daemon

import "github.com/prober-dev/prober/internal/config"

// stepTarget is what a configured step talks to, for the flow page: its
// target as its spec states it (an HTTP step's URL template, Target:
// "tcp://{{host}}:25"), else the kind's name.
func stepTarget(st *config.Step) string {
	if t, ok := st.Spec.(interface{ Target() string }); ok {
		return t.Target()
	}
	return st.Kind
}
