// Package secret holds resolved secret values and the redactor that keeps them
// out of everything the prober emits. A Set never prints its values: its
// String and GoString name the secrets only.
//
// The redactor masks a secret in every form it takes on its way out (see
// Forms), and also the start or end of a secret left beside a cut (a "…"
// marker, or the text's own start or end), so that shortening a text before
// it is redacted shows no prefix or suffix of a secret either.
package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MinLen is the fewest characters a secret may have (counted after folding
// whitespace, as a header or a log line may). A shorter one would mask
// ordinary text wherever it happens to appear, and its forms (base64, a cut
// prefix) would be too short to find without masking everything.
const MinLen = 8

// Short reports whether v is shorter than MinLen characters.
func Short(v string) bool {
	return utf8.RuneCountInString(strings.Join(strings.Fields(v), " ")) < MinLen
}

// Cut markers and how much of a secret beside a cut is masked.
const (
	cutMark = "…"
	// markMin is the shortest start or end of a secret masked beside a "…":
	// cuts are rare and marked, so a false match costs little.
	markMin = 4
	// edgeMin is the shortest start or end of a secret masked at the text's
	// own start or end (a cut without a marker).
	edgeMin = 8
	// anchor is the length of the windows indexed to find them.
	anchor = 4
)

// Set is an immutable set of named secrets. The nil *Set is empty.
type Set struct {
	values map[string]string
	forms  []form
	// windows indexes every anchor-byte window of every form: a form is
	// found, whole or beside a cut, from any window of it.
	windows map[uint32][]loc
	// seen has a bit set for the hash of every window, so that most of a
	// text is ruled out without a map lookup; step is how far apart the
	// windows of a text are sampled: any form covers one sampled window.
	seen [1 << 16 / 64]uint64
	step int
	// replacer masks sets with a form shorter than a window (Load refuses
	// such secrets; tests and a notifier's literal key may still make one).
	replacer *strings.Replacer
}

type form struct{ text, mask string }

type loc struct{ form, at int32 }

// NewSet copies values. Empty values are kept for lookup but never redacted
// (there is nothing to find).
func NewSet(values map[string]string) *Set { return build(values, nil) }

// Masking returns a set that redacts what s does and also, in every form,
// each value of masks (value -> its mask, e.g. a cookie's Fingerprint):
// values the run met rather than configured ones. Values shorter than
// MinLen are left out (they would shred ordinary text); a form that is
// also a secret's keeps the secret's name. s is unchanged.
func (s *Set) Masking(masks map[string]string) *Set {
	var values map[string]string
	if s != nil {
		values = s.values
	}
	return build(values, masks)
}

func build(values, masks map[string]string) *Set {
	s := &Set{values: make(map[string]string, len(values))}
	seen := map[string]bool{}
	add := func(v, mask string) {
		for _, f := range Forms(v) {
			if !seen[f] {
				seen[f] = true
				s.forms = append(s.forms, form{f, mask})
			}
		}
	}
	// In name order, so that a form two secrets share is always masked
	// with the same name.
	for _, name := range slices.Sorted(maps.Keys(values)) {
		v := values[name]
		s.values[name] = v
		add(v, "[secret:"+name+"]")
	}
	for _, v := range slices.Sorted(maps.Keys(masks)) {
		if !Short(v) {
			add(v, masks[v])
		}
	}
	if len(s.forms) == 0 {
		return s
	}
	// Longest first, so a secret that contains another is masked whole.
	slices.SortFunc(s.forms, func(a, b form) int {
		if d := len(b.text) - len(a.text); d != 0 {
			return d
		}
		return strings.Compare(a.text, b.text)
	})
	s.windows = map[uint32][]loc{}
	for i, f := range s.forms {
		for at := 0; at+anchor <= len(f.text); at++ {
			k := key(f.text[at:])
			s.windows[k] = append(s.windows[k], loc{int32(i), int32(at)})
			h := hash(k)
			s.seen[h/64] |= 1 << (h % 64)
		}
	}
	shortest := len(s.forms[len(s.forms)-1].text)
	s.step = shortest - anchor + 1
	if shortest < anchor {
		args := make([]string, 0, 2*len(s.forms))
		for _, f := range s.forms {
			args = append(args, f.text, f.mask)
		}
		s.replacer = strings.NewReplacer(args...)
	}
	return s
}

func key(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func hash(k uint32) uint32 { return (k * 0x9E3779B1) >> 16 }

// maybe says whether window k may be part of a form (false: it is not).
func (s *Set) maybe(k uint32) bool {
	h := hash(k)
	return s.seen[h/64]&(1<<(h%64)) != 0
}

// Forms are the texts a secret value v can become on its way to an output:
//   - as is, and as a header carries it (CR and LF sent as spaces, the ends
//     trimmed on reading, whitespace runs folded);
//   - URL query and path escaped;
//   - inside a JSON string (with and without HTML escaping), inside a Go
//     quoted string (strconv.Quote, %q, %+q), and a JSON string Go-quoted
//     (a JSON body shown in a failure message);
//   - HTML escaped (html.EscapeString, html/template, XML);
//   - base64 (standard and URL alphabets) at each of the three alignments a
//     value can have inside a longer encoded text, as in the basic-auth pair
//     "user:secret": the part of the encoding that only the secret decides.
func Forms(v string) []string {
	if v == "" {
		return nil
	}
	nl := strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	bases := uniq([]string{v, nl, strings.TrimSpace(nl), strings.Join(strings.Fields(v), " ")})
	var out []string
	for _, b := range bases {
		if b == "" {
			continue
		}
		j, jn := jsonInner(b, true), jsonInner(b, false)
		out = append(out, b, url.QueryEscape(b), url.PathEscape(b), j, jn,
			goInner(strconv.Quote(b)), goInner(strconv.QuoteToASCII(b)),
			goInner(strconv.Quote(j)), goInner(strconv.Quote(jn)),
			html.EscapeString(b), templateEscaper.Replace(b), xmlEscape(b))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for a := range 3 {
			if n := (len(v) - a) / 3 * 3; n > 0 {
				out = append(out, enc.EncodeToString([]byte(v[a:a+n])))
			}
		}
	}
	return uniq(out)
}

func uniq(ss []string) []string {
	out := ss[:0]
	for _, s := range ss {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func jsonInner(v string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(v) // a string always encodes
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(out[1 : len(out)-1])
}

func goInner(q string) string { return q[1 : len(q)-1] }

// templateEscaper is html/template's escaping of text and quoted attributes.
var templateEscaper = strings.NewReplacer("\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;")

func xmlEscape(v string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(v)) // a strings.Builder never fails
	return b.String()
}

// Get returns the named secret's value.
func (s *Set) Get(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	v, ok := s.values[name]
	return v, ok
}

// Names lists the secrets, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.values))
	for n := range s.values {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Len is the number of secrets.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.values)
}

// Redact replaces every form of a secret value in str with [secret:NAME],
// and the start or end of one beside a cut.
func (s *Set) Redact(str string) string {
	if s == nil || len(s.forms) == 0 || str == "" {
		return str
	}
	if s.replacer != nil {
		return s.maskCuts(s.replacer.Replace(str))
	}
	return s.maskCuts(s.mask(str))
}

// mask replaces every form found in str. Any occurrence of a form covers
// a window at a multiple of step, so only those are looked up; where forms
// overlap (one secret inside or across another) their union is masked.
func (s *Set) mask(str string) string {
	var found []span
	for p := 0; p+anchor <= len(str); p += s.step {
		k := key(str[p:])
		if !s.maybe(k) {
			continue
		}
		for _, l := range s.windows[k] {
			f := s.forms[l.form]
			if from := p - int(l.at); from >= 0 && strings.HasPrefix(str[from:], f.text) {
				found = append(found, span{from, from + len(f.text), f.mask})
			}
		}
	}
	return replace(str, found)
}

// replace masks the union of spans in str, each run of overlapping spans
// by the mask of its first.
func replace(str string, spans []span) string {
	if len(spans) == 0 {
		return str
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.from != b.from {
			return a.from - b.from
		}
		return b.to - a.to
	})
	var b strings.Builder
	b.Grow(len(str))
	last := 0
	for _, sp := range spans {
		if sp.from < last { // overlaps what is already masked: extend it
			last = max(last, sp.to)
			continue
		}
		b.WriteString(str[last:sp.from])
		b.WriteString(sp.mask)
		last = sp.to
	}
	b.WriteString(str[last:])
	return b.String()
}

// span is a part of a text to mask.
type span struct {
	from, to int
	mask     string
}

// maskCuts masks what is left of a secret beside a cut: a prefix of one of
// its forms just before a "…" or at the very end, a suffix just after a "…"
// or at the very start.
func (s *Set) maskCuts(str string) string {
	var spans []span
	add := func(sp span, ok bool) {
		if ok {
			spans = append(spans, sp)
		}
	}
	add(s.suffixAt(str, 0, edgeMin))
	add(s.prefixEndingAt(str, len(str), edgeMin))
	for i := 0; ; {
		j := strings.Index(str[i:], cutMark)
		if j < 0 {
			break
		}
		at := i + j
		add(s.prefixEndingAt(str, at, markMin))
		add(s.suffixAt(str, at+len(cutMark), markMin))
		i = at + len(cutMark)
	}
	return replace(str, spans)
}

// prefixEndingAt finds the longest part (at least minLen bytes, not a whole
// form) of a form that str[:end] ends with: what a cut after it left.
func (s *Set) prefixEndingAt(str string, end, minLen int) (span, bool) {
	if end < max(minLen, anchor) {
		return span{}, false
	}
	k := key(str[end-anchor:])
	if !s.maybe(k) {
		return span{}, false
	}
	best, bestLen := -1, 0
	for _, l := range s.windows[k] {
		f := s.forms[l.form].text
		stop := int(l.at) + anchor // str[end-anchor:end] == f[at:stop]
		n := anchor
		for n < stop && n < end && str[end-n-1] == f[stop-n-1] {
			n++
		}
		if n >= minLen && n < len(f) && n > bestLen {
			best, bestLen = int(l.form), n
		}
	}
	if best < 0 {
		return span{}, false
	}
	return span{end - bestLen, end, s.forms[best].mask}, true
}

// suffixAt finds the longest part (at least minLen bytes, not a whole form)
// of a form that str[start:] starts with: what a cut before it left (and,
// between two cuts, the middle of a long secret).
func (s *Set) suffixAt(str string, start, minLen int) (span, bool) {
	if len(str)-start < max(minLen, anchor) {
		return span{}, false
	}
	k := key(str[start:])
	if !s.maybe(k) {
		return span{}, false
	}
	best, bestLen := -1, 0
	for _, l := range s.windows[k] {
		f := s.forms[l.form].text[l.at:]
		n := anchor
		for n < len(f) && start+n < len(str) && str[start+n] == f[n] {
			n++
		}
		if n >= minLen && n < len(s.forms[l.form].text) && n > bestLen {
			best, bestLen = int(l.form), n
		}
	}
	if best < 0 {
		return span{}, false
	}
	return span{start, start + bestLen, s.forms[best].mask}, true
}

// String never shows values.
func (s *Set) String() string { return "secret.Set(" + strings.Join(s.Names(), ",") + ")" }

// GoString never shows values, even under %#v.
func (s *Set) GoString() string { return s.String() }

// Format never shows values, whatever the verb (%x of a struct holding a Set
// would otherwise print its fields).
func (s *Set) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }
