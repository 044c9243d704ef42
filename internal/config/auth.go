package config

import (
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/template"
)

// OAuth2 is an auth: block's oauth2_client_credentials: the flow's HTTP
// steps carry "Authorization: Bearer TOKEN", the token fetched from
// TokenURL with the client credentials grant (RFC 6749 4.4) and kept until
// it expires, across runs. A step that sets Authorization itself keeps its
// own.
type OAuth2 struct {
	TokenURL       string
	ClientID       string
	ClientSecret   string // resolved from {{secret:NAME}}, so redacted wherever it would appear
	Scopes         []string
	EndpointParams url.Values // extra form fields of the token request (audience, resource)
}

// authKeys are the auth: block's fields: one per scheme, for more to come.
var authKeys = []string{"oauth2_client_credentials"}

// oauth2Keys are the fields of oauth2_client_credentials.
var oauth2Keys = []string{"token_url", "client_id", "client_secret", "scopes", "endpoint_params"}

// auth reads an auth: block (of defaults: or a flow). An empty block
// (auth: {}) clears the defaults'.
func (l *loader) auth(f *file, n *yaml.Node, c *common) (*OAuth2, bool) {
	o := f.object(n, "auth", authKeys)
	if n.Kind != yaml.MappingNode {
		return nil, false
	}
	v := o.get("oauth2_client_credentials")
	if v == nil {
		return nil, true
	}
	co := f.object(v, "oauth2_client_credentials", oauth2Keys)
	a := &OAuth2{}
	ok := true
	need := func(key string) *yaml.Node {
		n := co.get(key)
		if n == nil && v.Kind == yaml.MappingNode {
			f.errorf(v, "oauth2_client_credentials needs %s", key)
			ok = false
		}
		return n
	}
	if n := need("token_url"); n != nil {
		if s, good := f.plain(n, "a URL", "token_url cannot use {{...}}"); good && checkHTTPURL(f, n, s) {
			a.TokenURL = s
		} else {
			ok = false
		}
	}
	if n := need("client_id"); n != nil {
		if s, good := f.plain(n, "a client id", "client_id cannot use {{...}}"); good {
			a.ClientID = s
		} else {
			ok = false
		}
	}
	if n := need("client_secret"); n != nil {
		s, good := l.clientSecret(f, n, c)
		a.ClientSecret, ok = s, ok && good
	}
	if n := co.get("scopes"); n != nil {
		for _, it := range f.list(n, "a list of scopes") {
			if s, good := f.plain(it, "a scope", "scopes cannot use {{...}}"); good && s != "" && !strings.ContainsAny(s, " \t") {
				a.Scopes = append(a.Scopes, s)
			} else if good {
				f.errorf(it, "a scope is one word, got %s", quote(s))
			}
		}
	}
	if n := co.get("endpoint_params"); n != nil {
		a.EndpointParams = url.Values{}
		if n.Kind != yaml.MappingNode {
			f.errorf(n, "expected a mapping of token request parameters, got %s", describe(n))
		}
		for _, p := range f.pairs(n) {
			if slices.Contains([]string{"grant_type", "client_id", "client_secret", "scope"}, p.name) {
				f.errorf(p.key, "endpoint_params cannot set %s: the grant sets it", p.name)
				continue
			}
			for _, it := range f.list(f.node(p.val), "a value or a list of values") {
				if s, good := f.plain(it, "a parameter value", "endpoint_params cannot use {{...}}"); good {
					a.EndpointParams.Add(p.name, s)
				}
			}
		}
	}
	if !ok {
		return nil, false
	}
	return a, true
}

// clientSecret reads client_secret, which must come from a declared secret
// ({{secret:NAME}}): a literal would be shown wherever it leaked.
func (l *loader) clientSecret(f *file, n *yaml.Node, c *common) (string, bool) {
	if f.isScalar(n) {
		t, err := template.Parse(n.Value)
		fromSecret := false
		if err == nil {
			for _, r := range t.Refs() {
				fromSecret = fromSecret || r.Secret
			}
		}
		if err == nil && !fromSecret {
			f.errorf(n, "client_secret must come from a secret: {{secret:NAME}}, declared under secrets: in probes.yaml")
			return "", false
		}
		if name := unsetSecret(n.Value, l.optionalUnset); name != "" {
			f.errorf(n, "secret %s is optional and not set, but client_secret needs it", quote(name))
			return "", false
		}
	}
	return l.secretString(f, n, "a client secret", c)
}
