package config

import (
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestOAuth2ClientCredentials(t *testing.T) {
	const step = "steps:\n  - name: s\n    request: {url: \"http://shop.test/\"}\n"
	const block = "{token_url: \"http://auth.test/token\", client_id: prober, client_secret: \"{{secret:TOKEN}}\", scopes: [read, write], endpoint_params: {audience: shop}}"
	want := &OAuth2{TokenURL: "http://auth.test/token", ClientID: "prober", ClientSecret: testEnv["TOKEN"],
		Scopes: []string{"read", "write"}, EndpointParams: url.Values{"audience": {"shop"}}}
	t.Run("flow", func(t *testing.T) {
		cfg, errs := loadFiles(t, map[string]string{"f.yaml": "name: f\nauth:\n  oauth2_client_credentials: " + block + "\n" + step})
		if errs != nil {
			t.Fatal(errs)
		}
		if got := cfg.Flows[0].HTTP.Auth; !reflect.DeepEqual(got, want) {
			t.Errorf("auth = %+v, want %+v", got, want)
		}
	})
	t.Run("defaults, and a flow clearing them", func(t *testing.T) {
		probes := baseProbes + "defaults:\n  auth: {oauth2_client_credentials: " + block + "}\n"
		probes = strings.Replace(probes, "flows: [f.yaml]", "flows: [f.yaml, g.yaml]", 1)
		cfg, errs := loadFiles(t, map[string]string{"probes.yaml": probes,
			"f.yaml": "name: f\n" + step, "g.yaml": "name: g\nauth: {}\n" + step})
		if errs != nil {
			t.Fatal(errs)
		}
		if got := cfg.Flows[0].HTTP.Auth; !reflect.DeepEqual(got, want) {
			t.Errorf("inherited auth = %+v, want %+v", got, want)
		}
		if got := cfg.Flows[1].HTTP.Auth; got != nil {
			t.Errorf("auth: {} left %+v, want none", got)
		}
	})
	for _, tc := range []struct{ name, auth, want string }{
		{"literal client secret", `{token_url: "http://a.test/t", client_id: c, client_secret: hunter2-hunter2}`,
			"f.yaml:2:95: client_secret must come from a secret: {{secret:NAME}}"},
		{"no token_url", `{client_id: c, client_secret: "{{secret:TOKEN}}"}`, "f.yaml:2:35: oauth2_client_credentials needs token_url"},
		{"token_url not http", `{token_url: "ftp://a.test/t", client_id: c, client_secret: "{{secret:TOKEN}}"}`, `"ftp://a.test/t" is not an absolute http:// or https:// URL`},
		{"undeclared secret", `{token_url: "http://a.test/t", client_id: c, client_secret: "{{secret:NOPE}}"}`, `undefined secret "NOPE"`},
		{"grant field in endpoint_params", `{token_url: "http://a.test/t", client_id: c, client_secret: "{{secret:TOKEN}}", endpoint_params: {grant_type: password}}`,
			"endpoint_params cannot set grant_type: the grant sets it"},
		{"scope with a space", `{token_url: "http://a.test/t", client_id: c, client_secret: "{{secret:TOKEN}}", scopes: ["a b"]}`, `a scope is one word, got "a b"`},
		{"unknown field", `{token_url: "http://a.test/t", client_id: c, client_secret: "{{secret:TOKEN}}", scope: a}`, `unknown field "scope" in oauth2_client_credentials (did you mean "scopes"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := loadFiles(t, map[string]string{"f.yaml": "name: f\nauth: {oauth2_client_credentials: " + tc.auth + "}\n" + step})
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tc.want) }) {
				t.Errorf("errors %q, want one with %q", errs, tc.want)
			}
			for _, e := range errs {
				if strings.Contains(e, "hunter2") || strings.Contains(e, testEnv["TOKEN"]) {
					t.Errorf("an error shows the client secret: %q", e)
				}
			}
		})
	}
}
