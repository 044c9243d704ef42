package daemon

import (
	"testing"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds/tcpkind"
	"github.com/prober-dev/prober/internal/kinds/tlskind"
	"github.com/prober-dev/prober/internal/template"
)

// The series calculator counts a certificate series for the steps that
// make a TLS handshake: tls steps, HTTPS requests, and requests whose
// scheme is only known when the flow runs; not plain HTTP ones.
func TestHandshakes(t *testing.T) {
	vars := map[string]string{"shop_url": "http://127.0.0.1:8080", "secure": "https://shop.example.com", "host": "shop.example.com"}
	for _, c := range []struct {
		name string
		st   config.Step
		want bool
	}{
		{"https literal", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("https://shop.example.com/")}}, true},
		{"HTTPS upper case", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("HTTPS://shop.example.com/")}}, true},
		{"http literal", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("http://shop.example.com/")}}, false},
		{"http var", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("{{shop_url}}/healthz")}}, false},
		{"https var", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("{{secure}}/healthz")}}, true},
		{"host var after https", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("https://{{host}}/")}}, true},
		{"host var after http", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("http://{{host}}/")}}, false},
		{"capture after https", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("https://{{order_host}}/")}}, true},
		{"capture after http", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("http://{{order_host}}/")}}, false},
		{"scheme from a capture", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("{{next_url}}")}}, true},
		{"scheme half from a capture", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("http{{s}}://shop.example.com/")}}, true},
		{"secret base", config.Step{Spec: &config.HTTPSpec{URL: template.MustParse("{{secret:BASE}}/x")}}, true},
		{"tls kind", config.Step{Spec: &tlskind.Spec{}, StepDef: &config.StepDef{Kind: "tls"}}, true},
		{"tcp kind", config.Step{Spec: &tcpkind.Spec{}, StepDef: &config.StepDef{Kind: "tcp"}}, false},
	} {
		if got := handshakes(&c.st, vars); got != c.want {
			t.Errorf("%s: handshakes = %v, want %v", c.name, got, c.want)
		}
	}
}
