package teams

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeWorkflow is a strict Workflows webhook: POST to exactly the URL
// issued (its sig= included), a JSON message with one Adaptive Card
// attachment whose every element and property is one the card schema
// (1.4) defines, under Teams' 28 KB. It answers 202 with no body, as
// Workflows does; a bad card is a test failure and a 400.
type fakeWorkflow struct {
	t     *testing.T
	srv   *httptest.Server
	path  string // the workflow path and query the URL carries
	query string

	mu     sync.Mutex
	cards  []map[string]any
	raw    [][]byte
	posts  int
	faults []fault
}

type fault struct {
	status int
	header http.Header
	body   string
}

func newFake(t *testing.T) *fakeWorkflow {
	f := &fakeWorkflow{t: t, path: "/workflows/7c1d2e3f/triggers/manual/paths/invoke", query: "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + testSig}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// url is the webhook URL the workflow issued.
func (f *fakeWorkflow) url() string { return f.srv.URL + f.path + "?" + f.query }

func (f *fakeWorkflow) failNext(status int, retryAfter, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := http.Header{}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	f.faults = append(f.faults, fault{status, h, body})
}

func (f *fakeWorkflow) got() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cards)
}

func (f *fakeWorkflow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.posts++
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
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		f.t.Errorf("teams fake: %s", msg)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"code":"InvalidRequestContent","message":%q}}`, msg)
	}
	switch {
	case r.Method != http.MethodPost:
		fail("method %s", r.Method)
		return
	case r.URL.Path != f.path || r.URL.RawQuery != f.query:
		fail("URL %s?%s is not the workflow's", r.URL.Path, r.URL.RawQuery)
		return
	case r.Header.Get("Content-Type") != "application/json":
		fail("content type %q", r.Header.Get("Content-Type"))
		return
	case len(body) > 28<<10:
		fail("message of %d bytes: Teams takes 28 KB", len(body))
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		fail("no JSON: %v", err)
		return
	}
	card, err := checkMessage(m)
	if err != nil {
		fail("%v in %s", err, body)
		return
	}
	f.cards = append(f.cards, card)
	f.raw = append(f.raw, body)
	w.WriteHeader(http.StatusAccepted)
}

// checkMessage checks the message envelope and returns its card.
func checkMessage(m map[string]any) (map[string]any, error) {
	if err := keys(m, []string{"type", "attachments"}, nil); err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	if m["type"] != "message" {
		return nil, fmt.Errorf("message type %v", m["type"])
	}
	atts, _ := m["attachments"].([]any)
	if len(atts) != 1 {
		return nil, fmt.Errorf("%d attachments, want 1", len(atts))
	}
	a, _ := atts[0].(map[string]any)
	if err := keys(a, []string{"contentType", "content"}, []string{"contentUrl"}); err != nil {
		return nil, fmt.Errorf("attachment: %w", err)
	}
	if a["contentType"] != ContentType || a["contentUrl"] != nil {
		return nil, fmt.Errorf("attachment %v, %v", a["contentType"], a["contentUrl"])
	}
	card, _ := a["content"].(map[string]any)
	if err := keys(card, []string{"type", "version", "body"}, []string{"$schema", "msteams", "actions"}); err != nil {
		return nil, fmt.Errorf("card: %w", err)
	}
	if card["type"] != "AdaptiveCard" || card["version"] != "1.4" {
		return nil, fmt.Errorf("card %v %v", card["type"], card["version"])
	}
	if ms, ok := card["msteams"].(map[string]any); ok && ms["width"] != "Full" {
		return nil, fmt.Errorf("msteams %v", ms)
	}
	body, _ := card["body"].([]any)
	if len(body) == 0 {
		return nil, fmt.Errorf("empty card body")
	}
	if err := checkElements(body); err != nil {
		return nil, err
	}
	acts, _ := card["actions"].([]any)
	for _, x := range acts {
		a, _ := x.(map[string]any)
		if err := keys(a, []string{"type", "title", "url"}, nil); err != nil {
			return nil, fmt.Errorf("action: %w", err)
		}
		u, err := url.Parse(fmt.Sprint(a["url"]))
		if a["type"] != "Action.OpenUrl" || err != nil || !u.IsAbs() || a["title"] == "" {
			return nil, fmt.Errorf("action %v", a)
		}
	}
	return card, nil
}

var (
	colors = []string{"default", "dark", "light", "accent", "good", "warning", "attention"}
	styles = []string{"default", "emphasis", "good", "attention", "warning", "accent"}
	sizes  = []string{"small", "default", "medium", "large", "extraLarge"}
)

func checkElements(els []any) error {
	for _, x := range els {
		e, _ := x.(map[string]any)
		switch e["type"] {
		case "TextBlock":
			if err := keys(e, []string{"type", "text"}, []string{"size", "weight", "color", "isSubtle", "wrap", "spacing"}); err != nil {
				return fmt.Errorf("TextBlock: %w", err)
			}
			if t, _ := e["text"].(string); strings.TrimSpace(t) == "" {
				return fmt.Errorf("TextBlock without text")
			}
			if c, ok := e["color"].(string); ok && !slices.Contains(colors, c) {
				return fmt.Errorf("TextBlock color %q", c)
			}
			if s, ok := e["size"].(string); ok && !slices.ContainsFunc(sizes, func(v string) bool { return strings.EqualFold(v, s) }) {
				return fmt.Errorf("TextBlock size %q", s)
			}
		case "FactSet":
			if err := keys(e, []string{"type", "facts"}, nil); err != nil {
				return fmt.Errorf("FactSet: %w", err)
			}
			facts, _ := e["facts"].([]any)
			if len(facts) == 0 {
				return fmt.Errorf("FactSet without facts")
			}
			for _, y := range facts {
				fa, _ := y.(map[string]any)
				if err := keys(fa, []string{"title", "value"}, nil); err != nil {
					return fmt.Errorf("fact: %w", err)
				}
			}
		case "Container":
			if err := keys(e, []string{"type", "items"}, []string{"style", "bleed"}); err != nil {
				return fmt.Errorf("Container: %w", err)
			}
			if s, ok := e["style"].(string); ok && !slices.Contains(styles, s) {
				return fmt.Errorf("Container style %q", s)
			}
			items, _ := e["items"].([]any)
			if len(items) == 0 {
				return fmt.Errorf("empty Container")
			}
			if err := checkElements(items); err != nil {
				return err
			}
		default:
			return fmt.Errorf("element type %v", e["type"])
		}
	}
	return nil
}

// keys checks that m has every required key and no key beyond optional.
func keys(m map[string]any, required, optional []string) error {
	if m == nil {
		return fmt.Errorf("not an object")
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("no %q", k)
		}
	}
	for k := range m {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			return fmt.Errorf("unknown property %q", k)
		}
	}
	return nil
}
