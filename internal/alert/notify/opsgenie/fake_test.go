package opsgenie

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// fakeOpsgenie is a strict Alert API v2: the key in a GenieKey header,
// JSON bodies of only the documented fields within their limits, the
// alias identifier type, and an alert store that deduplicates by alias as
// Opsgenie does. Anything else is a test failure and a 4xx, as Opsgenie
// would answer.
type fakeOpsgenie struct {
	t   *testing.T
	key string
	srv *httptest.Server

	mu       sync.Mutex
	alerts   map[string]*fakeAlert // by alias
	requests []fakeRequest
	faults   []fault
	gets     []http.Header
	getCode  int
}

type fakeAlert struct {
	Create   create
	Priority string
	Count    int // creates of the alias while open (Opsgenie's count)
	Status   string
	Notes    []string
	Closes   []string // notes of the closes
}

type fakeRequest struct {
	Method, Path, Query string
	Body                []byte
}

type fault struct {
	status int
	header http.Header
	body   string
}

func newFake(t *testing.T, key string) *fakeOpsgenie {
	f := &fakeOpsgenie{t: t, key: key, alerts: map[string]*fakeAlert{}, getCode: http.StatusUnauthorized}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// failNext answers the next n requests with status (and Retry-After).
func (f *fakeOpsgenie) failNext(n, status int, retryAfter, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		f.faults = append(f.faults, fault{status, h, body})
	}
}

func (f *fakeOpsgenie) alert(alias string) *fakeAlert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.alerts[alias]
}

func (f *fakeOpsgenie) reqs() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

func (f *fakeOpsgenie) answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeOpsgenie) reject(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.t.Errorf("opsgenie fake: %s", msg)
	f.answer(w, status, map[string]any{"message": msg, "took": 0.001, "requestId": "r"})
}

func (f *fakeOpsgenie) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodGet {
		// The reachability probe: never the key, never a body.
		f.gets = append(f.gets, r.Header.Clone())
		w.WriteHeader(f.getCode)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.requests = append(f.requests, fakeRequest{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, body})
	if len(f.faults) > 0 {
		ft := f.faults[0]
		f.faults = f.faults[1:]
		for k, v := range ft.header {
			w.Header()[k] = v
		}
		w.WriteHeader(ft.status)
		io.WriteString(w, ft.body)
		return
	}
	if got := r.Header.Get("Authorization"); got != "GenieKey "+f.key {
		f.answer(w, http.StatusUnauthorized, map[string]any{"message": "Could not authenticate", "took": 0.0, "requestId": "r"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.reject(w, http.StatusUnsupportedMediaType, "content type %q", ct)
		return
	}
	path := r.URL.EscapedPath()
	if path == "/v2/alerts" {
		if r.Method != http.MethodPost || r.URL.RawQuery != "" {
			f.reject(w, http.StatusMethodNotAllowed, "%s %s?%s", r.Method, path, r.URL.RawQuery)
			return
		}
		f.create(w, body)
		return
	}
	rest, ok := strings.CutPrefix(path, "/v2/alerts/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 2 {
		f.reject(w, http.StatusNotFound, "no such endpoint %s", path)
		return
	}
	alias, err := url.PathUnescape(parts[0])
	if err != nil || alias == "" {
		f.reject(w, http.StatusNotFound, "bad identifier %q", parts[0])
		return
	}
	if r.URL.RawQuery != "identifierType=alias" {
		f.reject(w, http.StatusBadRequest, "query %q: want identifierType=alias (the default is the alert id)", r.URL.RawQuery)
		return
	}
	a := f.alerts[alias]
	if a == nil {
		// Opsgenie accepts and fails later, asynchronously: a lost close.
		f.reject(w, http.StatusNotFound, "no alert with alias %q", alias)
		return
	}
	switch {
	case parts[1] == "close" && r.Method == http.MethodPost:
		var b struct{ User, Source, Note string }
		if !f.decode(w, body, &b) || !f.checkNote(w, b.User, b.Source, b.Note, false) {
			return
		}
		a.Status = "closed"
		a.Closes = append(a.Closes, b.Note)
	case parts[1] == "notes" && r.Method == http.MethodPost:
		var b struct{ User, Source, Note string }
		if !f.decode(w, body, &b) || !f.checkNote(w, b.User, b.Source, b.Note, true) {
			return
		}
		a.Notes = append(a.Notes, b.Note)
	case parts[1] == "priority" && r.Method == http.MethodPut:
		var b struct{ Priority string }
		if !f.decode(w, body, &b) {
			return
		}
		if !validPriority(b.Priority) {
			f.reject(w, http.StatusUnprocessableEntity, "priority %q", b.Priority)
			return
		}
		a.Priority = b.Priority
	default:
		f.reject(w, http.StatusNotFound, "%s %s", r.Method, path)
		return
	}
	f.accepted(w)
}

func (f *fakeOpsgenie) accepted(w http.ResponseWriter) {
	f.answer(w, http.StatusAccepted, map[string]any{"result": "Request will be processed", "took": 0.02, "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"})
}

// decode reads body into v, refusing fields Opsgenie does not document.
func (f *fakeOpsgenie) decode(w http.ResponseWriter, body []byte, v any) bool {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		f.reject(w, http.StatusBadRequest, "body %s: %v", body, err)
		return false
	}
	return true
}

func (f *fakeOpsgenie) checkNote(w http.ResponseWriter, user, source, note string, required bool) bool {
	switch {
	case required && note == "":
		f.reject(w, http.StatusUnprocessableEntity, "note is required")
	case utf8.RuneCountInString(note) > noteMax, utf8.RuneCountInString(user) > 100, utf8.RuneCountInString(source) > sourceMax:
		f.reject(w, http.StatusUnprocessableEntity, "note, user or source too long")
	default:
		return true
	}
	return false
}

func validPriority(p string) bool {
	return len(p) == 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '5'
}

func (f *fakeOpsgenie) create(w http.ResponseWriter, body []byte) {
	var c create
	if !f.decode(w, body, &c) {
		return
	}
	size := 0
	for k, v := range c.Details {
		size += utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
	}
	tagsOK := len(c.Tags) <= tagsMax
	for _, t := range c.Tags {
		tagsOK = tagsOK && utf8.RuneCountInString(t) <= tagMax && t != ""
	}
	switch {
	case strings.TrimSpace(c.Message) == "" || utf8.RuneCountInString(c.Message) > messageMax:
		f.reject(w, http.StatusUnprocessableEntity, "message %q: required, at most 130 characters", c.Message)
	case c.Alias == "" || utf8.RuneCountInString(c.Alias) > 512:
		f.reject(w, http.StatusUnprocessableEntity, "alias %q", c.Alias)
	case utf8.RuneCountInString(c.Description) > descriptionMax:
		f.reject(w, http.StatusUnprocessableEntity, "description of %d characters", utf8.RuneCountInString(c.Description))
	case !tagsOK:
		f.reject(w, http.StatusUnprocessableEntity, "tags %q", c.Tags)
	case size > detailsMax:
		f.reject(w, http.StatusUnprocessableEntity, "details of %d characters", size)
	case utf8.RuneCountInString(c.Source) > sourceMax || utf8.RuneCountInString(c.Entity) > entityMax || utf8.RuneCountInString(c.User) > 100:
		f.reject(w, http.StatusUnprocessableEntity, "source, entity or user too long")
	case !validPriority(c.Priority):
		f.reject(w, http.StatusUnprocessableEntity, "priority %q", c.Priority)
	default:
		if a := f.alerts[c.Alias]; a != nil && a.Status == "open" {
			a.Count++ // deduplicated: no new alert, priority unchanged
		} else {
			f.alerts[c.Alias] = &fakeAlert{Create: c, Priority: c.Priority, Count: 1, Status: "open"}
		}
		f.accepted(w)
	}
}
