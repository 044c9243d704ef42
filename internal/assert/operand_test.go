package assert

import (
	"strings"
	"testing"
	"time"
)

var tlsOps = Operands{
	"cert.expires_in": DurationOperand,
	"cert.issuer":     StringOperand,
	"tls.verified":    BoolOperand,
	"cert.chain":      NumberOperand,
}

func TestKindOperands(t *testing.T) {
	var r Response
	r.SetDuration("cert.expires_in", 48*time.Hour)
	r.SetString("cert.issuer", "CN=Test CA")
	r.SetBool("tls.verified", true)
	r.SetInt("cert.chain", 2)
	for _, tc := range []struct {
		src  string
		ok   bool
		want string // the failure message, when it fails
	}{
		{"cert.expires_in > 24h", true, ""},
		{"cert.expires_in > 720h", false, "cert.expires_in > 720h: got 48h0m0s"},
		{`cert.issuer contains "Test"`, true, ""},
		{`cert.issuer == "x"`, false, `cert.issuer == "x": got "CN=Test CA"`},
		{"tls.verified", true, ""},
		{"!tls.verified", false, ""},
		{"cert.chain == 2", true, ""},
		{"len(cert.issuer) == 10", true, ""},
	} {
		e, err := CompileWith(tc.src, tlsOps)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if e.Sources()&SourceAttr == 0 {
			t.Errorf("%s: Sources %b lacks SourceAttr", tc.src, e.Sources())
		}
		f, ok := e.Check(&r)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v (%s)", tc.src, ok, tc.ok, f.Message)
		}
		if tc.want != "" && f.Message != tc.want {
			t.Errorf("%s: message %q, want %q", tc.src, f.Message, tc.want)
		}
	}
	// Not set: missing, like an absent header.
	r.Reset()
	f, ok := MustCompileWith(t, "cert.expires_in > 1h").Check(&r)
	if ok || f.Cause != Missing || !strings.Contains(f.Message, "not known") {
		t.Errorf("unset operand: ok=%v %+v", ok, f)
	}
	v, err := CompileValueWith("cert.issuer", tlsOps)
	if err != nil {
		t.Fatal(err)
	}
	r.SetString("cert.issuer", "CN=A")
	if s, err := v.Eval(&r); err != nil || s != "CN=A" {
		t.Errorf("capture = %q, %v", s, err)
	}
}

func MustCompileWith(t *testing.T, src string) *Expectation {
	t.Helper()
	e, err := CompileWith(src, tlsOps)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestKindOperandErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`cert.expires_in > 2`, "duration"},     // type-checked at compile time
		{`cert.expiry > 2h`, "cert.expires_in"}, // the kind's names suggested
		{`cert > 2h`, "operands here"},          // a prefix alone is no operand
		{`cert.issuer.x == "a"`, `found ".x"`},  // a string has no fields
	} {
		_, err := CompileWith(tc.src, tlsOps)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to mention %q", tc.src, err, tc.want)
		}
	}
	// Without the kind's operands they are unknown: HTTP steps are unchanged.
	if _, err := Compile("cert.expires_in > 2h"); err == nil {
		t.Error("Compile accepted a kind operand")
	}
}

// TestExpectationReads: a kind learns whether a flow checks an operand
// itself (dns: an expectation on rcode turns off the NOERROR default).
func TestExpectationReads(t *testing.T) {
	ops := Operands{"rcode": StringOperand, "answers": StringOperand, "answers.count": NumberOperand}
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{`rcode == "NXDOMAIN"`, true},
		{`"NXDOMAIN" == rcode`, true},
		{`rcode in ["NOERROR", "NXDOMAIN"]`, true},
		{`lower(rcode) == "nxdomain"`, true},
		{`match(rcode, "^NX") == "NX"`, true},
		{`!exists(match(rcode, "X"))`, true},
		{`answers contains "rcode"`, false},
		{`answers.count == 2`, false},
		{`duration < 1s`, false},
	} {
		e, err := CompileWith(tc.src, ops)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := e.Reads("rcode"); got != tc.want {
			t.Errorf("%s: Reads(rcode) = %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestSetNumber(t *testing.T) {
	var r Response
	r.SetNumber("loss", 0.25)
	ops := Operands{"loss": NumberOperand}
	for src, want := range map[string]bool{"loss == 0.25": true, "loss < 0.5": true, "loss > 0.3": false, "loss == 0": false} {
		f, ok := mustWith(t, src, ops).Check(&r)
		if ok != want {
			t.Errorf("%s: ok = %v, want %v (%s)", src, ok, want, f.Message)
		}
	}
	r.SetNumber("loss", 1)
	if f, ok := mustWith(t, "loss == 1", ops).Check(&r); !ok {
		t.Errorf("loss == 1: %s", f.Message)
	}
	v, _ := CompileValueWith("loss", ops)
	r.SetNumber("loss", 0.5)
	if s, err := v.Eval(&r); err != nil || s != "0.5" {
		t.Errorf("capture loss: %q %v", s, err)
	}
}

func mustWith(t *testing.T, src string, ops Operands) *Expectation {
	t.Helper()
	e, err := CompileWith(src, ops)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
