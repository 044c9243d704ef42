package runner

import (
	"encoding/json"
	"strings"
)

// maxSwallowScan bounds the body bodySaysError decodes: it runs only on a
// failed expectation, but a 2xx of many megabytes must not cost that much
// per failure.
const maxSwallowScan = 1 << 20

// bodySaysError reports whether a JSON body says, in a status-like field,
// that the request failed or has not finished: the mark of a swallowed
// error (a gateway's 504 answered as 200 {"status":"processing"}). It looks
// at objects down to maxSwallowDepth levels, not into arrays (a list of
// past payments may hold a failed one without this answer being one):
//
//   - status, state, outcome, phase, or a name ending in one of them
//     (order_status, paymentState): a string with an error, failure or
//     pending word ("error", "failed", "processing", "pending", "timeout",
//     "declined", "down", ...), or an HTTP error status (400-599);
//   - code, status_code, statusCode: an HTTP error status (400-599);
//   - success, ok: false;
//   - error, errors, fault, failure: present and not empty (null, false,
//     "", [] and {} are empty).
func bodySaysError(body []byte) bool {
	if len(body) == 0 || len(body) > maxSwallowScan {
		return false
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	return saysError(v, 0)
}

const maxSwallowDepth = 3

func saysError(v any, depth int) bool {
	obj, ok := v.(map[string]any)
	if !ok || depth >= maxSwallowDepth {
		return false
	}
	for k, fv := range obj {
		lk := strings.ToLower(k)
		if statusKey(k, lk) {
			lk = "status"
		}
		switch lk {
		case "status":
			switch x := fv.(type) {
			case string:
				if errorWord(x) {
					return true
				}
			case float64:
				if errorStatus(x) {
					return true
				}
			}
		case "code", "status_code", "statuscode":
			if x, ok := fv.(float64); ok && errorStatus(x) {
				return true
			}
		case "success", "ok":
			if x, ok := fv.(bool); ok && !x {
				return true
			}
		case "error", "errors", "fault", "failure":
			if !empty(fv) {
				return true
			}
		}
		if saysError(fv, depth+1) {
			return true
		}
	}
	return false
}

// statusWords name a field that holds a state; a key is status-like when
// it is one of them or ends in one after a separator or a camel-case
// hump: order_status, payment-state, paymentStatus (not "estate").
var statusWords = []string{"status", "state", "outcome", "phase"}

func statusKey(k, lower string) bool {
	for _, w := range statusWords {
		if lower == w {
			return true
		}
		if n := len(lower) - len(w); n > 0 && lower[n:] == w {
			if c := lower[n-1]; c == '_' || c == '-' || c == '.' || len(k) == len(lower) && k[n] >= 'A' && k[n] <= 'Z' {
				return true
			}
		}
	}
	return false
}

// errorStatus tells a number that reads as an HTTP error status; a larger
// one is more likely data (a product or postal code).
func errorStatus(x float64) bool { return x >= 400 && x < 600 }

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// errorWords are the words of a status value that say failed or not done.
var errorWords = map[string]bool{
	"error": true, "errored": true, "err": true, "fail": true, "failed": true, "failure": true, "failing": true,
	"pending": true, "processing": true, "queued": true, "running": true, "waiting": true, "progress": true,
	"timeout": true, "timedout": true, "timed": true, "expired": true,
	"unavailable": true, "declined": true, "rejected": true, "denied": true, "aborted": true,
	"down": true, "unhealthy": true, "degraded": true, "ko": true, "nok": true,
}

// errorWord reports whether s holds one of errorWords as a word
// ("PAYMENT_FAILED", "in-progress", "Timed out" do; "errorless" does not).
func errorWord(s string) bool {
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		if errorWords[w] {
			return true
		}
	}
	return false
}
