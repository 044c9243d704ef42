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
	html := []byte(`<html>oops</html>`)
	tests := []struct {
		expect string
		status int
		body   []byte
		want   result.Class
	}{
		// reads JSON, the body is not JSON
		{`json.status == "success"`, 502, html, result.HTTP5xx},
		{`json.status == "success"`, 429, html, result.HTTP429},
		{`json.status == "success"`, 404, html, result.HTTP4xx},
		{`json.status == "success"`, 200, html, result.InvalidJSON},
		{`json.status == "success"`, 302, html, result.InvalidJSON},
		// reads status
		{`status == 200`, 503, jsonBody, result.HTTP5xx},
		{`status in [200, 201]`, 429, jsonBody, result.HTTP429},
		{`status == 200`, 201, jsonBody, result.Assertion},
		{`status == 200`, 302, jsonBody, result.Assertion},
		// anything on an error status
		{`header.X-Id == "1"`, 500, jsonBody, result.HTTP5xx},
		{`json.price == 10`, 404, jsonBody, result.HTTP4xx},
		// body or JSON on a 2xx
		{`json.status == "success"`, 200, jsonBody, result.SwallowedError},
		{`json.price == 10`, 201, jsonBody, result.SwallowedError},
		{`len(json.items) > 0`, 200, jsonBody, result.SwallowedError},
		{`body contains "done"`, 200, jsonBody, result.SwallowedError},
		{`match(body, "ok=(\\d+)") == "1"`, 204, jsonBody, result.SwallowedError},
		// anything else
		{`header.X-Id == "1"`, 200, jsonBody, result.Assertion},
		{`duration < 1ms`, 200, jsonBody, result.Assertion},
		{`json.status == "success"`, 302, jsonBody, result.Assertion},
		{`body contains "done"`, 101, jsonBody, result.Assertion},
	}
	for _, tt := range tests {
		r := &assert.Response{Status: tt.status, Header: http.Header{"X-Id": {"2"}}, Body: tt.body, Duration: time.Second}
		f, ok := assert.MustCompile(tt.expect).Check(r)
		if ok {
			t.Fatalf("%s on %d: passed, want a failure", tt.expect, tt.status)
		}
		if got := FailureClass(tt.status, f); got != tt.want {
			t.Errorf("%s on %d: class %s, want %s", tt.expect, tt.status, got, tt.want)
		}
	}
}
