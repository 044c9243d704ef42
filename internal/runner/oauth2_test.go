package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
)

const oauthToken = "tok-7f3a9c1e5b2d8f4a6c0e"

// tokenServer is a loopback OAuth2 token endpoint for the client "prober"
// with secret s3cr3t-value (kindtest's secret S); reply, when set,
// answers instead. It counts the tokens it gave.
func tokenServer(t *testing.T, expiresIn int, reply http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var issued atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reply != nil {
			reply(w, r)
			return
		}
		id, secret, _ := r.BasicAuth()
		if r.FormValue("grant_type") != "client_credentials" || id != "prober" || secret != "s3cr3t-value" ||
			r.FormValue("scope") != "orders:read orders:write" || r.FormValue("audience") != "shop" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error": "invalid_client"}`)
			return
		}
		issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": oauthToken, "token_type": "Bearer", "expires_in": expiresIn})
	}))
	t.Cleanup(srv.Close)
	return srv, &issued
}

// api answers 200 to "Bearer <oauthToken>" and echoes the Authorization it
// got, so that a leak of the token into results would show.
func api(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer "+oauthToken && r.URL.Path != "/own" {
			w.WriteHeader(http.StatusUnauthorized)
		}
		fmt.Fprintf(w, `{"auth": %q}`, r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func oauthFlow(tokenURL, apiURL, extra string) string {
	return `name: f
auth:
  oauth2_client_credentials:
    token_url: "` + tokenURL + `"
    client_id: prober
    client_secret: "{{secret:S}}"
    scopes: [orders:read, orders:write]
    endpoint_params: {audience: shop}
steps:
  - name: list
    request: {url: "` + apiURL + `/orders"}
    expect:
      - status == 200
  - name: own
    request: {url: "` + apiURL + `/own", headers: {Authorization: "Basic b3du"}}
    expect:
      - json.auth == "Basic b3du"
` + extra
}

// runs runs the flow n times with one runner.Flow, as the daemon does, and
// collects what `once --verbose` would show.
func runs(t *testing.T, flow string, n int) ([]*result.Run, []string) {
	t.Helper()
	cfg, err := kindtest.Load(t, "", flow)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var shown []string
	verbose := func(step string, attempt int, req *result.Sent, resp *result.Response) {
		b, _ := json.Marshal([]any{req, resp})
		shown = append(shown, string(b)+string(req.Body)+string(resp.Body))
	}
	f, err := runner.New(cfg.Flows[0], runner.Options{Version: "test", Region: "here", Secrets: cfg.Secrets, Verbose: verbose})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*result.Run
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out = append(out, f.Run(ctx, time.Time{}))
		cancel()
	}
	return out, shown
}

// noLeak fails when the token or the client secret shows in a run or in
// the verbose output.
func noLeak(t *testing.T, rs []*result.Run, shown []string, also ...string) {
	t.Helper()
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		shown = append(shown, string(b))
		for _, s := range r.Steps {
			if s.Response != nil {
				shown = append(shown, string(s.Response.Body))
			}
		}
	}
	for _, s := range shown {
		for _, v := range append([]string{oauthToken, "s3cr3t-value"}, also...) {
			if strings.Contains(s, v) {
				t.Errorf("%q shows in the output: %s", v, s)
			}
		}
	}
}

func TestOAuth2BearerKeptAcrossRuns(t *testing.T) {
	tokens, issued := tokenServer(t, 3600, nil)
	srv, _ := api(t)
	rs, shown := runs(t, oauthFlow(tokens.URL, srv.URL, "cleanup:\n  - name: tidy\n    request: {method: DELETE, url: \""+srv.URL+"/orders\"}\n    expect: [status == 200]\n"), 3)
	for i, r := range rs {
		if r.Status != result.Passed {
			t.Fatalf("run %d: %s at %s: %s", i, r.Status, r.FailedStep, r.Steps[0].Message())
		}
		if r.Steps[2].Status != result.Passed {
			t.Errorf("run %d: the cleanup step %s: %s", i, r.Steps[2].Status, r.Steps[2].Message())
		}
	}
	if n := issued.Load(); n != 1 {
		t.Errorf("%d tokens fetched for 3 runs, want 1 (kept until it expires)", n)
	}
	if len(shown) == 0 || !strings.Contains(strings.Join(shown, "\n"), "Bearer [secret:oauth2-token]") {
		t.Errorf("the verbose output does not show the masked token: %q", shown)
	}
	noLeak(t, rs, shown)
}

// A token that expires within oauth2's 10s margin is fetched anew by
// every run.
func TestOAuth2TokenRefetchedWhenExpired(t *testing.T) {
	tokens, issued := tokenServer(t, 5, nil)
	srv, _ := api(t)
	rs, shown := runs(t, oauthFlow(tokens.URL, srv.URL, ""), 3)
	for i, r := range rs {
		if r.Status != result.Passed {
			t.Fatalf("run %d: %s: %s", i, r.Status, r.Steps[0].Message())
		}
	}
	if n := issued.Load(); n != 3 {
		t.Errorf("%d tokens fetched for 3 runs of an expiring token, want 3", n)
	}
	noLeak(t, rs, shown)
}

func TestOAuth2TokenFailureFailsFirstStep(t *testing.T) {
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()
	for _, tc := range []struct {
		name     string
		tokenURL func(t *testing.T) string
		class    result.Class
		msg      string
	}{
		{"wrong client", func(t *testing.T) string {
			s, _ := tokenServer(t, 3600, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				// A server echoing the secret it got: masked.
				_, secret, ok := r.BasicAuth()
				if !ok {
					secret = r.FormValue("client_secret") // oauth2's second try
				}
				fmt.Fprintf(w, `{"error": "invalid_client", "error_description": "bad secret %s"}`, secret)
			})
			return s.URL + "/token"
		}, result.HTTP4xx, "/token: status 401, error invalid_client: bad secret [secret:S]"},
		{"server error", func(t *testing.T) string {
			s, _ := tokenServer(t, 3600, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
			return s.URL
		}, result.HTTP5xx, "status 502"},
		{"no token in a 200", func(t *testing.T) string {
			s, _ := tokenServer(t, 3600, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"token_type": "Bearer"}`)
			})
			return s.URL
		}, result.SwallowedError, "missing access_token"},
		{"too short to redact", func(t *testing.T) string {
			s, _ := tokenServer(t, 3600, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"access_token": "abc", "token_type": "Bearer"}`)
			})
			return s.URL
		}, result.SwallowedError, "too short to keep out of the output"},
		{"nothing listening", func(*testing.T) string { return refusedURL }, result.ConnectRefused, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := api(t)
			url := tc.tokenURL(t)
			rs, shown := runs(t, oauthFlow(url, srv.URL, "cleanup:\n  - name: tidy\n    request: {method: DELETE, url: \""+srv.URL+"/orders\"}\n"), 1)
			r := rs[0]
			s := r.Steps[0]
			if r.Status != result.Failed || r.FailedStep != "list" || s.Class != tc.class {
				t.Fatalf("run %s at %q, first step class %s (%s); want failed at list, class %s", r.Status, r.FailedStep, s.Class, s.Message(), tc.class)
			}
			if want := "oauth2 token from " + url; !strings.HasPrefix(s.Message(), want) || !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("message %q, want %q ... %q", s.Message(), want, tc.msg)
			}
			if r.Steps[1].Status != result.Skipped {
				t.Errorf("second step %s, want skipped", r.Steps[1].Status)
			}
			if c := r.Steps[2]; c.Status != result.Failed || c.Class != tc.class {
				t.Errorf("cleanup step %s %s, want failed with the token's class", c.Status, c.Class)
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("the API was called %d times without a token", n)
			}
			noLeak(t, rs, shown)
		})
	}
}

// TestOAuth2TokenRedactedProperty: tokens of awkward characters and
// lengths, echoed by the API in a header and in a JSON body that fails an
// expectation, never show in the run (failure messages, kept response) or
// in the verbose output.
func TestOAuth2TokenRedactedProperty(t *testing.T) {
	pieces := []string{`"`, `\`, "&", "<", ">", "'", "+", "/", "%", "=", ":", "a", "Z", "7", "-", "_", ".", "~", "é", "✓"}
	seed := uint64(29)
	next := func(n int) int { seed = seed*6364136223846793005 + 1442695040888963407; return int(seed>>33) % n }
	for i := 0; i < 20; i++ {
		n := []int{8, 9, 16, 40, 99, 100, 121, 300, 1025}[next(9)]
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(pieces[next(len(pieces))])
		}
		tok := b.String()
		tokens, _ := tokenServer(t, 3600, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
		})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			w.Header().Set("X-Echo", url.QueryEscape(got))
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"token": got, "ok": fmt.Sprint(got == tok)})
		}))
		flow := `name: f
auth: {oauth2_client_credentials: {token_url: "` + tokens.URL + `", client_id: prober, client_secret: "{{secret:S}}"}}
steps:
  - name: echo
    request: {url: "` + srv.URL + `"}
    expect:
      - json.ok == "true"
      - json.token == "x"
`
		rs, shown := runs(t, flow, 1)
		srv.Close()
		s := rs[0].Steps[0]
		if s.Status != result.Failed || !strings.Contains(s.Message(), "[secret:oauth2-token]") {
			t.Fatalf("token %q: step %s %s, want the json.token expectation failed with the token masked", tok, s.Class, s.Message())
		}
		noLeak(t, rs, shown, tok, url.QueryEscape(tok))
	}
}

// A token the API refuses (revoked before it expired) is dropped: the run
// fails with the 401, and the next run fetches a new token instead of
// failing until the old one expires.
func TestOAuth2RefusedTokenFetchedAnew(t *testing.T) {
	var issued atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": "token-number-%d", "token_type": "Bearer", "expires_in": 3600}`, n)
	}))
	t.Cleanup(tokens.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer token-number-1" { // revoked
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	flow := `name: f
auth: {oauth2_client_credentials: {token_url: "` + tokens.URL + `", client_id: prober, client_secret: "{{secret:S}}"}}
steps:
  - name: get
    request: {url: "` + srv.URL + `"}
`
	rs, shown := runs(t, flow, 3)
	if rs[0].Status != result.Failed || rs[0].Steps[0].Class != result.HTTP4xx {
		t.Errorf("run 1: %s %s, want failed with the 401", rs[0].Status, rs[0].Steps[0].Class)
	}
	for i, r := range rs[1:] {
		if r.Status != result.Passed {
			t.Errorf("run %d: %s: %s", i+2, r.Status, r.Steps[0].Message())
		}
	}
	if n := issued.Load(); n != 2 {
		t.Errorf("%d tokens fetched, want 2 (the refused one, then one kept)", n)
	}
	noLeak(t, rs, shown, "token-number-1", "token-number-2")
}
