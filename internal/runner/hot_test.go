package runner

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/template"
)

const hotBody = `{"status":"success","order":{"id":"ord_123","amount_cents":1999,"currency":"EUR"},"token":"tok-abc"}`

// hotServer answers every request with a small JSON body, as the load
// harness's target does.
func hotServer(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, hotBody)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// hotFlow is one step with the shape of a checkout step: three
// expectations and a capture.
func hotFlow(tb testing.TB, url string) *Flow {
	st := withCapture(newStep("s", "GET", url+"/x", "status == 200", `json.status == "success"`, "duration < 2s"), "token", "json.token")
	f, err := New(newFlow(st), Options{Version: "bench", Region: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func BenchmarkRunOneStep(b *testing.B) {
	srv := hotServer(b)
	f := hotFlow(b, srv.URL)
	b.ReportAllocs()
	for b.Loop() {
		if r := f.Run(context.Background(), time.Time{}); !r.OK() {
			b.Fatal(r.Summary())
		}
	}
}

// BenchmarkBareRequest is the reference: a new connection per request.
func BenchmarkBareRequest(b *testing.B) {
	srv := hotServer(b)
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Get(srv.URL + "/x")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
}

// bareGet is one request of the reference client: a new connection, the
// body read and closed.
func bareGet(tb testing.TB, tr *http.Transport, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	tr.CloseIdleConnections()
}

// TestCookieHeaderPerAttempt: the request's header is shared with the
// step's (no copy) only while the jar holds no cookie; once it does, each
// attempt sends the configured Cookie and the jar's once, not what an
// earlier attempt's request was given.
func TestCookieHeaderPerAttempt(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Cookie"))
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "1", Path: "/"})
		w.Write([]byte(`{"status":"pending"}`))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, configured string
		want             []string
	}{
		{"jar only", "", []string{"", "sid=1", "sid=1", "sid=1"}},
		{"configured and jar", "a=b", []string{"a=b", "a=b; sid=1", "a=b; sid=1", "a=b; sid=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			st := newStep("poll", "GET", srv.URL+"/x")
			if tc.configured != "" {
				withHeader(st, "Cookie", tc.configured)
			}
			st.Until = &config.Until{Expect: []*assert.Expectation{assert.MustCompile(`json.status == "done"`)},
				Interval: time.Millisecond, Within: 400 * time.Millisecond}
			mustRun(t, newFlow(st), Options{})
			if len(got) < len(tc.want) {
				t.Fatalf("%d polls, want at least %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				if got[i] != w {
					t.Errorf("poll %d sent Cookie %q, want %q (all: %q)", i+1, got[i], w, got[:len(tc.want)])
				}
			}
		})
	}
}

// TestCapturesScope: a capture shadows a built-in and a var, a later
// capture of a name replaces the earlier, and idempotency_key is one value
// a run, made when first read.
func TestCapturesScope(t *testing.T) {
	s := scope{vars: map[string]string{"order": "from-vars"}, flow: "f"}
	if s.idemKey != "" {
		t.Fatal("idempotency key made before use")
	}
	k1, _ := s.Var("idempotency_key")
	k2, _ := s.Var("idempotency_key")
	if k1 == "" || k1 != k2 {
		t.Errorf("idempotency_key %q then %q, want one value", k1, k2)
	}
	s.capture("order", "o1")
	s.capture("flow", "captured")
	s.capture("order", "o2")
	for name, want := range map[string]string{"order": "o2", "flow": "captured"} {
		if v, ok := s.Var(name); !ok || v != want {
			t.Errorf("%s = %q, %v; want %q", name, v, ok, want)
		}
	}
	if len(s.captures) != 2 {
		t.Errorf("%d captures kept, want 2: %v", len(s.captures), s.captures)
	}
}

// TestBound: the flow timeout's context is made only when an attempt
// could outlive it or something waits on it, and says the same either way.
func TestBound(t *testing.T) {
	t.Run("an attempt that ends first", func(t *testing.T) {
		b := &bound{parent: context.Background(), deadline: time.Now().Add(time.Hour)}
		ctx, cancel := b.attempt(time.Minute)
		defer cancel()
		if b.ctx != nil {
			t.Error("the flow's context was made for an attempt that ends before it")
		}
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > time.Minute {
			t.Errorf("attempt deadline %v, %v; want within a minute", dl, ok)
		}
		if b.expired() {
			t.Error("expired an hour early")
		}
		if dl, _ := b.Deadline(); !dl.Equal(b.deadline) {
			t.Errorf("Deadline %v, want the flow's %v", dl, b.deadline)
		}
	})
	t.Run("an attempt that could outlive the flow", func(t *testing.T) {
		b := &bound{parent: context.Background(), deadline: time.Now().Add(20 * time.Millisecond)}
		ctx, cancel := b.attempt(time.Hour)
		defer cancel()
		defer b.close()
		if b.ctx == nil {
			t.Fatal("no flow context for an attempt that outlives the flow")
		}
		<-ctx.Done()
		if !b.expired() || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("expired %v, attempt %v", b.expired(), ctx.Err())
		}
	})
	t.Run("past the deadline without a context", func(t *testing.T) {
		b := &bound{parent: context.Background(), deadline: time.Now().Add(-time.Millisecond)}
		if !b.expired() || b.ctx != nil {
			t.Errorf("expired %v, context made %v", b.expired(), b.ctx != nil)
		}
	})
	t.Run("the run's context cancelled", func(t *testing.T) {
		parent, stop := context.WithCancel(context.Background())
		b := &bound{parent: parent, deadline: time.Now().Add(time.Hour)}
		ctx, cancel := b.attempt(time.Minute)
		defer cancel()
		stop()
		<-ctx.Done()
		if !b.expired() {
			t.Error("not expired with the run's context cancelled")
		}
	})
	t.Run("cleanup: the run's context only", func(t *testing.T) {
		b := &bound{parent: context.Background()}
		if b.context() != context.Background() || b.expired() {
			t.Error("cleanup bound is not the run's context")
		}
		if _, ok := b.Deadline(); ok {
			t.Error("cleanup bound has a deadline")
		}
	})
}

// TestBodyResentOnRedirect: a 307 resends the body, literal, expanded or
// a form, through the GetBody http.NewRequest gives the request.
func TestBodyResentOnRedirect(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, "/b", http.StatusTemporaryRedirect)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Header.Get("Content-Type")+" "+string(b))
		w.Write([]byte(`{"status":"success"}`))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		set  func(*config.Step)
		want string
	}{
		{"literal", func(st *config.Step) {
			withJSON(st, template.Part{T: template.Literal(`{"a":1}`)})
		}, `application/json {"a":1}`},
		{"expanded", func(st *config.Step) {
			withJSON(st, template.Part{T: template.Literal(`{"flow":"`)}, template.Part{T: template.MustParse("{{flow}}"), Esc: template.JSONString},
				template.Part{T: template.Literal(`"}`)})
		}, `application/json {"flow":"test"}`},
		{"form", func(st *config.Step) {
			httpOf(st).Body = config.Body{Kind: config.FormBody, ContentType: "application/x-www-form-urlencoded",
				Form: []config.Param{{Name: "user", Value: template.MustParse("{{flow}}")}}}
		}, "application/x-www-form-urlencoded user=test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			st := newStep("s", "POST", srv.URL+"/a", "status == 200")
			tc.set(st)
			if r := mustRun(t, newFlow(st), Options{}); !r.OK() {
				t.Fatal(r.Summary())
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("redirected request got %q, want %q", got, tc.want)
			}
		})
	}
}
