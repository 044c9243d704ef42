package shop

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
)

// Header names shared by shop and gateway.
const (
	headerTraceparent = "Traceparent"
	headerTracestate  = "Tracestate"
	headerRegion      = "X-Prober-Region"
	headerSynthetic   = "X-Prober-Synthetic"
	headerIdemKey     = "Idempotency-Key"
	headerTraceID     = "X-Trace-Id"
)

// traceContext is the W3C trace context of one request as seen by a service.
type traceContext struct {
	traceID      string // 32 lowercase hex
	parentSpanID string // the parent-id received; "" when generated
	spanID       string // this service's own span, sent downstream as parent-id
	sampled      bool
	generated    bool // no valid traceparent was received
	tracestate   string
}

// parseTraceparent parses a traceparent value strictly per W3C Trace Context
// level 1, including the forward-compatibility rule for future versions.
func parseTraceparent(h string) (traceID, parentID string, flags byte, ok bool) {
	if len(h) < 55 {
		return "", "", 0, false
	}
	ver := h[0:2]
	if !isLowerHex(ver) || ver == "ff" {
		return "", "", 0, false
	}
	// Version 00 has exactly four fields; later versions may append fields
	// after a '-', which we ignore.
	if ver == "00" && len(h) != 55 {
		return "", "", 0, false
	}
	if len(h) > 55 && h[55] != '-' {
		return "", "", 0, false
	}
	if h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return "", "", 0, false
	}
	traceID, parentID, fl := h[3:35], h[36:52], h[53:55]
	if !isLowerHex(traceID) || !isLowerHex(parentID) || !isLowerHex(fl) {
		return "", "", 0, false
	}
	if allZero(traceID) || allZero(parentID) {
		return "", "", 0, false
	}
	b, _ := hex.DecodeString(fl)
	return traceID, parentID, b[0], true
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

func allZero(s string) bool { return strings.Trim(s, "0") == "" }

func randomHex(nbytes int) string {
	b := make([]byte, nbytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// newTraceContext derives this service's trace context from the request,
// starting a fresh trace when the received one is absent or malformed.
func newTraceContext(h http.Header) traceContext {
	tc := traceContext{spanID: randomHex(8)}
	// More than one traceparent header is invalid per W3C.
	if vals := h.Values(headerTraceparent); len(vals) == 1 {
		if tid, pid, flags, ok := parseTraceparent(strings.TrimSpace(vals[0])); ok {
			tc.traceID, tc.parentSpanID, tc.sampled = tid, pid, flags&1 == 1
			// tracestate is only meaningful alongside a valid traceparent.
			tc.tracestate = strings.Join(h.Values(headerTracestate), ",")
			return tc
		}
	}
	tc.traceID, tc.generated, tc.sampled = randomHex(16), true, true
	return tc
}

// traceparent is the header value to send downstream: same trace, our span.
func (tc traceContext) traceparent() string {
	flags := "00"
	if tc.sampled {
		flags = "01"
	}
	return "00-" + tc.traceID + "-" + tc.spanID + "-" + flags
}

// isSynthetic reports whether the request says it comes from a prober.
func isSynthetic(h http.Header) bool {
	if len(h.Values(headerSynthetic)) > 0 {
		return true
	}
	for _, v := range h.Values(headerTracestate) {
		for member := range strings.SplitSeq(v, ",") {
			key, _, found := strings.Cut(strings.TrimSpace(member), "=")
			if found && key == "prober" {
				return true
			}
		}
	}
	return false
}
