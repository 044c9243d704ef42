package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// silenceAlerts is an Alerts that keeps API silences in memory.
type silenceAlerts struct {
	mu       sync.Mutex
	silences []SilenceInfo
	n        int
}

func (f *silenceAlerts) Alerts() ([]AlertInfo, error) {
	return []AlertInfo{{Key: "checkout-failing", Rule: "checkout-failing", Severity: "page", Phase: "firing"}}, nil
}

func (f *silenceAlerts) Silences() ([]SilenceInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SilenceInfo(nil), f.silences...), nil
}

func (f *silenceAlerts) AddSilence(s SilenceInfo) (SilenceInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	s.ID = fmt.Sprintf("s%d", f.n)
	f.silences = append(f.silences, s)
	return s, nil
}

func (f *silenceAlerts) RemoveSilence(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.silences {
		if s.ID == id {
			f.silences = append(f.silences[:i], f.silences[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("no silence %s", id)
}

func (f *silenceAlerts) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.silences)
}

const silenceJSON = `{"matchers":{"rule":"checkout-failing"},"duration":"2h","comment":"maintenance"}`

// The state-changing endpoints driven as browsers and scripts drive them, over
// a real loopback server (so Host is what a browser would send): what a page
// on another site can make a browser send is refused, same-origin requests
// and non-browser clients sending JSON are served. Before the check, every
// refused case here was served (201 or 204): a page open in a browser on the
// prober's host could silence a firing alert.
func TestStateChangingRequestsRefuseCrossSiteAndNonJSON(t *testing.T) {
	alerts := &silenceAlerts{}
	srv := httptest.NewServer(newHandler(func(o *Options) { o.Alerts = alerts }))
	defer srv.Close()
	self := srv.URL // the origin of the prober's own pages

	tests := []struct {
		name    string
		method  string
		path    string // default /api/v1/silences
		ctype   string
		body    string
		headers map[string]string
		code    int
		errPart string // in the JSON error of a refusal
	}{
		// What a page on evil.example can make a browser send.
		{name: "cross-site form post, text/plain, old browser (Origin only)", ctype: "text/plain",
			body: silenceJSON, headers: map[string]string{"Origin": "http://evil.example"}, code: 403, errPart: "cross-origin"},
		{name: "cross-site form post, urlencoded, modern browser", ctype: "application/x-www-form-urlencoded",
			body: "matchers=x", headers: map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, code: 403, errPart: "cross-origin"},
		{name: "cross-site fetch, JSON, Sec-Fetch-Site cross-site", ctype: "application/json",
			body: silenceJSON, headers: map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, code: 403, errPart: "Sec-Fetch-Site"},
		{name: "cross-site fetch, Sec-Fetch-Site without Origin", ctype: "application/json",
			body: silenceJSON, headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, code: 403, errPart: "cross-origin"},
		{name: "same-site but other origin (another port on the host)", ctype: "application/json",
			body: silenceJSON, headers: map[string]string{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}, code: 403, errPart: "cross-origin"},
		{name: "opaque origin (sandboxed frame, file:)", ctype: "text/plain",
			body: silenceJSON, headers: map[string]string{"Origin": "null"}, code: 403, errPart: "cross-origin"},
		{name: "cross-site DELETE", method: "DELETE", path: "/api/v1/silences/s1",
			headers: map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, code: 403, errPart: "cross-origin"},

		// Allowed: the prober's own pages, and clients that are not browsers.
		{name: "same-origin fetch", ctype: "application/json", body: silenceJSON,
			headers: map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}, code: 201},
		{name: "same-origin, old browser (Origin only)", ctype: "application/json", body: silenceJSON,
			headers: map[string]string{"Origin": self}, code: 201},
		{name: "curl with JSON", ctype: "application/json", body: silenceJSON, code: 201},
		{name: "curl with JSON and charset", ctype: "application/json; charset=utf-8", body: silenceJSON, code: 201},

		// Not JSON, even from loopback without Origin: 415.
		{name: "curl text/plain", ctype: "text/plain", body: silenceJSON, code: 415, errPart: "application/json"},
		{name: "curl urlencoded (curl -d)", ctype: "application/x-www-form-urlencoded", body: silenceJSON, code: 415, errPart: "application/json"},
		{name: "curl multipart", ctype: "multipart/form-data; boundary=x", body: "--x--", code: 415, errPart: "application/json"},
		{name: "no content type", body: silenceJSON, code: 415, errPart: "needs Content-Type: application/json"},
		{name: "JSON look-alike", ctype: "application/jsonp", body: silenceJSON, code: 415, errPart: "application/json"},
		{name: "DELETE with a text body", method: "DELETE", path: "/api/v1/silences/s1", ctype: "text/plain", body: "x", code: 415},

		// Unrouted non-safe requests keep the mux's answers.
		{name: "POST to a GET-only path", path: "/healthz", code: 405},
		{name: "POST to no path", path: "/nope", ctype: "text/plain", code: 404},
	}
	client := srv.Client()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method, path := tc.method, tc.path
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/api/v1/silences"
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(method, srv.URL+path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			before := alerts.count()
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.code {
				t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, tc.code)
			}
			if tc.code == 403 || tc.code == 415 {
				if ct := res.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("refusal Content-Type %q, want application/json", ct)
				}
				var e apiError
				if err := json.Unmarshal(b, &e); err != nil || !strings.Contains(e.Error, tc.errPart) {
					t.Errorf("refusal body %s, want a JSON error containing %q", b, tc.errPart)
				}
				if alerts.count() != before {
					t.Errorf("a refused request changed the silences (%d -> %d)", before, alerts.count())
				}
			}
			if tc.code == 201 && alerts.count() != before+1 {
				t.Errorf("201 without a new silence")
			}
		})
	}

	// DELETE as the prober's own page or curl sends it: no body, no type.
	for _, h := range []map[string]string{{"Origin": self, "Sec-Fetch-Site": "same-origin"}, nil} {
		sil, _ := alerts.Silences()
		if len(sil) == 0 {
			t.Fatal("no silence left to delete")
		}
		req, _ := http.NewRequest("DELETE", srv.URL+"/api/v1/silences/"+sil[0].ID, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 204 {
			t.Errorf("DELETE with headers %v: %d, want 204", h, res.StatusCode)
		}
	}
}

// Reading stays open to any origin: the refusals are for state changes only,
// so a dashboard on another origin can still link or embed-fetch the API.
func TestCrossSiteReadsAreServed(t *testing.T) {
	h := newHandler(func(o *Options) { o.Alerts = &silenceAlerts{} })
	for _, path := range []string{"/", "/api/v1/silences", "/api/v1/alerts", "/api/v1/results"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Origin", "http://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Errorf("cross-site GET %s: %d, want 200", path, rec.Code)
		}
	}
}
