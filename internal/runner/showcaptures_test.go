package runner

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

// TestShowCaptures: with ShowCaptures (once) each captured value is an
// attribute of its step, redacted, quoted and cut when long; without it
// (the daemon) none is kept.
func TestShowCaptures(t *testing.T) {
	const pw = "capture-secret-value-42"
	long := strings.Repeat("é", 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"token":"tok-1","pw":%q,"long":%q,"empty":""}`, pw, long)
	}))
	defer srv.Close()
	secrets := secret.NewSet(map[string]string{"PW": pw})
	run := func(show bool) *result.Run {
		st := newStep("login", "GET", srv.URL+"/")
		for _, c := range []string{"token", "pw", "long", "empty"} {
			withCapture(st, c, "json."+c)
		}
		return mustRun(t, newFlow(st), Options{Secrets: secrets, ShowCaptures: show})
	}
	r := run(true)
	want := []result.Attr{
		{Name: "capture token", Value: `"tok-1"`},
		{Name: "capture pw", Value: `"[secret:PW]"`},
		{Name: "capture long", Value: `"` + strings.Repeat("é", 60) + `"... (200 bytes)`},
		{Name: "capture empty", Value: `""`},
	}
	if got := r.Steps[0].Attrs; !slices.Equal(got, want) {
		t.Errorf("attrs\n%q\nwant\n%q", got, want)
	}
	if got := run(false).Steps[0].Attrs; len(got) != 0 {
		t.Errorf("captures kept without ShowCaptures: %q", got)
	}
}
