package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
)

// examplesConfig is examples/probes.yaml.
func examplesConfig(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "probes.yaml")
}

// The examples load with `prober validate` as shipped, without their
// environment (CI has none): every variable has a default and the secrets
// are declared, not read.
func TestExamplesValidate(t *testing.T) {
	code, stdout, stderr := invoke("validate", "--config", examplesConfig(t))
	if code != exitOK {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, f := range []string{"form_login", "oauth2_api", "graphql", "mtls", "nightly_export", "included_login", "rate_limited"} {
		if !strings.Contains(stdout, f) {
			t.Errorf("validate does not list the example %s:\n%s", f, stdout)
		}
	}
}

const (
	examplePassword     = "ex4mple-password"
	exampleClientSecret = "ex4mple-client-secret"
)

// TestExamples runs every example flow with `prober once` against local
// servers that behave as the examples expect (and refuse what they should:
// a login without the CSRF token, an API call without the token, a client
// without its certificate), after `prober validate` with their environment.
func TestExamples(t *testing.T) {
	app, tokens := exampleApp(t)
	mtls, files := exampleMTLS(t)
	for k, v := range map[string]string{
		"EXAMPLE_URL": app.URL, "EXAMPLE_MTLS_URL": mtls.URL, "EXAMPLE_TOKEN_URL": app.URL + "/oauth/token",
		"EXAMPLE_CA_FILE": files["ca"], "EXAMPLE_CLIENT_CERT": files["cert"], "EXAMPLE_CLIENT_KEY": files["key"],
		"EXAMPLE_PASSWORD": examplePassword, "EXAMPLE_CLIENT_SECRET": exampleClientSecret,
	} {
		t.Setenv(k, v)
	}
	if code, stdout, stderr := invoke("validate", "--secrets", "--config", examplesConfig(t)); code != exitOK {
		t.Fatalf("validate --secrets: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := invoke("once", "--json", "--config", examplesConfig(t))
	var runs []*result.Run
	if err := json.Unmarshal([]byte(stdout), &runs); err != nil {
		t.Fatalf("once --json: %v\n%s%s", err, stdout, stderr)
	}
	var names []string
	for _, r := range runs {
		names = append(names, r.Flow)
		if r.Flow == "rate_limited" && len(r.Steps) == 1 && (r.Steps[0].Attempts != 2 || r.Steps[0].Retries != 1) {
			t.Errorf("rate_limited: %d attempts, %d retries; want the 429 waited out and one retry", r.Steps[0].Attempts, r.Steps[0].Retries)
		}
		if r.Status != result.Passed {
			for _, s := range r.Steps {
				t.Logf("%s/%s: %s %s %s", r.Flow, s.Name, s.Status, s.Class, s.Message())
			}
			t.Errorf("example %s %s at step %s", r.Flow, r.Status, r.FailedStep)
		}
	}
	if code != exitOK {
		t.Errorf("once: exit %d\n%s", code, stderr)
	}
	slices.Sort(names)
	if want := []string{"form_login", "graphql", "included_login", "mtls", "nightly_export", "oauth2_api", "rate_limited"}; !slices.Equal(names, want) {
		t.Errorf("once ran %v, want %v", names, want)
	}
	if n := tokens.Load(); n != 1 {
		t.Errorf("the token server issued %d tokens for one run, want 1", n)
	}
	for _, s := range []string{examplePassword, exampleClientSecret, "tok-"} {
		if strings.Contains(stdout+stderr, s) {
			t.Errorf("%q shows in once's output", s)
		}
	}
}

// exampleApp serves the form login, the OAuth2 token endpoint and API,
// GraphQL and the nightly export. It counts the tokens it issued.
func exampleApp(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var (
		mu       sync.Mutex
		csrf     = map[string]string{} // pre-login cookie -> its CSRF token
		sessions = map[string]string{} // session cookie -> user
		tokens   = map[string]bool{}
		issued   atomic.Int32
	)
	random := func() string {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	authorized := func(r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		return ok && tokens[tok]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		pre, tok := random(), random()
		mu.Lock()
		csrf[pre] = tok
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "pre", Value: pre, Path: "/", HttpOnly: true})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Sign in</title>
<form method="post" action="/login">
  <input type="hidden" name="csrf" value="%s">
  <input name="user"> <input name="password" type="password"> <button>Sign in</button>
</form>`, tok)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("pre")
		mu.Lock()
		want, known := "", false
		if err == nil {
			want, known = csrf[c.Value]
			delete(csrf, c.Value)
		}
		mu.Unlock()
		if !known || r.FormValue("csrf") != want {
			http.Error(w, "bad CSRF token", http.StatusForbidden)
			return
		}
		if r.FormValue("user") != "synthetic-1" || r.FormValue("password") != examplePassword {
			http.Error(w, "wrong user or password", http.StatusUnauthorized)
			return
		}
		sid := random()
		mu.Lock()
		sessions[sid] = r.FormValue("user")
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "session", Value: sid, Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/account", http.StatusFound)
	})
	mux.HandleFunc("GET /account", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		mu.Lock()
		user := ""
		if err == nil {
			user = sessions[c.Value]
		}
		mu.Unlock()
		if user == "" {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<p>Signed in as <span class="user">%s</span></p>`, html.EscapeString(user))
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		id, sec, ok := r.BasicAuth()
		if !ok {
			id, sec = r.FormValue("client_id"), r.FormValue("client_secret")
		}
		if r.FormValue("grant_type") != "client_credentials" || id != "prober" || sec != exampleClientSecret ||
			r.FormValue("scope") != "orders:read" || r.FormValue("audience") != "orders-api" {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		}
		tok := "tok-" + random()
		mu.Lock()
		tokens[tok] = true
		mu.Unlock()
		issued.Add(1)
		writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	})
	order := map[string]any{"id": "ord-1001", "status": "paid", "total": 42.5, "items": []map[string]any{{"sku": "SKU-1", "qty": 2}}}
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no token"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"orders": []any{order}})
	})
	mux.HandleFunc("GET /api/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !authorized(r):
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no token"})
		case r.PathValue("id") != order["id"]:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such order"})
		default:
			writeJSON(w, http.StatusOK, order)
		}
	})
	mux.HandleFunc("POST /graphql", func(w http.ResponseWriter, r *http.Request) {
		var q struct {
			Query     string            `json:"query"`
			Variables map[string]string `json:"variables"`
		}
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil || !strings.Contains(q.Query, "order(id: $id)") {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []any{map[string]string{"message": "bad query"}}})
			return
		}
		if q.Variables["id"] != order["id"] {
			// As GraphQL servers do: 200, and the error in the body.
			writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"order": nil}, "errors": []any{map[string]string{"message": "not found"}}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"order": order}})
	})
	// The rate limit: every other call is 429 with Retry-After: 1, and so
	// is a call sooner than that after a 429 (a client that does not wait).
	var (
		limitedCalls int
		limitedUntil time.Time
	)
	mux.HandleFunc("GET /api/limited/orders", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		limitedCalls++
		limited := limitedCalls%2 == 1 || time.Now().Before(limitedUntil)
		if limited {
			limitedUntil = time.Now().Add(time.Second)
		}
		mu.Unlock()
		if limited {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "rate limited"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"orders": []any{order}})
	})
	mux.HandleFunc("GET /exports/latest", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"rows": 1200, "age_hours": 5})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &issued
}

// exampleMTLS serves /whoami to clients with a certificate of its CA, and
// writes the CA and a client certificate ("prober") to files.
func exampleMTLS(t *testing.T) (*httptest.Server, map[string]string) {
	t.Helper()
	ca := kindtest.NewCA(t)
	srv := kindtest.ServeMTLS(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client": %q}`, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	dir := t.TempDir()
	cert, key := kindtest.PEM(t, ca.Leaf(t, "prober", time.Now().Add(time.Hour)))
	files := map[string]string{}
	for name, b := range map[string][]byte{"ca": ca.PEM, "cert": cert, "key": key} {
		files[name] = filepath.Join(dir, name+".pem")
		if err := os.WriteFile(files[name], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return srv, files
}
