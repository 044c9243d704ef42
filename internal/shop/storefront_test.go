package shop

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// browserClient walks the storefront as a browser does, one hop at a time:
// cookies kept, redirects returned rather than followed.
type browserClient struct {
	t  *testing.T
	hc *http.Client
}

func newBrowserClient(t *testing.T) *browserClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &browserClient{t: t, hc: &http.Client{Transport: tr, Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	code int
	hdr  http.Header
	body string
	loc  string // Location, resolved against the request URL
}

func (b *browserClient) do(method, u string, form url.Values, hdr ...string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	p := page{code: res.StatusCode, hdr: res.Header, body: string(raw)}
	if l, err := res.Location(); err == nil {
		p.loc = l.String()
	}
	return p
}

func (b *browserClient) want(p page, code int, what string) page {
	b.t.Helper()
	if p.code != code {
		b.t.Fatalf("%s: got %d, want %d: %.800s", what, p.code, code, p.body)
	}
	return p
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page: %.500s", p.body)
	}
	return m[1]
}

// checkStrict fails unless the page is HTML under a strict CSP and holds
// nothing that CSP would refuse: no inline script, style or handler, and
// scripts and styles only from its own origin.
func checkStrict(t *testing.T, what string, p page) {
	t.Helper()
	csp := p.hdr.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %s", what, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("%s: CSP %q allows unsafe sources", what, csp)
	}
	if ct := p.hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]+</script>`), // inline code
		regexp.MustCompile(`<script(?:\s(?:[^s>]|s[^r>])*)?>`),   // a script without src
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`),
		regexp.MustCompile(`(?i)(src|href)="(https?:)?//`), // another origin
		regexp.MustCompile(`(?i)javascript:`),
	} {
		if m := re.FindString(p.body); m != "" {
			t.Errorf("%s: the CSP would refuse %q", what, m)
		}
	}
}

// checkout logs in, opens the product and checks out: the redirect to the
// gateway's hosted page.
func checkout(t *testing.T, b *browserClient, sb *Sandbox) string {
	t.Helper()
	lp := b.want(b.do("GET", sb.ShopURL+"/store/login", nil), 200, "login page")
	checkStrict(t, "login page", lp)
	form := url.Values{"csrf": {csrfOf(t, lp)}, "user": {defaultUser}, "password": {testPassword}}
	in := b.want(b.do("POST", sb.ShopURL+"/store/login", form), 303, "login")
	if in.loc != sb.ShopURL+"/store/products" {
		t.Fatalf("login redirects to %q", in.loc)
	}
	pp := b.want(b.do("GET", sb.ShopURL+"/store/products/SENTINEL-SKU-1", nil), 200, "product page")
	checkStrict(t, "product page", pp)
	if !strings.Contains(pp.body, `id="buy"`) || !strings.Contains(pp.body, "€19.99") {
		t.Fatalf("product page without its buy button or price: %s", pp.body)
	}
	co := b.want(b.do("POST", sb.ShopURL+"/store/checkout", url.Values{"csrf": {csrfOf(t, pp)}, "sku": {"SENTINEL-SKU-1"}}), 303, "checkout")
	if !strings.HasPrefix(co.loc, sb.GatewayURL+"/pay/cs_") {
		t.Fatalf("checkout redirects to %q, want the gateway's hosted page at %s", co.loc, sb.GatewayURL)
	}
	return co.loc
}

// pay pays on the hosted page and follows the redirects back to the
// shop's confirmation page.
func pay(t *testing.T, b *browserClient, sb *Sandbox, hosted string) page {
	t.Helper()
	hp := b.want(b.do("GET", hosted, nil), 200, "hosted page")
	checkStrict(t, "hosted page", hp)
	if csp := hp.hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+sb.ShopURL+";") {
		t.Errorf("hosted page CSP %q: form-action must allow only itself and the shop", csp)
	}
	back := b.want(b.do("POST", hosted, url.Values{"card": {"4242424242424242"}}), 303, "pay")
	if !strings.HasPrefix(back.loc, sb.ShopURL+"/store/orders/ord_") || !strings.Contains(back.loc, "/return?payment_token=9") {
		t.Fatalf("hosted page redirects to %q", back.loc)
	}
	ret := b.want(b.do("GET", back.loc, nil), 303, "return")
	conf := b.want(b.do("GET", ret.loc, nil), 200, "confirmation")
	checkStrict(t, "confirmation page", conf)
	return conf
}

var statusRE = regexp.MustCompile(`id="order-status"[^>]*data-status="([a-z]+)"[^>]*>([^<]*)<`)

func orderStatus(t *testing.T, p page) (status, text string) {
	t.Helper()
	m := statusRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no order status on the page: %s", p.body)
	}
	return m[1], m[2]
}

// TestStorefrontCheckout: login (CSRF, a new session id), product page,
// checkout to the gateway's hosted page in its own origin, the card, back
// to the confirmation page, whose status (what its script polls) settles
// to confirmed; every page under the strict CSP.
func TestStorefrontCheckout(t *testing.T) {
	sb, logs := startSandbox(t, SandboxOptions{})
	b := newBrowserClient(t)
	hosted := checkout(t, b, sb)
	conf := pay(t, b, sb, hosted)
	st, text := orderStatus(t, conf)
	if st != statusPaid && st != statusConfirmed {
		t.Fatalf("confirmation page says %s (%q)", st, text)
	}
	if !strings.Contains(conf.body, `src="/store/static/shop.js"`) {
		t.Error("confirmation page without its script")
	}
	id := regexp.MustCompile(`ord_[0-9a-f]+`).FindString(conf.body)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := b.want(b.do("GET", sb.ShopURL+"/store/orders/"+id+"/status", nil, "Accept", "application/json"), 200, "status")
		if strings.Contains(p.body, `"status":"confirmed"`) && strings.Contains(p.body, "Payment confirmed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order never confirmed: %s", p.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	conf = b.want(b.do("GET", sb.ShopURL+"/store/orders/"+id, nil), 200, "confirmation again")
	if st, text := orderStatus(t, conf); st != statusConfirmed || !strings.Contains(conf.body, `data-final="true"`) || text != "Payment confirmed. Thank you for your order!" {
		t.Fatalf("settled confirmation: %s %q", st, text)
	}
	// The order is the API's too, paid through the gateway with the token.
	logs.find(t, map[string]any{"service": "gateway", "route": "POST /v1/charges", "order_id": id, "status": 200})
	logs.find(t, map[string]any{"service": "gateway", "route": "POST /v1/checkout/sessions", "order_id": id, "status": 201})
}

// TestStorefrontLogin: the form's CSRF token is required, a wrong password
// is refused on the page, the session id changes at login, and pages that
// need a login send the browser to it.
func TestStorefrontLogin(t *testing.T) {
	sb, _ := startSandbox(t, SandboxOptions{})
	b := newBrowserClient(t)
	b.want(b.do("GET", sb.ShopURL+"/store/orders/ord_x", nil), 303, "order page before login")
	lp := b.want(b.do("GET", sb.ShopURL+"/store/login", nil), 200, "login page")
	cookie := lp.hdr.Get("Set-Cookie")
	if !strings.Contains(cookie, sessionCookie+"=") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Fatalf("session cookie %q", cookie)
	}
	csrf := csrfOf(t, lp)
	for _, tc := range []struct {
		name string
		form url.Values
		code int
		says string
	}{
		{"no token", url.Values{"user": {defaultUser}, "password": {testPassword}}, 403, "session expired"},
		{"wrong token", url.Values{"csrf": {strings.Repeat("0", len(csrf))}, "user": {defaultUser}, "password": {testPassword}}, 403, "session expired"},
		{"wrong password", url.Values{"csrf": {csrf}, "user": {defaultUser}, "password": {"nope"}}, 401, "Wrong user name or password."},
	} {
		p := b.do("POST", sb.ShopURL+"/store/login", tc.form)
		if p.code != tc.code || !strings.Contains(strings.ToLower(p.body), strings.ToLower(tc.says)) {
			t.Errorf("%s: %d %.300s, want %d saying %q", tc.name, p.code, p.body, tc.code, tc.says)
		}
		if strings.Contains(p.body, testPassword) {
			t.Errorf("%s: the page shows the password", tc.name)
		}
	}
	// Without the login page's cookie, its token is worth nothing.
	other := newBrowserClient(t)
	other.want(other.do("POST", sb.ShopURL+"/store/login", url.Values{"csrf": {csrf}, "user": {defaultUser}, "password": {testPassword}}), 403, "token without its session")

	in := b.want(b.do("POST", sb.ShopURL+"/store/login", url.Values{"csrf": {csrf}, "user": {defaultUser}, "password": {testPassword}}), 303, "login")
	if nc := in.hdr.Get("Set-Cookie"); nc == "" || strings.Split(nc, ";")[0] == strings.Split(cookie, ";")[0] {
		t.Errorf("the session id did not change at login: %q then %q", cookie, nc)
	}
	pl := b.want(b.do("GET", sb.ShopURL+"/store/products", nil), 200, "products")
	checkStrict(t, "products page", pl)
	if !strings.Contains(pl.body, "Signed in as "+defaultUser) || !strings.Contains(pl.body, `href="/store/products/MUG"`) {
		t.Errorf("products page: %.800s", pl.body)
	}
	// A checkout with a stale token is refused.
	b.want(b.do("POST", sb.ShopURL+"/store/checkout", url.Values{"csrf": {csrf}, "sku": {"MUG"}}), 403, "checkout with the login page's token")
	b.want(b.do("GET", sb.ShopURL+"/store/products/NOPE", nil), 404, "unknown product")
}

// TestStorefrontGatewayFaults: a gateway 504 swallowed leaves the
// confirmation page saying "processing" for a payment that failed (and
// logged as swallowed under the page's trace id); not swallowed, the page
// says it failed.
func TestStorefrontGatewayFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		swallow bool
		status  string
		says    string
		logMsg  string
	}{
		{"swallowed", true, statusProcessing, "Your payment is processing", "gateway_error_swallowed"},
		{"surfaced", false, statusFailed, "Payment failed", "gateway_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, logs := startSandbox(t, SandboxOptions{})
			sb.Faults.Set("", FaultSet{GatewayStatus: 504, SwallowErrors: tc.swallow})
			b := newBrowserClient(t)
			hosted := checkout(t, b, sb)
			hp := b.want(b.do("GET", hosted, nil), 200, "hosted page")
			_ = hp
			back := b.want(b.do("POST", hosted, url.Values{"card": {"4242424242424242"}}), 303, "pay")
			const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
			ret := b.want(b.do("GET", back.loc, nil, "traceparent", "00-"+trace+"-00f067aa0ba902b7-01"), 303, "return")
			conf := b.want(b.do("GET", ret.loc, nil), 200, "confirmation")
			st, text := orderStatus(t, conf)
			if st != tc.status || !strings.Contains(text, tc.says) {
				t.Fatalf("confirmation says %s %q, want %s %q", st, text, tc.status, tc.says)
			}
			if tc.swallow == strings.Contains(conf.body, `data-final="true"`) {
				t.Errorf("data-final: a processing order is polled, a failed one is final: %s", conf.body)
			}
			logs.find(t, map[string]any{"msg": tc.logMsg, "trace_id": trace, "gateway_status": 504, "via": "storefront"})
			logs.find(t, map[string]any{"service": "gateway", "route": "POST /v1/charges", "trace_id": trace, "status": 504})
		})
	}
}

// TestStorefrontPageFaults: the browser faults change what the pages are,
// switched like every fault (PUT /admin/faults): the hosted page's script
// asked for a widget it lacks (its script throws), a consent overlay that
// covers the pay button (shown: only a click that checks where it lands
// sees it), and blips and resets reach pages as they do
// the API.
func TestStorefrontPageFaults(t *testing.T) {
	sb, _ := startSandbox(t, SandboxOptions{})
	b := newBrowserClient(t)
	hosted := checkout(t, b, sb)
	admin := newClient(t, sb.ShopURL)

	healthy := b.want(b.do("GET", hosted, nil), 200, "hosted page")
	if !strings.Contains(healthy.body, `data-widget="card"`) || strings.Contains(healthy.body, "consent") {
		t.Fatalf("healthy hosted page: %s", healthy.body)
	}
	for _, tc := range []struct {
		fault string
		want  []string
	}{
		{`{"pay_script_error":true}`, []string{`data-widget="missing"`}},
		{`{"pay_button_hidden":true}`, []string{`<div id="consent" class="overlay"`, `<button id="pay" type="button">`}},
	} {
		admin.expect(admin.do("PUT", "/admin/faults", tc.fault, nil), 200)
		p := b.want(b.do("GET", hosted, nil), 200, "hosted page under "+tc.fault)
		checkStrict(t, "hosted page under "+tc.fault, p)
		for _, w := range tc.want {
			if !strings.Contains(p.body, w) {
				t.Errorf("%s: hosted page lacks %s: %s", tc.fault, w, p.body)
			}
		}
		admin.expect(admin.do("DELETE", "/admin/faults", nil, nil), 200)
	}
	// What the script does with them: the widget lookup that throws, the
	// stylesheet that puts the overlay over the whole page, the button
	// under it displayed.
	js := b.want(b.do("GET", sb.GatewayURL+"/pay/static/pay.js", nil), 200, "pay.js").body
	if !strings.Contains(js, "widgets[form.dataset.widget].mount(form)") {
		t.Error("pay.js no longer mounts the widget the page names")
	}
	css := b.want(b.do("GET", sb.GatewayURL+"/pay/static/pay.css", nil), 200, "pay.css").body
	if !strings.Contains(css, ".overlay { position: fixed; inset: 0;") {
		t.Error("pay.css no longer puts the consent overlay over the whole page")
	}
	if strings.Contains(css, "display: none") || strings.Contains(css, "visibility: hidden") {
		t.Error("pay.css hides something: the fault is the overlay over a displayed pay button")
	}

	admin.expect(admin.do("PUT", "/admin/faults", `{"page_delay":"-1s"}`, nil), 400)
	admin.expect(admin.do("PUT", "/admin/faults", `{"blip_rate":1}`, nil), 200)
	b.want(b.do("GET", sb.ShopURL+"/store/login", nil), 503, "login page under blips")
	admin.expect(admin.do("DELETE", "/admin/faults", nil, nil), 200)
}

// TestStorefrontPageDelay: page_delay holds the storefront's pages (not
// its scripts) that long, and a browser that gives up ends the wait.
func TestStorefrontPageDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		faults := NewFaults()
		sh, err := New(Options{Password: testPassword, GatewayURL: "http://gateway.test", Faults: faults})
		if err != nil {
			t.Fatal(err)
		}
		faults.Set("", FaultSet{PageDelay: Duration(7 * time.Second)})
		for _, tc := range []struct {
			path string
			wait time.Duration
		}{
			{"/store/login", 7 * time.Second},
			{"/store/products/MUG", 7 * time.Second},
			{"/store/static/shop.js", 0},
		} {
			start := time.Now()
			rec := httptest.NewRecorder()
			sh.Handler().ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			if got := time.Since(start); got != tc.wait || rec.Code != 200 {
				t.Errorf("%s: %d after %s, want 200 after %s", tc.path, rec.Code, got, tc.wait)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		rec := httptest.NewRecorder()
		sh.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/store/login", nil).WithContext(ctx))
		if got := time.Since(start); got != time.Second || rec.Body.Len() != 0 {
			t.Errorf("a request given up after 1s: handler returned after %s with %q", got, rec.Body.String())
		}
	})
}

// TestHostedPage: the gateway's page refuses a bad card and the declined
// test card on the page, forgets a paid session, and only takes sessions
// with an absolute return URL.
func TestHostedPage(t *testing.T) {
	sb, _ := startSandbox(t, SandboxOptions{})
	gw := newClient(t, sb.GatewayURL)
	gw.expect(gw.do("POST", "/v1/checkout/sessions", map[string]any{"order_id": "o1", "amount_cents": 100, "currency": "EUR", "return_url": "/relative"}, nil), 422)
	gw.expect(gw.do("POST", "/v1/checkout/sessions", map[string]any{"order_id": "o1", "amount_cents": 0, "currency": "EUR", "return_url": "http://shop.test/r"}, nil), 422)
	cs := gw.expect(gw.do("POST", "/v1/checkout/sessions", map[string]any{"order_id": "o1", "amount_cents": 1999, "currency": "EUR", "description": "1 × MUG", "return_url": "http://shop.test/r?x=1"}, nil), 201)
	u := sb.GatewayURL + cs.body["url"].(string)

	b := newBrowserClient(t)
	p := b.want(b.do("GET", u, nil), 200, "hosted page")
	checkStrict(t, "hosted page", p)
	if !strings.Contains(p.body, "€19.99") || !strings.Contains(p.body, "http://shop.test") {
		t.Errorf("hosted page: %s", p.body)
	}
	for _, tc := range []struct {
		card string
		code int
		says string
	}{
		{"42", 422, "Enter a card number"},
		{declinedCard, 402, "Your card was declined."},
	} {
		p := b.do("POST", u, url.Values{"card": {tc.card}})
		if p.code != tc.code || !strings.Contains(p.body, tc.says) {
			t.Errorf("card %s: %d %.300s", tc.card, p.code, p.body)
		}
	}
	back := b.want(b.do("POST", u, url.Values{"card": {"4242424242424242"}}), 303, "pay")
	if !regexp.MustCompile(`^http://shop\.test/r\?payment_token=9[0-9]{15}&x=1$`).MatchString(back.loc) {
		t.Errorf("redirect back: %q", back.loc)
	}
	b.want(b.do("GET", u, nil), 404, "a paid session")
	b.want(b.do("GET", sb.GatewayURL+"/pay/cs_unknown", nil), 404, "an unknown session")
}
