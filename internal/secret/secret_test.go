package secret

import (
	"fmt"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	s := NewSet(map[string]string{
		"PW":    "p@ss word/1",
		"TOKEN": "tok",
		"LONG":  "tok-and-more", // contains TOKEN: masked whole
		"EMPTY": "",
	})
	tests := []struct{ in, want string }{
		{"nothing here", "nothing here"},
		{"password p@ss word/1 end", "password [secret:PW] end"},
		{"q=p%40ss+word%2F1", "q=[secret:PW]"},   // query-escaped
		{"/x/p@ss%20word%2F1", "/x/[secret:PW]"}, // path-escaped
		{"tok-and-more and tok", "[secret:LONG] and [secret:TOKEN]"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := s.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if v, ok := s.Get("PW"); !ok || v != "p@ss word/1" {
		t.Fatal("Get")
	}
	if _, ok := s.Get("NOPE"); ok {
		t.Fatal("Get NOPE")
	}
	if s.Len() != 4 || strings.Join(s.Names(), ",") != "EMPTY,LONG,PW,TOKEN" {
		t.Fatal(s.Names())
	}
}

func TestJSONForm(t *testing.T) {
	s := NewSet(map[string]string{"Q": `a"b`})
	if got := s.Redact(`{"password":"a\"b"}`); got != `{"password":"[secret:Q]"}` {
		t.Fatal(got)
	}
}

func TestNeverPrintsValues(t *testing.T) {
	s := NewSet(map[string]string{"PW": "hunter2"})
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, s); strings.Contains(out, "hunter2") {
			t.Errorf("%s leaks: %s", format, out)
		}
	}
	wrapped := struct{ S *Set }{s}
	for _, format := range []string{"%v", "%+v", "%#v"} {
		if out := fmt.Sprintf(format, wrapped); strings.Contains(out, "hunter2") {
			t.Errorf("%s of a struct holding a Set leaks: %s", format, out)
		}
	}
}

func TestNil(t *testing.T) {
	var s *Set
	if s.Redact("x") != "x" || s.Len() != 0 || s.Names() != nil {
		t.Fatal("nil set")
	}
	if _, ok := s.Get("x"); ok {
		t.Fatal("nil Get")
	}
}
