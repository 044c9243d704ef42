package rulekind

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxSummary is PagerDuty's limit on a summary.
const maxSummary = 1024

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// percent shows a ratio as a percentage a person reads at a glance (99.8%,
// 12.5%, 0%), with more digits only where rounding would lie: 99.96% is
// not "100%", and 0.04% is not "0%".
func percent(r float64) string {
	if math.IsNaN(r) {
		return "NaN"
	}
	p := r * 100
	if p == 0 || p == 100 || math.IsInf(p, 0) {
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	}
	digits := 1
	for ; digits < 4; digits++ {
		s := strconv.FormatFloat(p, 'f', digits, 64)
		if v, _ := strconv.ParseFloat(s, 64); v != 0 && v != 100 {
			break
		}
	}
	s := strconv.FormatFloat(p, 'f', digits, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + "%"
}

// number shows a plain value with about four significant digits and no
// exponent for everyday magnitudes: 0.21, 0.002, 1234, 1.5e+09.
func number(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case a >= 1e4 && a < 1e12:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
}

// times shows a burn rate: 20.1x, 6x, 144x.
func times(v float64) string {
	var s string
	switch a := math.Abs(v); {
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + "x"
}

// human rounds a duration for people: 45s, 2m, 47m, 1h5m, 2d3h.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	}
	m := int(d.Round(time.Minute) / time.Minute)
	switch {
	case m < 60:
		return fmt.Sprintf("%dm", m)
	case m < 24*60:
		if m%60 == 0 {
			return fmt.Sprintf("%dh", m/60)
		}
		return fmt.Sprintf("%dh%dm", m/60, m%60)
	}
	h := int(d.Round(time.Hour) / time.Hour)
	if h%24 == 0 {
		return fmt.Sprintf("%dd", h/24)
	}
	return fmt.Sprintf("%dd%dh", h/24, h%24)
}

// span shows a configured window exactly, without zero units: 5m, 1h30m,
// 20s, 3d.
func span(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// latency shows a measured duration with three significant digits: 2.31s,
// 350ms, 1.25ms.
func latency(d time.Duration) string {
	var r time.Duration
	switch a := d.Abs(); {
	case a >= 100*time.Second:
		r = time.Second
	case a >= 10*time.Second:
		r = 100 * time.Millisecond
	case a >= time.Second:
		r = 10 * time.Millisecond
	case a >= 100*time.Millisecond:
		r = time.Millisecond
	case a >= 10*time.Millisecond:
		r = 100 * time.Microsecond
	case a >= time.Millisecond:
		r = 10 * time.Microsecond
	default:
		r = time.Microsecond
	}
	return d.Round(r).String()
}

// quantileName is p95, p99.9, p50.
func quantileName(q float64) string {
	return "p" + strconv.FormatFloat(q*100, 'f', -1, 64)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// labelString is {a="x", b="y"}, sorted, for a PromQL series in a summary.
func labelString(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, l[k])
	}
	b.WriteByte('}')
	return b.String()
}

// The formats pages use, for the engine's own text (signals, summaries).
var (
	Percent  = percent
	Number   = number
	Latency  = latency
	Truncate = truncate
)

// MaxSummary is PagerDuty's limit on a summary.
const MaxSummary = maxSummary
