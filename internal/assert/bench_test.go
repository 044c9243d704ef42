package assert

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// benchBody is a realistic ~1 KB API response.
func benchBody() []byte {
	var items []string
	for i := range 6 {
		items = append(items, fmt.Sprintf(`{"id":%d,"sku":"SKU-%05d","name":"Item number %d","price":%d.99,"tags":["a","b"],"in_stock":true}`, i+1, i*7919, i, 10+i))
	}
	body := `{"status":"success","request_id":"3f2b9c1e-8d4a-4b7e-9a61-2c5d8e7f0a13","data":{"page":1,"total":6,"items":[` +
		strings.Join(items, ",") + `]},"meta":{"region":"eu-west-1","took_ms":12,"cache":"miss"},"token":"eyJhbGciOiJIUzI1NiJ9.abc.def"}`
	return []byte(body)
}

var benchExpect = []string{
	`status == 200`,
	`json.status == "success"`,
	`json.data.total >= 1`,
	`len(json.data.items) == 6`,
	`json.meta.region in ["eu-west-1", "us-east-1"]`,
}

func BenchmarkCheckStatus(b *testing.B) {
	e := MustCompile(`status == 200`)
	r := &Response{Status: 200}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := e.Check(r); !ok {
			b.Fatal("failed")
		}
	}
}

func BenchmarkCheckHeader(b *testing.B) {
	e := MustCompile(`header.Content-Type contains "json"`)
	r := &Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := e.Check(r); !ok {
			b.Fatal("failed")
		}
	}
}

// BenchmarkCheckJSON checks the 5-clause list against a ~1 KB body. "fresh"
// is a new response each time (one validation of the body, then five
// lookups); "cached" is the lookups alone.
func BenchmarkCheckJSON(b *testing.B) {
	var es []*Expectation
	for _, s := range benchExpect {
		es = append(es, MustCompile(s))
	}
	r := &Response{Status: 200, Body: benchBody(), Duration: 30 * time.Millisecond}
	b.Logf("body: %d bytes", len(r.Body))
	run := func(b *testing.B, fresh bool) {
		b.ReportAllocs()
		for b.Loop() {
			if fresh {
				r.json = jsonCache{}
			}
			for _, e := range es {
				if f, ok := e.Check(r); !ok {
					b.Fatal(f.Message)
				}
			}
		}
	}
	b.Run("fresh", func(b *testing.B) { run(b, true) })
	b.Run("cached", func(b *testing.B) { run(b, false) })
}

// BenchmarkCheckJSONOne is the single check `json.status == "success"`.
func BenchmarkCheckJSONOne(b *testing.B) {
	e := MustCompile(`json.status == "success"`)
	r := &Response{Status: 200, Body: []byte(`{"status":"success","id":42,"items":[1,2,3]}`)}
	b.ReportAllocs()
	for b.Loop() {
		r.json = jsonCache{}
		if _, ok := e.Check(r); !ok {
			b.Fatal("failed")
		}
	}
}

func BenchmarkCheckFailure(b *testing.B) {
	e := MustCompile(`json.status == "done"`)
	r := &Response{Status: 200, Body: benchBody()}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := e.Check(r); ok {
			b.Fatal("passed")
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range benchExpect {
			if _, err := Compile(s); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkValueEval(b *testing.B) {
	v, err := CompileValue(`json.token`)
	if err != nil {
		b.Fatal(err)
	}
	r := &Response{Status: 200, Body: benchBody()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Eval(r); err != nil {
			b.Fatal(err)
		}
	}
}
