package runner

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

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
	br := func(b []byte) []byte {
		var buf bytes.Buffer
		// The largest window a decoder may have to keep (16 MiB).
		w := brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: 1, LGWin: 24})
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
	brJSON := br(jsonBody)
	brBomb := br(make([]byte, 64<<20))  // 64 MiB of zeros: a few KiB on the wire
	brCorrupt := brJSON[:len(brJSON)-2] // cut short
	mux.Handle("/br", serve("br", brJSON))
	mux.Handle("/br-bomb", serve("br", brBomb))
	mux.Handle("/br-corrupt", serve("br", brCorrupt))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		path, accept string
		class        result.Class
		msg          string
	}{
		{"/gzip", "gzip, deflate", result.OK, ""},
		{"/deflate", "gzip, deflate", result.OK, ""},
		{"/bomb", "gzip, deflate", result.BodyTooLarge, "body larger than the 1 MiB limit once decoded (Content-Encoding: gzip"},
		{"/corrupt", "gzip, deflate", result.Network, "cannot decode the body (Content-Encoding: gzip"},
		{"/stacked", "gzip, deflate", result.InvalidJSON, ""}, // not decoded: a coding we do not know is on top
		{"/br", "br", result.OK, ""},
		{"/br-bomb", "br", result.BodyTooLarge, "body larger than the 1 MiB limit once decoded (Content-Encoding: br"},
		{"/br-corrupt", "gzip, deflate, br", result.Network, "cannot decode the body (Content-Encoding: br"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			st := withHeader(newStep("s", "GET", srv.URL+tt.path, "status == 200", `json.status == "success"`),
				"Accept-Encoding", tt.accept)
			withCapture(st, "order_id", "json.order.id")
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			res := mustRun(t, newFlow(st), Options{ShowCaptures: true})
			runtime.ReadMemStats(&m1)
			s := res.Steps[0]
			// A bomb costs the limit and the decoder's window (16 MiB at
			// most for br), not what it would decode to (64 MiB).
			if alloc := m1.TotalAlloc - m0.TotalAlloc; strings.HasSuffix(tt.path, "bomb") {
				t.Logf("%s: %d bytes on the wire, %.1f MiB allocated", tt.path, s.BodyBytes, float64(alloc)/(1<<20))
				if alloc > 40<<20 {
					t.Errorf("the bomb allocated %d MiB", alloc>>20)
				}
			}
			if s.Class != tt.class {
				t.Fatalf("class %q, want %q (%v)", s.Class, tt.class, s.Failures)
			}
			if tt.msg != "" && (len(s.Failures) == 0 || !strings.Contains(s.Failures[0].Message, tt.msg)) {
				t.Fatalf("failures %v, want %q", s.Failures, tt.msg)
			}
			if tt.class == result.OK {
				if !slices.Contains(s.Attrs, result.Attr{Name: "capture order_id", Value: `"A-1"`}) {
					t.Errorf("order_id not captured from the decoded body: %v", s.Attrs)
				}
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
