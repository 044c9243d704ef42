package runner

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/result"
)

// A flow that sets Accept-Encoding itself gets the body as the server
// encoded it (Go's transport decodes only what it asked for): expectations
// and captures must read it decoded, within body_limit once decoded.
func TestEncodedBodies(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	zl := func(b []byte) []byte {
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	jsonBody := []byte(`{"status":"success","order":{"id":"A-1"}}`)
	gzJSON := gz(jsonBody)
	bomb := gz(make([]byte, 8<<20)) // 8 MiB of zeros: a few KiB on the wire
	corrupt := append([]byte(nil), gzJSON...)
	copy(corrupt[12:], "garbage-garbage")
	serve := func(enc string, b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if enc != "" {
				w.Header().Set("Content-Encoding", enc)
			}
			w.Write(b)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/gzip", serve("gzip", gzJSON))
	mux.Handle("/deflate", serve("deflate", zl(jsonBody)))
	mux.Handle("/bomb", serve("gzip", bomb))
	mux.Handle("/corrupt", serve("gzip", corrupt))
	mux.Handle("/stacked", serve("gzip, br", gzJSON))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		path  string
		class result.Class
		msg   string
	}{
		{"/gzip", result.OK, ""},
		{"/deflate", result.OK, ""},
		{"/bomb", result.BodyTooLarge, "body larger than the 1 MiB limit once decoded (Content-Encoding: gzip"},
		{"/corrupt", result.Network, "cannot decode the body (Content-Encoding: gzip"},
		{"/stacked", result.InvalidJSON, ""}, // not decoded: a coding we do not know is on top
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			st := withHeader(newStep("s", "GET", srv.URL+tt.path, "status == 200", `json.status == "success"`),
				"Accept-Encoding", "gzip, deflate")
			withCapture(st, "order_id", "json.order.id")
			res := mustRun(t, newFlow(st), Options{})
			s := res.Steps[0]
			if s.Class != tt.class {
				t.Fatalf("class %q, want %q (%v)", s.Class, tt.class, s.Failures)
			}
			if tt.msg != "" && (len(s.Failures) == 0 || !strings.Contains(s.Failures[0].Message, tt.msg)) {
				t.Fatalf("failures %v, want %q", s.Failures, tt.msg)
			}
			if tt.path == "/gzip" {
				if s.BodyBytes != int64(len(gzJSON)) {
					t.Errorf("body bytes %d, want the %d received", s.BodyBytes, len(gzJSON))
				}
			}
			if tt.path == "/bomb" && s.BodyBytes != int64(len(bomb)) {
				t.Errorf("body bytes %d, want the %d received", s.BodyBytes, len(bomb))
			}
		})
	}
}
