package assert

import (
	"bytes"
	"strconv"
	"strings"
	"unsafe"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
)

// htmlCache holds the body parsed as HTML: parsed at most once per
// response, and only when an html() operand asks (a flow that reads no
// HTML pays nothing).
type htmlCache struct {
	state uint8      // htmlUnknown, htmlParsed or htmlRefused
	doc   *html.Node // htmlParsed
	why   string     // htmlRefused: "it is empty", "Content-Type \"application/json\""
	// The Body the state is for, as for JSON.
	data *byte
	n    int
}

const (
	htmlUnknown uint8 = iota
	htmlParsed
	htmlRefused
)

// htmlDoc is the body parsed as HTML, or nil and why it is not HTML.
func (r *Response) htmlDoc() (*html.Node, string) {
	c := &r.html
	d := unsafe.SliceData(r.Body)
	if c.state == htmlUnknown || c.data != d || c.n != len(r.Body) {
		*c = htmlCache{data: d, n: len(r.Body), state: htmlRefused}
		c.why = notHTMLReason(r.Header.Get("Content-Type"), r.Body)
		if c.why == "" {
			// The parser copies what it keeps: the document does not
			// alias the body, whose buffer the runner reuses.
			doc, err := html.Parse(bytes.NewReader(r.Body))
			if err != nil {
				// The one error of a byte reader: nesting deeper than
				// the parser's bound (512 open elements).
				c.why = "it cannot be parsed: " + strings.TrimPrefix(err.Error(), "html: ")
			} else {
				c.doc, c.state = doc, htmlParsed
			}
		}
	}
	return c.doc, c.why
}

// notHTMLReason says why a body is not HTML, or "" when it is: a
// Content-Type of text/html or application/xhtml+xml, or, without one, a
// body that starts (after blank space) with '<'. A JSON error or an image
// is refused with a reason instead of matching nothing.
func notHTMLReason(contentType string, body []byte) string {
	switch {
	case len(body) == 0:
		return "it is empty"
	case len(bytes.TrimSpace(body)) == 0:
		return "it is blank"
	}
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch mt {
	case "text/html", "application/xhtml+xml":
		return ""
	case "":
		if b := bytes.TrimLeft(body, " \t\r\n\f\ufeff"); len(b) > 0 && b[0] == '<' {
			return ""
		}
		return "no Content-Type, and it does not start with <"
	}
	return "Content-Type " + strconv.Quote(mt)
}

// compileSelector compiles the CSS selector literal n, a group of selectors
// as in CSS ("h1, .title"). cascadia reports no offset, except for what it
// left over, which then points into the literal when it has no escapes.
func (p *parser) compileSelector(n *node) cascadia.Matcher {
	if n.op != nLit || n.typ != tString {
		p.fail(n.pos, "html() needs a CSS selector in quotes, like html(\"input[name=csrf]\"), found %s", n.text)
	}
	sel := n.lit.s
	if strings.TrimSpace(sel) == "" {
		p.fail(n.pos, "html() needs a CSS selector, found an empty string")
	}
	g, err := cascadia.ParseGroup(sel)
	if err == nil {
		return g
	}
	msg := err.Error()
	at := n.pos
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasSuffix(msg, " bytes left over") {
		left, _ := strconv.Atoi(strings.TrimSuffix(msg[i+2:], " bytes left over"))
		if inner := p.src[n.pos+1 : n.end-1]; inner == sel && left > 0 && left <= len(sel) {
			at = n.pos + 1 + len(sel) - left
		}
		msg = "unexpected " + strconv.Quote(sel[len(sel)-min(left, len(sel)):])
	}
	p.fail(at, "invalid CSS selector %s: %s", strconv.Quote(sel), msg)
	return nil
}

// first is the first element matching m in document order, walking the
// tree without recursion.
func first(doc *html.Node, m cascadia.Matcher) *html.Node {
	for n := doc; n != nil; n = nextNode(n, doc) {
		if n.Type == html.ElementNode && m.Match(n) {
			return n
		}
	}
	return nil
}

// countMatches is how many elements match m.
func countMatches(doc *html.Node, m cascadia.Matcher) int {
	c := 0
	for n := doc; n != nil; n = nextNode(n, doc) {
		if n.Type == html.ElementNode && m.Match(n) {
			c++
		}
	}
	return c
}

// nextNode is the node after n in document order within root, or nil.
func nextNode(n, root *html.Node) *html.Node {
	if n.FirstChild != nil {
		return n.FirstChild
	}
	for n != root {
		if n.NextSibling != nil {
			return n.NextSibling
		}
		n = n.Parent
	}
	return nil
}

// elementText is the text of el and its descendants, as a person reads it:
// runs of white space folded to one space and the ends trimmed, so that
// `<span class="price">\n  12.00 EUR\n</span>` reads "12.00 EUR". The text
// of scripts, styles and templates is not the page's text and is left out.
func elementText(el *html.Node) string {
	var raw strings.Builder
	for n := el; n != nil; {
		if n.Type == html.ElementNode && n != el && skipText(n) {
			n = nextSkipping(n, el)
			continue
		}
		if n.Type == html.TextNode {
			raw.WriteString(n.Data)
		}
		n = nextNode(n, el)
	}
	// HTML's white space only: a no-break space (&nbsp;) stays.
	return strings.Join(strings.FieldsFunc(raw.String(), isHTMLSpace), " ")
}

func skipText(n *html.Node) bool {
	switch n.Data {
	case "script", "style", "template", "noscript":
		return true
	}
	return false
}

// nextSkipping is the node after n and its descendants, within root.
func nextSkipping(n, root *html.Node) *html.Node {
	for n != root {
		if n.NextSibling != nil {
			return n.NextSibling
		}
		n = n.Parent
	}
	return nil
}

// isHTMLSpace is ASCII white space as HTML defines it.
func isHTMLSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\f' || r == '\r'
}

// attrOf is the value of the attribute named key (lower case, as the
// parser stores names) of el.
func attrOf(el *html.Node, key string) (string, bool) {
	for _, a := range el.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// describeElement is a short opening tag of el for messages: <input
// type="text" name="user" autofocus>. Only the attributes that say which
// element it is show their values (shortened): a value="..." may be a
// token, and a failure message travels to pages and chat.
func describeElement(el *html.Node) string {
	var b strings.Builder
	b.WriteString("<" + el.Data)
	for i, a := range el.Attr {
		if i == 6 {
			b.WriteString(" …")
			break
		}
		b.WriteString(" " + a.Key)
		switch a.Key {
		case "id", "class", "name", "type", "role", "rel":
			b.WriteString("=" + quoteTrunc(a.Val, 24, false))
		}
	}
	b.WriteString(">")
	return b.String()
}
