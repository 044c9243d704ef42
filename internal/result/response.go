package result

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Response is what the server answered to the last attempt of a failed
// step, kept so that on-call can see it: the status, the headers and the
// first part of the body (the flow's keep_response), redacted by the runner
// before it gets here. Passing steps keep none (memory).
//
// Body holds the bytes as received, which need not be text: show it
// through Text, never raw (a terminal or a page would run its escapes).
type Response struct {
	Proto   string `json:"proto,omitempty"`  // "HTTP/1.1"; "" for a kind without one (a tcp reply)
	Status  int    `json:"status,omitempty"` // 0 for a kind without one
	Headers []Attr `json:"headers,omitempty"`
	Body    []byte `json:"-"`
	// Truncated says that the body went on past Body (cut at the flow's
	// keep_response); the step's BodyBytes says how long it was.
	Truncated bool `json:"truncated,omitempty"`
}

// Sent is the request a step sent, for `once --verbose` (never kept in a
// Result), redacted like a Response.
type Sent struct {
	Method  string
	URL     string
	Proto   string
	Headers []Attr
	Body    []byte
}

type responseJSON struct {
	Proto   string `json:"proto,omitempty"`
	Status  int    `json:"status,omitempty"`
	Headers []Attr `json:"headers,omitempty"`
	// Body is the body when it is UTF-8, else BodyBase64 holds it.
	Body       *string `json:"body,omitempty"`
	BodyBase64 string  `json:"body_base64,omitempty"`
	Truncated  bool    `json:"truncated,omitempty"`
}

// MarshalJSON writes a UTF-8 body as the string "body", any other as
// "body_base64" (JSON strings cannot hold arbitrary bytes).
func (r Response) MarshalJSON() ([]byte, error) {
	j := responseJSON{Proto: r.Proto, Status: r.Status, Headers: r.Headers, Truncated: r.Truncated}
	switch {
	case len(r.Body) == 0:
	case utf8.Valid(r.Body):
		s := string(r.Body)
		j.Body = &s
	default:
		j.BodyBase64 = base64.StdEncoding.EncodeToString(r.Body)
	}
	return json.Marshal(j)
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (r *Response) UnmarshalJSON(b []byte) error {
	var j responseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Response{Proto: j.Proto, Status: j.Status, Headers: j.Headers, Truncated: j.Truncated}
	switch {
	case j.Body != nil:
		r.Body = []byte(*j.Body)
	case j.BodyBase64 != "":
		body, err := base64.StdEncoding.DecodeString(j.BodyBase64)
		if err != nil {
			return fmt.Errorf("response body_base64: %w", err)
		}
		r.Body = body
	}
	return nil
}

// StatusLine is "HTTP/1.1 503 Service Unavailable", or "" for a kind's
// reply without a status.
func (r *Response) StatusLine() string {
	if r.Status == 0 {
		return ""
	}
	proto := r.Proto
	if proto == "" {
		proto = "HTTP"
	}
	if t := statusText(r.Status); t != "" {
		return fmt.Sprintf("%s %d %s", proto, r.Status, t)
	}
	return fmt.Sprintf("%s %d", proto, r.Status)
}

// Text is b as it may be shown to a person, in a terminal or a page:
// UTF-8 text as is, but each control byte, invalid byte or invisible
// character escaped (\x1b, \u202e; CR LF becomes a line break); a body
// that is mostly not text becomes a hex dump. Whatever b holds, Text
// holds no terminal escape sequence; pages still HTML-escape it.
func Text(b []byte) string {
	if binary(b) {
		return hex.Dump(b)
	}
	var s strings.Builder
	s.Grow(len(b))
	for i := 0; i < len(b); {
		c, n := utf8.DecodeRune(b[i:])
		switch {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			// the line break follows
		case c == '\n' || c == '\t':
			s.WriteRune(c)
		case c == utf8.RuneError && n == 1:
			fmt.Fprintf(&s, `\x%02x`, b[i])
		case c < utf8.RuneSelf && (c < ' ' || c == 0x7f):
			fmt.Fprintf(&s, `\x%02x`, c)
		case unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) || !unicode.IsPrint(c) && !unicode.IsSpace(c):
			fmt.Fprintf(&s, `\u%04x`, c)
		default:
			s.Write(b[i : i+n])
		}
		i += n
	}
	return s.String()
}

// binary says whether b is mostly not text: more than one byte in four is
// a control byte (other than CR, LF, tab) or not UTF-8.
func binary(b []byte) bool {
	odd := 0
	for i := 0; i < len(b); {
		c, n := utf8.DecodeRune(b[i:])
		if c == utf8.RuneError && n == 1 || c < ' ' && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			odd++
		}
		i += n
	}
	return odd > 0 && odd*4 > len(b)
}

// TextLine is s (a header value, a URL) on one line: as Text, with line
// breaks and tabs escaped too.
func TextLine(s string) string {
	t := Text([]byte(s))
	if binary([]byte(s)) { // a hex dump spans lines: escape byte by byte instead
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if c := s[i]; c >= ' ' && c < 0x7f {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		}
		return b.String()
	}
	return strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(t)
}

// statusText is net/http's StatusText for the common statuses, without
// importing net/http into the result types.
func statusText(code int) string {
	return map[int]string{
		200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
		301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
		307: "Temporary Redirect", 308: "Permanent Redirect",
		400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
		404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
		410: "Gone", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
		422: "Unprocessable Entity", 429: "Too Many Requests",
		500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
		503: "Service Unavailable", 504: "Gateway Timeout",
	}[code]
}
