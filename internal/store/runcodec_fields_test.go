package store

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// fillAll sets every field reachable from v to a distinct non-zero value
// (slices and maps get one element), so that a field the codec forgets
// comes back zero and differs.
func fillAll(t *testing.T, v reflect.Value, n *int) {
	*n++
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Unix(1_800_000_000+int64(*n), int64(*n)).UTC()))
		return
	case reflect.TypeFor[time.Duration]():
		v.SetInt(int64(*n) * 1001)
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("value-%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n))
	case reflect.Uint8:
		v.SetUint(uint64(*n))
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillAll(t, p.Elem(), n)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				t.Fatalf("%s has an unexported field %s: fill it by hand", v.Type(), v.Type().Field(i).Name)
			}
			fillAll(t, v.Field(i), n)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillAll(t, s.Index(0), n)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillAll(t, k, n)
		fillAll(t, e, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	default:
		t.Fatalf("fillAll: %s of kind %s: teach the test (and the codec) this type", v.Type(), v.Kind())
	}
}

// diffPaths lists the fields where got and want differ.
func diffPaths(got, want reflect.Value, path string, out *[]string) {
	if got.Type() == reflect.TypeFor[time.Time]() {
		if !got.Interface().(time.Time).Equal(want.Interface().(time.Time)) {
			*out = append(*out, path)
		}
		return
	}
	switch got.Kind() {
	case reflect.Pointer:
		if got.IsNil() != want.IsNil() {
			*out = append(*out, fmt.Sprintf("%s (nil %v, want nil %v)", path, got.IsNil(), want.IsNil()))
		} else if !got.IsNil() {
			diffPaths(got.Elem(), want.Elem(), path, out)
		}
	case reflect.Struct:
		for i := range got.NumField() {
			diffPaths(got.Field(i), want.Field(i), path+"."+got.Type().Field(i).Name, out)
		}
	case reflect.Slice:
		if got.Len() != want.Len() {
			*out = append(*out, fmt.Sprintf("%s (len %d, want %d)", path, got.Len(), want.Len()))
			return
		}
		for i := range got.Len() {
			diffPaths(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			*out = append(*out, fmt.Sprintf("%s (got %v, want %v)", path, got.Interface(), want.Interface()))
		}
	}
}

// TestRunCodecEveryField fills every field of result.Run, its steps,
// timings, failures and attributes by reflection and checks that each one
// comes back from the codec: a field added to the result types without a
// line in runcodec.go fails here, by name.
func TestRunCodecEveryField(t *testing.T) {
	var r result.Run
	n := 0
	fillAll(t, reflect.ValueOf(&r).Elem(), &n)
	got := decodeRun(appendRun(nil, &r), r.Flow, r.Labels)
	// Not stored, on purpose: a step's attempt log is for the spans, which
	// tracing makes from the live run before the store sees it; kept in
	// the ring it would cost up to 16 attempts a step for a page that
	// shows none. It must come back empty, not half-kept.
	for i := range got.Steps {
		if got.Steps[i].AttemptLog != nil {
			t.Errorf("Run.Steps[%d].AttemptLog came back from the store, which must not keep it", i)
		}
	}
	for i := range r.Steps {
		r.Steps[i].AttemptLog = nil
	}
	var diffs []string
	diffPaths(reflect.ValueOf(*got), reflect.ValueOf(r), "Run", &diffs)
	for _, d := range diffs {
		t.Errorf("field %s does not round-trip through the run codec", d)
	}
}

// TestRunCodecOlderEncoding: a run encoded by the codec of the release
// before kept responses (a tls step with attributes and a failed HTTP
// step) decodes as it was (in memory and from the run history on disk),
// and the same run with a kept response round-trips.
func TestRunCodecOlderEncoding(t *testing.T) {
	const old = "000100f067aa0ba902b7024bf92f3577b34da6a3ce929d0e0e473600000265758080a0bbd29df1fa310080d0acf30e066661696c65640a037061790002800463657274000100f067aa0ba902b803544c530e746c733a2f2f73686f703a343433067061737365640100020000000000000000000003746c73010e636572742e6e6f745f616674657214323032372d30312d30325430333a30343a30355a0003706179000100f067aa0ba902b904504f53540f687474703a2f2f73686f702f706179066661696c65640aee0702000000000000000084010100000a73746174757320353033"
	t0 := time.Unix(1_800_000_000, 0).UTC()
	want := &result.Run{Flow: "checkout", ID: "00f067aa0ba902b7", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Region: "eu", Start: t0, Planned: t0,
		Duration: 2 * time.Second, Status: result.Failed, Class: result.HTTP5xx, FailedStep: "pay",
		Steps: []result.Step{
			{Name: "cert", Kind: "tls", Method: "TLS", URL: "tls://shop:443", SpanID: "00f067aa0ba902b8", Status: result.Passed, Class: result.OK, Attempts: 1, Start: t0,
				Attrs: []result.Attr{{Name: "cert.not_after", Value: "2027-01-02T03:04:05Z"}}},
			{Name: "pay", Method: "POST", URL: "http://shop/pay", SpanID: "00f067aa0ba902b9", Status: result.Failed, Class: result.HTTP5xx, HTTPStatus: 503, Attempts: 1, Start: t0,
				BodyBytes: 66, Failures: []result.Failure{{Message: "status 503"}}},
		}}
	enc, err := hex.DecodeString(old)
	if err != nil {
		t.Fatal(err)
	}
	var diffs []string
	diffPaths(reflect.ValueOf(*decodeRun(enc, "checkout", nil)), reflect.ValueOf(*want), "Run", &diffs)
	for _, d := range diffs {
		t.Errorf("older encoding: field %s", d)
	}
	// Encoded since compactly (encCompact): the same run, in fewer bytes.
	// The run history on disk holds the older encoding behind version 1.
	if now := appendRun(nil, want); len(now) >= len(enc) || !sameRun(decodeRun(now, "checkout", nil), want) {
		t.Errorf("encoded now: %d bytes (before: %d), decoded as %+v", len(now), len(enc), decodeRun(now, "checkout", nil))
	}
	if r, ok := decodeArchived(append([]byte{archiveRunV1, 0}, enc...), "checkout"); !ok || !sameRun(r, want) {
		t.Errorf("a stored run of version 1: ok %v, %+v", ok, r)
	}
	want.Steps[1].Response = &result.Response{Proto: "HTTP/1.1", Status: 503, Truncated: true,
		Headers: []result.Attr{{Name: "Retry-After", Value: "5"}}, Body: []byte("\x00gateway \xff timeout")}
	diffs = nil
	diffPaths(reflect.ValueOf(*decodeRun(appendRun(nil, want), "checkout", nil)), reflect.ValueOf(*want), "Run", &diffs)
	for _, d := range diffs {
		t.Errorf("kept response: field %s", d)
	}
}
