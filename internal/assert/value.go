package assert

import (
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// kind is the run-time type of a value.
type kind uint8

const (
	kNone kind = iota
	kNumber
	kString
	kBool
	kNull
	kDuration
	kArray
	kObject
)

// kindNames are the names used in messages, with their article.
var kindNames = [...]string{
	kNone:     "nothing",
	kNumber:   "a number",
	kString:   "a string",
	kBool:     "a boolean",
	kNull:     "null",
	kDuration: "a duration",
	kArray:    "an array",
	kObject:   "an object",
}

func (k kind) String() string { return kindNames[k] }

// numForm says how exactly a number is held. Integers are kept exact so that
// IDs beyond 2^53 compare correctly; everything else is a float64.
type numForm uint8

const (
	numInt   numForm = iota // i holds it exactly
	numFloat                // f holds it
	numBig                  // an integer beyond int64: s holds its decimal digits (with "-")
)

// value is a run-time value. It lives on the caller's stack and is filled
// in through a pointer, so checks do not allocate.
type value struct {
	k    kind
	form numForm
	b    bool
	i    int64   // kNumber numInt, kDuration
	f    float64 // kNumber (all forms; approximate for numBig)
	s    string  // kString text; kNumber raw text or ""; kArray/kObject raw JSON
}

// Values are filled in through pointers rather than returned: returning
// this struct by value costs several times more on the hot path (the
// compiler spills it field by field, then copies it as a block).

func (v *value) setInt(i int64) {
	*v = value{k: kNumber, form: numInt, i: i, f: float64(i)}
}

// setNumber classifies the text of a JSON number.
func (v *value) setNumber(raw string, f float64) {
	if i, ok := parseInt(raw); ok {
		*v = value{k: kNumber, form: numInt, i: i, f: float64(i), s: raw}
	} else if isIntText(raw) {
		*v = value{k: kNumber, form: numBig, f: f, s: raw}
	} else {
		*v = value{k: kNumber, form: numFloat, f: f, s: raw}
	}
}

// setResult converts a gjson result that exists. Strings may alias the body.
func (v *value) setResult(res gjson.Result) {
	switch res.Type {
	case gjson.String:
		*v = value{k: kString, s: res.Str}
	case gjson.Number:
		v.setNumber(res.Raw, res.Num)
	case gjson.True:
		*v = value{k: kBool, b: true}
	case gjson.False:
		*v = value{k: kBool}
	case gjson.Null:
		*v = value{k: kNull}
	default:
		*v = value{k: kObject, s: res.Raw}
		if len(res.Raw) > 0 && res.Raw[0] == '[' {
			v.k = kArray
		}
	}
}

// fromResult is setResult for the paths where speed does not matter.
func fromResult(res gjson.Result) value {
	var v value
	v.setResult(res)
	return v
}

// isIntText reports whether s is -?[0-9]+.
func isIntText(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseInt parses -?[0-9]+ into an int64 without allocating (strconv's
// errors allocate), reporting false on other syntax or overflow.
func parseInt(s string) (int64, bool) {
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var u uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	// 19 digits cannot overflow uint64, so only the int64 range is left.
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// cmpNum compares two numbers: -1, 0 or 1.
func cmpNum(a, b *value) int {
	if a.form == numInt && b.form == numInt {
		return cmp3(a.i < b.i, a.i > b.i)
	}
	if a.form != numFloat && b.form != numFloat {
		// Both integers, at least one beyond int64: compare exactly.
		if a.form == numBig && b.form == numBig {
			return cmpBig(a.s, b.s)
		}
		if a.form == numBig {
			return bigSign(a.s)
		}
		return -bigSign(b.s)
	}
	return cmp3(a.f < b.f, a.f > b.f)
}

func cmp3(less, more bool) int {
	switch {
	case less:
		return -1
	case more:
		return 1
	}
	return 0
}

// bigSign is the sign of an integer too large for int64, which is also how
// it compares with any int64.
func bigSign(s string) int {
	if s[0] == '-' {
		return -1
	}
	return 1
}

// cmpBig compares decimal integers without leading zeros.
func cmpBig(a, b string) int {
	an, bn := a[0] == '-', b[0] == '-'
	if an != bn {
		if an {
			return -1
		}
		return 1
	}
	c := 0
	switch {
	case len(a) != len(b):
		c = cmp3(len(a) < len(b), len(a) > len(b))
	case a != b:
		c = cmp3(a < b, a > b)
	}
	if an {
		return -c
	}
	return c
}

// equal reports whether a equals b, and whether they could be compared at
// all. null is comparable with everything and equal only to null; other
// kinds must match.
func equal(a, b *value) (eq, comparable bool) {
	if a.k == kNull || b.k == kNull {
		return a.k == b.k, true
	}
	if a.k != b.k {
		return false, false
	}
	switch a.k {
	case kNumber:
		return cmpNum(a, b) == 0, true
	case kString:
		return a.s == b.s, true
	case kBool:
		return a.b == b.b, true
	case kDuration:
		return a.i == b.i, true
	case kArray, kObject:
		return jsonEqual(gjson.Parse(a.s), gjson.Parse(b.s)), true
	}
	return false, false
}

// jsonEqual is deep equality of two JSON values: numbers numerically,
// objects regardless of key order. It allocates, but it is only reached when
// two JSON arrays or objects are compared, which is rare.
func jsonEqual(a, b gjson.Result) bool {
	va, vb := fromResult(a), fromResult(b)
	if va.k != vb.k {
		return false
	}
	switch va.k {
	case kArray:
		ea, eb := a.Array(), b.Array()
		if len(ea) != len(eb) {
			return false
		}
		for i := range ea {
			if !jsonEqual(ea[i], eb[i]) {
				return false
			}
		}
		return true
	case kObject:
		ma, mb := a.Map(), b.Map()
		if len(ma) != len(mb) {
			return false
		}
		for k, x := range ma {
			y, ok := mb[k]
			if !ok || !jsonEqual(x, y) {
				return false
			}
		}
		return true
	}
	eq, _ := equal(&va, &vb)
	return eq
}

// count is the number of elements of a JSON array or keys of an object.
func count(raw string) int {
	n := 0
	gjson.Parse(raw).ForEach(func(_, _ gjson.Result) bool {
		n++
		return true
	})
	return n
}

// render is a value as text for templating. It copies anything that may
// alias the body, since the body buffer is reused.
func (v value) render() string {
	switch v.k {
	case kString:
		return strings.Clone(v.s)
	case kArray, kObject:
		// The whole document may carry trailing white space.
		return strings.Clone(strings.TrimSpace(v.s))
	case kNumber:
		return v.numText()
	case kBool:
		return strconv.FormatBool(v.b)
	case kNull:
		return "null"
	case kDuration:
		return time.Duration(v.i).String()
	}
	return ""
}

// numText is a number in its shortest exact form: the JSON text when it came
// from JSON, so that 42000000 does not become 4.2e+07.
func (v value) numText() string {
	if v.s != "" {
		return strings.Clone(v.s)
	}
	switch v.form {
	case numInt:
		return strconv.FormatInt(v.i, 10)
	}
	return strconv.FormatFloat(v.f, 'g', -1, 64)
}
