package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// shotRun is a failed run of flow whose step has a screenshot of png.
func shotRun(flow string, i int, png []byte) *result.Run {
	r := timed(flow, t0.Add(time.Duration(i)*time.Minute), time.Second, false, i)
	r.Steps[0].SpanID = fmt.Sprintf("%016x", 1000+i)
	r.Steps[0].Screenshot = &result.Screenshot{PNG: png, Bytes: len(png), Width: 640, Height: 400}
	return r
}

// TestScreenshotsBounded: the store keeps the bytes of the newest
// MaxScreenshots screenshots over all flows, serves them by trace and
// span, and keeps every run's screenshot size; the runs it was given are
// not changed, and the archive keeps no bytes.
func TestScreenshotsBounded(t *testing.T) {
	s := New(100)
	a := openArchive(t, filepath.Join(t.TempDir(), "history.db"), ArchiveLimits{RunAge: 400 * 24 * time.Hour})
	var runs []*result.Run
	for i := range MaxScreenshots + 3 {
		png := bytes.Repeat([]byte{byte(i)}, 100+i)
		r := shotRun([]string{"a", "b"}[i%2], i, png)
		runs = append(runs, r)
		s.Observe(r)
		a.Observe(r)
	}
	for i, r := range runs {
		png, ok := s.Screenshot(r.TraceID, r.Steps[0].SpanID)
		if old := i < 3; ok == old {
			t.Errorf("run %d: screenshot kept %v, want %v", i, ok, !old)
		} else if ok && (len(png) != 100+i || png[0] != byte(i)) {
			t.Errorf("run %d: got %d bytes of %d", i, len(png), png[0])
		}
		if r.Steps[0].Screenshot.PNG == nil {
			t.Errorf("run %d: the observed run lost its bytes", i)
		}
	}
	for _, flow := range []string{"a", "b"} {
		for _, r := range s.Recent(flow, 0) {
			sh := r.Steps[0].Screenshot
			if sh == nil || sh.PNG != nil || sh.Bytes < 100 || sh.Width != 640 {
				t.Errorf("%s: kept screenshot %+v, want its size without bytes", flow, sh)
			}
		}
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, r := range a.Recent("a", 100) {
		if sh := r.Steps[0].Screenshot; sh == nil || sh.PNG != nil || sh.Bytes < 100 {
			t.Errorf("archived screenshot %+v, want its size without bytes", sh)
		}
	}
	if _, ok := s.Screenshot(runs[5].TraceID, "0000000000000001"); ok {
		t.Error("a screenshot under another span")
	}
}
