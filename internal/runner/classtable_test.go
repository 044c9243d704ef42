package runner

import (
	"net/http"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/result"
)

// TestFailureClassTable is the README's class rule ("Failure classes"),
// row by row: a failed expectation checked on a response, classed by
// FailureClass.
func TestFailureClassTable(t *testing.T) {
	jsonBody := []byte(`{"status":"processing","price":12,"items":[]}`)
	fine := []byte(`{"status":"ok","price":12,"items":[],"errors":[],"error":null}`)
	html := []byte(`<html>oops</html>`)
	tests := []struct {
		expect string
		status int
		body   []byte
		until  bool // an until condition still false when within ran out
		want   result.Class
	}{
		// reads JSON, the body is not JSON
		{`json.status == "success"`, 502, html, false, result.HTTP5xx},
		{`json.status == "success"`, 429, html, false, result.HTTP429},
		{`json.status == "success"`, 404, html, false, result.HTTP4xx},
		{`json.status == "success"`, 200, html, false, result.InvalidJSON},
		{`json.status == "success"`, 302, html, false, result.InvalidJSON},
		// reads status
		{`status == 200`, 503, jsonBody, false, result.HTTP5xx},
		{`status in [200, 201]`, 429, jsonBody, false, result.HTTP429},
		{`status == 200`, 201, jsonBody, false, result.Assertion},
		{`status == 200`, 302, jsonBody, false, result.Assertion},
		// anything on an error status
		{`header.X-Id == "1"`, 500, jsonBody, false, result.HTTP5xx},
		{`json.price == 10`, 404, jsonBody, false, result.HTTP4xx},
		// body or JSON on a 2xx whose body says it failed or is not done
		{`json.status == "success"`, 200, jsonBody, false, result.SwallowedError},
		{`json.price == 10`, 201, jsonBody, false, result.SwallowedError},
		{`len(json.items) > 0`, 200, jsonBody, false, result.SwallowedError},
		{`body contains "done"`, 200, jsonBody, false, result.SwallowedError},
		{`match(body, "ok=(\\d+)") == "1"`, 204, jsonBody, false, result.SwallowedError},
		{`json.total == 10`, 200, []byte(`{"total":0,"error":{"code":"card_declined"}}`), false, result.SwallowedError},
		{`json.total == 10`, 200, []byte(`{"total":0,"errors":["gateway timeout"]}`), false, result.SwallowedError},
		{`json.paid == true`, 200, []byte(`{"paid":false,"ok":false}`), false, result.SwallowedError},
		{`json.id == "A"`, 200, []byte(`{"data":{"payment":{"state":"PAYMENT_FAILED"}}}`), false, result.SwallowedError},
		{`json.id == "A"`, 200, []byte(`{"status":504,"message":"upstream"}`), false, result.SwallowedError},
		{`json.id == "A"`, 200, []byte(`{"code":502}`), false, result.SwallowedError},
		{`json.id == "A"`, 200, []byte(`{"code":10115,"status":200}`), false, result.Assertion}, // a postal code, not a status
		{`json.id == "A"`, 200, []byte(`{"result":"running shoes"}`), false, result.Assertion},  // result is data
		{`json.health == "UP"`, 200, []byte(`{"health":"?","status":"DOWN"}`), false, result.SwallowedError},
		{`json.values.order_status == "confirmed"`, 200, []byte(`{"values":{"order_status":"processing"}}`), false, result.SwallowedError},
		{`json.id == "A"`, 200, []byte(`{"paymentState":"DECLINED"}`), false, result.SwallowedError},
		{`json.id == "A"`, 200, []byte(`{"http-status":503}`), false, result.SwallowedError},
		{`json.id == "A"`, 200, []byte(`{"estate":"pending sale"}`), false, result.Assertion}, // a word ending in "state" is no status
		// body or JSON on a 2xx whose body says nothing of the kind: a value mismatch
		{`json.price == 10`, 201, fine, false, result.Assertion},
		{`len(json.items) > 0`, 200, fine, false, result.Assertion},
		{`json.status == "success"`, 200, []byte(`{"status":"paid"}`), false, result.Assertion},
		{`body contains "done"`, 200, []byte(`all good`), false, result.Assertion},
		{`json.count == 3`, 200, []byte(`{"count":2,"items":[{"status":"failed"}]}`), false, result.Assertion}, // arrays are data
		{`json.n == 1`, 200, []byte(`{"n":2,"a":{"b":{"c":{"status":"error"}}}}`), false, result.Assertion},    // deeper than 3 levels
		// anything else
		{`header.X-Id == "1"`, 200, jsonBody, false, result.Assertion},
		{`duration < 1ms`, 200, jsonBody, false, result.Assertion},
		{`json.status == "success"`, 302, jsonBody, false, result.Assertion},
		{`body contains "done"`, 101, jsonBody, false, result.Assertion},
		// until ran out: timeout, unless the status or a body that is not JSON says more
		{`json.status == "confirmed"`, 200, jsonBody, true, result.Timeout},
		{`json.status == "confirmed"`, 200, fine, true, result.Timeout},
		{`status == 200`, 202, jsonBody, true, result.Timeout},
		{`status == 200`, 503, jsonBody, true, result.HTTP5xx},
		{`json.status == "confirmed"`, 404, jsonBody, true, result.HTTP4xx},
		{`json.status == "confirmed"`, 200, html, true, result.InvalidJSON},
	}
	for _, tt := range tests {
		r := &assert.Response{Status: tt.status, Header: http.Header{"X-Id": {"2"}}, Body: tt.body, Duration: time.Second}
		f, ok := assert.MustCompile(tt.expect).Check(r)
		if ok {
			t.Fatalf("%s on %d: passed, want a failure", tt.expect, tt.status)
		}
		got := FailureClass(r, f)
		if tt.until {
			got = UntilClass(r, f)
		}
		if got != tt.want {
			t.Errorf("%s on %d %s (until %v): class %s, want %s", tt.expect, tt.status, tt.body, tt.until, got, tt.want)
		}
	}
}

// errorWord matches whole words, whatever the case and separators.
func TestErrorWord(t *testing.T) {
	for s, want := range map[string]bool{
		"error": true, "PAYMENT_FAILED": true, "in-progress": true, "Timed out": true, "processing": true, "DOWN": true,
		"ok": false, "success": false, "errorless": false, "confirmed": false, "paid": false, "": false, "downstream": false,
	} {
		if got := errorWord(s); got != want {
			t.Errorf("errorWord(%q) = %v, want %v", s, got, want)
		}
	}
}
