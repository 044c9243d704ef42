package result

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestText: whatever a server sends, what is shown holds no control byte,
// invalid UTF-8 or invisible character, and text stays readable.
func TestText(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"text", []byte(`{"error":"déjà vu ✓"}`), `{"error":"déjà vu ✓"}`},
		{"lines", []byte("a\r\nb\n\tc"), "a\nb\n\tc"},
		{"terminal escape", []byte("red \x1b[31mX\x1b[0m"), `red \x1b[31mX\x1b[0m`},
		{"lone CR and NUL", []byte("over\rwrite\x00"), `over\x0dwrite\x00`},
		{"invalid UTF-8", []byte("ok \xff\xfe then"), `ok \xff\xfe then`},
		{"bidi override", []byte("a\u202eb"), `a\u202eb`},
		{"C1 control", []byte("a\u009bb"), `a\u009bb`},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Text(tc.in); got != tc.want {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	// Mostly binary: a hex dump, whose every byte is printable ASCII.
	bin := []byte{0x00, 0x01, 0x02, 0x1b, '[', '2', 'J', 0xff, 0x80, 'R', 0x00, 0x00, 0x00, 0x08}
	got := Text(bin)
	if !strings.Contains(got, "00 01 02 1b 5b 32 4a ff") {
		t.Errorf("binary body not dumped as hex: %q", got)
	}
	for _, c := range []byte(got) {
		if (c < ' ' && c != '\n') || c >= 0x7f {
			t.Fatalf("hex dump holds byte %#x: %q", c, got)
		}
	}
	if l := TextLine("a\nb\x1bc"); l != `a\nb\x1bc` {
		t.Errorf("TextLine = %q", l)
	}
	if l := TextLine("\x00\x01\x02\x03x"); strings.ContainsAny(l, "\x00\n") || !strings.Contains(l, `\x00`) {
		t.Errorf("TextLine of binary = %q", l)
	}
}

// TestResponseJSON: a text body is a JSON string, any other bytes go as
// base64, and both come back as they were.
func TestResponseJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		key  string
	}{
		{"text", []byte(`{"status":"processing"}`), `"body":"{\"status\":\"processing\"}"`},
		{"binary", []byte{0xff, 0x00, 'a'}, `"body_base64":"/wBh"`},
		{"none", nil, `"proto"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Step{Name: "pay", Response: &Response{Proto: "HTTP/1.1", Status: 503, Truncated: true,
				Headers: []Attr{{Name: "Content-Type", Value: "application/json"}}, Body: tc.body}}
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.key) {
				t.Errorf("JSON %s lacks %s", b, tc.key)
			}
			var out Step
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			r := out.Response
			if r == nil || r.Status != 503 || r.Proto != "HTTP/1.1" || !r.Truncated || len(r.Headers) != 1 || !bytes.Equal(r.Body, tc.body) {
				t.Errorf("round trip: %+v", r)
			}
		})
	}
	// A passed step has none, and says nothing of it.
	b, _ := json.Marshal(Step{Name: "login", Status: Passed})
	if strings.Contains(string(b), "response") {
		t.Errorf("a step without a response shows one: %s", b)
	}
}

func TestStatusLine(t *testing.T) {
	for _, tc := range []struct {
		r    Response
		want string
	}{
		{Response{Proto: "HTTP/1.1", Status: 503}, "HTTP/1.1 503 Service Unavailable"},
		{Response{Proto: "HTTP/2.0", Status: 599}, "HTTP/2.0 599"},
		{Response{Status: 200}, "HTTP 200 OK"},
		{Response{Body: []byte("PONG")}, ""},
	} {
		if got := tc.r.StatusLine(); got != tc.want {
			t.Errorf("StatusLine(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}
