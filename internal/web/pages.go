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
	p := &pages{t: parse(),
		csp: "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
			"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}
	return p
}
