package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
)

//go:embed pages.html style.css refresh.js silences.js
var assets embed.FS

type pages struct {
	t   *template.Template
	csp string
	// statusCSP is csp but lets the status page's filter form submit to this
	// origin; the other pages have no forms and keep form-action 'none'.
	statusCSP string
	// alertsCSP is the alerts page's: its one script is silences.js (no
	// refresh), which may fetch this origin's API; its form never submits
	// (the script sends JSON instead), so form-action stays 'none'.
	alertsCSP string
}

// mustParsePages parses the page templates and derives the CSP. The style
// sheet and the refresh script are templates of static text so that they are
// emitted byte for byte, which lets the CSP allow exactly them by hash
// instead of any inline style or script.
func mustParsePages() *pages {
	css, err := assets.ReadFile("style.css")
	if err != nil {
		panic(err)
	}
	js, err := assets.ReadFile("refresh.js")
	if err != nil {
		panic(err)
	}
	sjs, err := assets.ReadFile("silences.js")
	if err != nil {
		panic(err)
	}
	parse := func() *template.Template {
		t := template.Must(template.New("pages").ParseFS(assets, "pages.html"))
		template.Must(t.New("css").Parse(string(css)))
		template.Must(t.New("refreshjs").Parse(string(js)))
		template.Must(t.New("silencesjs").Parse(string(sjs)))
		return t
	}
	hash := func(b []byte) string {
		sum := sha256.Sum256(b)
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	csp := func(formAction string) string {
		return "default-src 'none'; style-src " + hash(css) + "; script-src " + hash(js) +
			"; img-src 'self'; base-uri 'none'; form-action " + formAction + "; frame-ancestors 'none'"
	}
	alerts := "default-src 'none'; style-src " + hash(css) + "; script-src " + hash(sjs) +
		"; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return &pages{t: parse(), csp: csp("'none'"), statusCSP: csp("'self'"), alertsCSP: alerts}
}
