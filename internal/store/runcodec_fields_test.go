package store

import (
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
	var diffs []string
	diffPaths(reflect.ValueOf(*got), reflect.ValueOf(r), "Run", &diffs)
	for _, d := range diffs {
		t.Errorf("field %s does not round-trip through the run codec", d)
	}
}
