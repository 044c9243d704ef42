package runlog_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/runlog"
	"github.com/prober-dev/prober/internal/secret"
)

// TestLogLinesShowNoCookie: the log lines of a run whose session cookie
// fails an expectation (read as a cookie, and echoed in the body) show its
// fingerprint, never the value (the daemon logs every run so).
func TestLogLinesShowNoCookie(t *testing.T) {
	sid := rand.Text()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: sid, Path: "/", HttpOnly: true})
		fmt.Fprintf(w, `{"status":"processing","session":%q}`, sid)
	}))
	defer srv.Close()
	r := kindtest.Run(t, "", `name: f
steps:
  - name: login
    request: {url: "`+srv.URL+`/login"}
    expect: ['cookie.sid == "x"', 'json.session == "x"']
`)
	var buf bytes.Buffer
	runlog.New(slog.New(slog.NewJSONHandler(&buf, nil))).Observe(r)
	out := buf.String()
	if strings.Contains(out, sid[:8]) || strings.Contains(out, sid[len(sid)-8:]) {
		t.Fatalf("a log line shows the session cookie:\n%s", out)
	}
	if !strings.Contains(out, `cookie.sid == \"x\": got \"`+secret.Fingerprint(sid)) {
		t.Errorf("the log lines lack the cookie's fingerprint:\n%s", out)
	}
}
