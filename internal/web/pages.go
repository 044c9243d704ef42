package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
)

//go:embed pages.html style.css
var assets embed.FS

type pages struct {
	t   *template.Template
	csp string
	// statusCSP is csp but lets the status page's filter form submit to this
	// origin; the other pages have no forms and keep form-action 'none'.
	statusCSP string
}

// mustParsePages parses the page templates and derives the CSP. The style
// sheet is its own template of static text so that it is emitted byte for
// byte, which lets the CSP allow exactly it by hash instead of any inline
// style.
func mustParsePages() *pages {
	css, err := assets.ReadFile("style.css")
	if err != nil {
		panic(err)
	}
	parse := func() *template.Template {
		t := template.Must(template.New("pages").ParseFS(assets, "pages.html"))
		template.Must(t.New("css").Parse(string(css)))
		return t
	}
	sum := sha256.Sum256(css)
	csp := func(formAction string) string {
		return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
			"'; base-uri 'none'; form-action " + formAction + "; frame-ancestors 'none'"
	}
	return &pages{t: parse(), csp: csp("'none'"), statusCSP: csp("'self'")}
}
