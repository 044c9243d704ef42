package report

import (
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/prober-dev/prober/internal/result"
)

// Bounds of a kept response in `once`'s story (the run page, JSON and
// JUnit show all that was kept).
const (
	textHeaders   = 5
	textBodyBytes = 1 << 10
	textBodyLines = 20
)

// shownFirst are the headers that most often say why a step failed.
var shownFirst = []string{"Content-Type", "Location", "Retry-After", "Www-Authenticate", "Content-Length"}

// writeKept writes a failed step's kept response into a run's story: its
// status line, a few headers, and the start of the body.
func writeKept(b *strings.Builder, s *result.Step, indent string) {
	k := s.Response
	if k == nil {
		return
	}
	if l := k.StatusLine(); l != "" {
		fmt.Fprintf(b, "%s< %s\n", indent, l)
	}
	hs := slices.Clone(k.Headers)
	rank := func(h result.Attr) int {
		if i := slices.Index(shownFirst, h.Name); i >= 0 {
			return i
		}
		return len(shownFirst)
	}
	slices.SortStableFunc(hs, func(a, b result.Attr) int { return rank(a) - rank(b) })
	for i, h := range hs {
		if i == textHeaders {
			fmt.Fprintf(b, "%s< (%d more headers)\n", indent, len(hs)-i)
			break
		}
		fmt.Fprintf(b, "%s< %s: %s\n", indent, result.TextLine(h.Name), result.TextLine(h.Value))
	}
	body := k.Body
	more := len(body) > textBodyBytes
	body = body[:min(len(body), textBodyBytes)]
	lines := strings.Split(strings.TrimRight(result.Text(body), "\n"), "\n")
	if len(lines) > textBodyLines {
		lines, more = lines[:textBodyLines], true
	}
	if len(body) > 0 {
		for _, l := range lines {
			fmt.Fprintf(b, "%s| %s\n", indent, l)
		}
	}
	switch {
	case more:
		fmt.Fprintf(b, "%s| … (%s; once --json or --verbose shows more)\n", indent, bodyNote(s))
	case k.Truncated:
		fmt.Fprintf(b, "%s| … (%s)\n", indent, bodyNote(s))
	}
}

// bodyNote says how much of the body was kept.
func bodyNote(s *result.Step) string {
	k := s.Response
	if k.Truncated {
		return fmt.Sprintf("kept %d bytes of %d: truncated at keep_response", len(k.Body), s.BodyBytes)
	}
	return fmt.Sprintf("kept all %d bytes", len(k.Body))
}

// keptText is the whole kept response as text, for JUnit's system-out.
func keptText(s *result.Step) string {
	k := s.Response
	var b strings.Builder
	if l := k.StatusLine(); l != "" {
		b.WriteString(l + "\n")
	}
	for _, h := range k.Headers {
		fmt.Fprintf(&b, "%s: %s\n", result.TextLine(h.Name), result.TextLine(h.Value))
	}
	if len(k.Body) > 0 {
		b.WriteString("\n" + strings.TrimRight(result.Text(k.Body), "\n") + "\n")
	}
	fmt.Fprintf(&b, "(%s)", bodyNote(s))
	return b.String()
}

// Exchange writes one attempt of a step as curl -v shows it, for
// `once --verbose`: "> " the request line and headers, the request body,
// "< " the status line and headers, the response body; everything through
// result.Text, redacted by the runner. req may be nil (no request seen).
func Exchange(w io.Writer, step string, attempt int, req *result.Sent, resp *result.Response) error {
	var b strings.Builder
	fmt.Fprintf(&b, "* step %s, attempt %d\n", result.TextLine(step), attempt)
	if req != nil {
		target, host := req.URL, ""
		if u, err := url.Parse(req.URL); err == nil && u.Host != "" {
			target, host = u.RequestURI(), u.Host
		}
		proto := req.Proto
		if proto == "" {
			proto = "HTTP/1.1"
		}
		if req.Method != "" && strings.HasPrefix(req.URL, "http") {
			fmt.Fprintf(&b, "> %s %s %s\n", result.TextLine(req.Method), result.TextLine(target), proto)
			if host != "" {
				fmt.Fprintf(&b, "> Host: %s\n", result.TextLine(host))
			}
		} else { // a kind's step: its target
			fmt.Fprintf(&b, "> %s %s\n", result.TextLine(req.Method), result.TextLine(req.URL))
		}
		for _, h := range req.Headers {
			fmt.Fprintf(&b, "> %s: %s\n", result.TextLine(h.Name), result.TextLine(h.Value))
		}
		b.WriteString(">\n")
		writeBody(&b, req.Body)
	}
	if resp != nil {
		if l := resp.StatusLine(); l != "" {
			fmt.Fprintf(&b, "< %s\n", l)
		}
		for _, h := range resp.Headers {
			fmt.Fprintf(&b, "< %s: %s\n", result.TextLine(h.Name), result.TextLine(h.Value))
		}
		b.WriteString("<\n")
		writeBody(&b, resp.Body)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeBody(b *strings.Builder, body []byte) {
	if len(body) == 0 {
		return
	}
	b.WriteString(strings.TrimRight(result.Text(body), "\n"))
	b.WriteString("\n")
}
