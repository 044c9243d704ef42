package shop

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The HTML storefront: what a customer does in a browser (log in, look at a
// product, check out, pay on the gateway's hosted page in another origin,
// see the confirmation), for browser flows. It shares the API's users,
// orders, gateway client and fault switches; its pages pass a strict CSP
// (no inline script or style) and report violations to the console, so a
// flow's console.errors == 0 also says the CSP holds.

//go:embed web
var webFS embed.FS

// webTemplates are the pages of the shop and of the gateway's hosted page.
var webTemplates = template.Must(template.New("").ParseFS(webFS, "web/*.html"))

const (
	sessionCookie  = "shop_session"
	viaStorefront  = "storefront" // the log's via of what the HTML pages did
	maxFormBytes   = 8 << 10
	checkoutPath   = "/v1/checkout/sessions"
	storeStatic    = "/store/static/"
	hostedStatic   = "/pay/static/"
	storeLoginPath = "/store/login"
)

// product is an entry of the storefront's catalogue (prices: priceCents).
type product struct{ SKU, Name string }

func catalogue() []product {
	return []product{
		{"SENTINEL-SKU-1", "Sentinel widget"},
		{"SENTINEL-SKU-2", "Sentinel widget, large"},
		{"TSHIRT-M", "T-shirt, size M"},
		{"MUG", "Mug"},
	}
}

func productName(sku string) (string, bool) {
	for _, p := range catalogue() {
		if p.SKU == sku {
			return p.Name, true
		}
	}
	return "", false
}

// webSession is a browser's session: before login it only holds the CSRF
// token of the login form.
type webSession struct {
	csrf string
	user string // "" until logged in
}

type storefront struct {
	s          *Shop
	gatewayURL string // the gateway's base URL: its hosted page, its checkout sessions
	csp        string

	sessions *sessionStore[webSession] // by the shop_session cookie
}

func newStorefront(s *Shop) *storefront {
	// The gateway's base is where the shop charges, less the path.
	gw := strings.TrimSuffix(s.chargesURL, "/v1/charges")
	return &storefront{
		s: s, gatewayURL: gw, sessions: newSessionStore[webSession](func() time.Time { return s.now() }, sessionTTL, maxSessions, nil),
		// The checkout form is answered by a redirect to the gateway's
		// page: form-action must allow its origin (browsers check redirects).
		csp: strictCSP("'self' " + originOf(gw)),
	}
}

// strictCSP allows scripts, styles, images and fetches from the page's own
// origin only, and forms to 'self' plus formAction.
func strictCSP(formAction string) string {
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action " + formAction + "; base-uri 'none'; frame-ancestors 'none'"
}

func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "'none'"
	}
	return p.Scheme + "://" + p.Host
}

// storefrontRoutes are the storefront's pages, registered beside the API
// (with its blips and resets).
func (s *Shop) storefrontRoutes() []route {
	sf := newStorefront(s)
	return []route{
		{"GET /store/{$}", http.StatusSeeOther, sf.handleIndex},
		{"GET " + storeLoginPath, http.StatusOK, sf.page(sf.handleLoginPage)},
		{"POST " + storeLoginPath, http.StatusSeeOther, sf.page(sf.handleLogin)},
		{"GET /store/products", http.StatusOK, sf.page(sf.handleProducts)},
		{"GET /store/products/{sku}", http.StatusOK, sf.page(sf.handleProduct)},
		{"POST /store/checkout", http.StatusSeeOther, sf.page(sf.handleCheckout)},
		{"GET /store/orders/{id}/return", http.StatusSeeOther, sf.page(sf.handleReturn)},
		{"GET /store/orders/{id}", http.StatusOK, sf.page(sf.handleConfirmation)},
		{"GET /store/orders/{id}/status", http.StatusOK, sf.handleStatus},
		{"GET " + storeStatic + "{file}", http.StatusOK, staticFiles("web/static/store", storeStatic)},
	}
}

// page wraps a page handler with the page_delay fault: a slow page, as
// the customer sees it (nothing, then the page).
func (sf *storefront) page(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ri := infoFrom(r.Context())
		if d := time.Duration(sf.s.faults.Effective(ri.region, sf.s.now()).PageDelay); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop() // the browser gave up: no handler outlives its request
				return
			}
		}
		h(w, r)
	}
}

// staticFiles serves the embedded files of dir under prefix.
func staticFiles(dir, prefix string) http.HandlerFunc {
	sub, err := fs.Sub(webFS, dir)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fsrv := http.StripPrefix(prefix, http.FileServerFS(sub))
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	}
}

// render writes a page with the security headers every page has.
func render(w http.ResponseWriter, status int, csp, name string, data any) {
	var buf bytes.Buffer
	if err := webTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageData is what the shop's pages show.
type pageData struct {
	Title    string
	User     string
	CSRF     string
	Error    string
	Products []productView
	Product  *productView
	Order    *orderView
}

type productView struct {
	SKU, Name, Price string
}

type orderView struct {
	ID, SKU, Name, Status, Message, Amount string
	Final                                  bool
}

func money(cents int64) string { return fmt.Sprintf("€%d.%02d", cents/100, cents%100) }

// statusMessage is what the confirmation page says of a status (shop.js
// says the same as it polls).
func statusMessage(status string) string {
	switch status {
	case statusCreated:
		return "Awaiting payment."
	case statusPaid:
		return "Payment received. Confirming with the bank…"
	case statusConfirmed:
		return "Payment confirmed. Thank you for your order!"
	case statusProcessing:
		return "Your payment is processing…"
	case statusFailed:
		return "Payment failed: the bank did not answer. You have not been charged."
	case statusCancelled:
		return "This order was cancelled."
	}
	return "Order status: " + status
}

// finalStatus: the confirmation page stops polling at these.
func finalStatus(status string) bool {
	return status == statusConfirmed || status == statusFailed || status == statusCancelled
}

// session returns the browser's session, if its cookie names a live one.
func (sf *storefront) session(r *http.Request) (string, webSession, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", webSession{}, false
	}
	sess, ok := sf.sessions.get(c.Value)
	return c.Value, sess, ok
}

// newSession stores a session and sets its cookie.
func (sf *storefront) newSession(w http.ResponseWriter, r *http.Request, user string) webSession {
	sess := webSession{csrf: randomHex(16), user: user}
	id := sf.sessions.start(sess)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/store", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteLaxMode, MaxAge: int(sessionTTL.Seconds()),
	})
	return sess
}

// user returns the logged-in session, or sends the browser to the login
// page and returns false.
func (sf *storefront) user(w http.ResponseWriter, r *http.Request) (webSession, bool) {
	_, sess, ok := sf.session(r)
	if ok && sess.user != "" {
		return sess, true
	}
	http.Redirect(w, r, storeLoginPath, http.StatusSeeOther)
	return webSession{}, false
}

// form parses a bounded form and checks its CSRF token against the
// session's; it answers 403 itself when they differ.
func (sf *storefront) form(w http.ResponseWriter, r *http.Request, sess webSession) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		render(w, http.StatusBadRequest, sf.csp, "error.html", pageData{Title: "Bad request", Error: "The form could not be read."})
		return false
	}
	got := r.PostForm.Get("csrf")
	if sess.csrf == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
		render(w, http.StatusForbidden, sf.csp, "error.html", pageData{Title: "Session expired",
			Error: "Your session expired or the form is stale: go back and try again."})
		return false
	}
	return true
}

func (sf *storefront) handleIndex(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/store/products", http.StatusSeeOther)
}

func (sf *storefront) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	_, sess, ok := sf.session(r)
	if !ok {
		sess = sf.newSession(w, r, "")
	}
	render(w, http.StatusOK, sf.csp, "login.html", pageData{Title: "Log in", CSRF: sess.csrf})
}

func (sf *storefront) handleLogin(w http.ResponseWriter, r *http.Request) {
	_, sess, ok := sf.session(r)
	if !ok {
		render(w, http.StatusForbidden, sf.csp, "error.html", pageData{Title: "Session expired",
			Error: "Your session expired: reload the login page."})
		return
	}
	if !sf.form(w, r, sess) {
		return
	}
	user, pass := r.PostForm.Get("user"), r.PostForm.Get("password")
	if !sf.s.validLogin(user, pass) {
		render(w, http.StatusUnauthorized, sf.csp, "login.html", pageData{Title: "Log in", CSRF: sess.csrf,
			Error: "Wrong user name or password."})
		return
	}
	// A new session id at login: a session fixed before it is worth nothing.
	sf.newSession(w, r, user)
	http.Redirect(w, r, "/store/products", http.StatusSeeOther)
}

func (sf *storefront) handleProducts(w http.ResponseWriter, r *http.Request) {
	_, sess, _ := sf.session(r)
	d := pageData{Title: "Products", User: sess.user}
	for _, p := range catalogue() {
		cents, _ := priceCents(p.SKU)
		d.Products = append(d.Products, productView{SKU: p.SKU, Name: p.Name, Price: money(cents)})
	}
	render(w, http.StatusOK, sf.csp, "products.html", d)
}

func (sf *storefront) handleProduct(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	name, ok := productName(sku)
	cents, _ := priceCents(sku)
	if !ok {
		render(w, http.StatusNotFound, sf.csp, "error.html", pageData{Title: "Not found", Error: "No such product."})
		return
	}
	_, sess, _ := sf.session(r)
	render(w, http.StatusOK, sf.csp, "product.html", pageData{Title: name, User: sess.user, CSRF: sess.csrf,
		Product: &productView{SKU: sku, Name: name, Price: money(cents)}})
}

// handleCheckout creates the order and a checkout session at the gateway,
// and sends the browser to the gateway's hosted payment page.
func (sf *storefront) handleCheckout(w http.ResponseWriter, r *http.Request) {
	sess, ok := sf.user(w, r)
	if !ok || !sf.form(w, r, sess) {
		return
	}
	sku := r.PostForm.Get("sku")
	price, ok := priceCents(sku)
	if !ok {
		render(w, http.StatusNotFound, sf.csp, "error.html", pageData{Title: "Not found", Error: "No such product."})
		return
	}
	o := &order{id: "ord_" + randomHex(12), user: sess.user, sku: sku, qty: 1, amount: price, status: statusCreated}
	sf.s.mu.Lock()
	sf.s.orders.put(o.id, o)
	sf.s.mu.Unlock()
	ri := infoFrom(r.Context())
	ri.orderID = o.id

	// Where the gateway sends the customer back: this shop as the browser
	// reaches it.
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	ret := scheme + "://" + r.Host + "/store/orders/" + o.id + "/return"
	payURL, err := sf.createCheckout(r.Context(), ri, checkoutRequest{
		OrderID: o.id, AmountCents: o.amount, Currency: currencyEUR, Description: "1 × " + sku, ReturnURL: ret,
	})
	if err != nil {
		sf.s.log.Error("checkout_session_failed", "order_id", o.id, "trace_id", ri.trace.traceID, "err", err.Error())
		render(w, http.StatusBadGateway, sf.csp, "error.html", pageData{Title: "Checkout unavailable", User: sess.user,
			Error: "The payment page could not be opened. Please try again."})
		return
	}
	http.Redirect(w, r, payURL, http.StatusSeeOther)
}

// checkoutRequest is the body of the gateway's POST /v1/checkout/sessions.
type checkoutRequest struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
	ReturnURL   string `json:"return_url"`
}

// createCheckout asks the gateway for a hosted payment page and returns
// its absolute URL. Injected gateway faults hit charges, not this call:
// the story is a payment that fails, not a page that never opens.
func (sf *storefront) createCheckout(ctx context.Context, ri *reqInfo, cr checkoutRequest) (string, error) {
	body, err := json.Marshal(cr)
	if err != nil {
		return "", fmt.Errorf("encoding the checkout session: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sf.gatewayURL+checkoutPath, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("creating the checkout session: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerTraceparent, ri.trace.traceparent())
	if ri.trace.tracestate != "" {
		req.Header.Set(headerTracestate, ri.trace.tracestate)
	}
	if ri.synthetic {
		req.Header.Set(headerSynthetic, "1")
	}
	resp, err := sf.s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("creating the checkout session: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	var cs struct {
		URL string `json:"url"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &cs) != nil || !strings.HasPrefix(cs.URL, "/") {
		return "", fmt.Errorf("creating the checkout session: gateway answered %d: %s", resp.StatusCode, truncate(raw, 200))
	}
	return sf.gatewayURL + cs.URL, nil
}

// order returns the session user's order named in the path, with s.mu
// held, or renders 404 and returns nil with s.mu released.
func (sf *storefront) order(w http.ResponseWriter, r *http.Request, sess webSession) *order {
	id := r.PathValue("id")
	sf.s.mu.Lock()
	o, ok := sf.s.orders.get(id)
	if !ok || o.user != sess.user {
		sf.s.mu.Unlock()
		render(w, http.StatusNotFound, sf.csp, "error.html", pageData{Title: "Not found", User: sess.user, Error: "No such order."})
		return nil
	}
	return o
}

// handleReturn is where the gateway's page sends the customer after the
// card was accepted: the shop charges the payment token it brought, as the
// API's pay does (the same gateway, faults and swallowing), and shows the
// confirmation page.
func (sf *storefront) handleReturn(w http.ResponseWriter, r *http.Request) {
	sess, ok := sf.user(w, r)
	if !ok {
		return
	}
	token := r.URL.Query().Get("payment_token")
	o := sf.order(w, r, sess)
	if o == nil {
		return
	}
	confirmation := "/store/orders/" + o.id
	if o.status != statusCreated || o.paying {
		// A reload of the return URL: the order was charged (or is being).
		sf.s.mu.Unlock()
		http.Redirect(w, r, confirmation, http.StatusSeeOther)
		return
	}
	if !validCard(token) {
		sf.s.mu.Unlock()
		render(w, http.StatusBadRequest, sf.csp, "error.html", pageData{Title: "Payment not completed", User: sess.user,
			Error: "The payment page sent no payment token."})
		return
	}
	o.paying = true
	charge := chargeRequest{AmountCents: o.amount, Currency: currencyEUR, Card: token, OrderID: o.id}
	sf.s.mu.Unlock()

	ri := infoFrom(r.Context())
	// One key per order: a repeated return never charges twice.
	gr := sf.s.callGateway(r.Context(), ri, "store-"+o.id, charge)
	swallow := sf.s.faults.Effective(ri.region, sf.s.now()).SwallowErrors
	sf.s.mu.Lock()
	o.paying = false
	switch {
	case gr.outcome == "success":
		o.status, o.paymentID, o.paidAt = statusPaid, gr.chargeID, sf.s.now()
	case swallow:
		o.status = statusProcessing // the story's bug, in HTML: "processing" for a failed payment
	default:
		o.status = statusFailed
	}
	sf.s.mu.Unlock()
	if gr.outcome != "success" {
		sf.s.gatewayFailed(r.Context(), ri, o.id, gr, swallow, viaStorefront)
	}
	http.Redirect(w, r, confirmation, http.StatusSeeOther)
}

func (sf *storefront) handleConfirmation(w http.ResponseWriter, r *http.Request) {
	sess, ok := sf.user(w, r)
	if !ok {
		return
	}
	o := sf.order(w, r, sess)
	if o == nil {
		return
	}
	sf.s.settle(o, sf.s.now())
	name, _ := productName(o.sku)
	v := orderView{ID: o.id, SKU: o.sku, Name: name, Status: o.status, Message: statusMessage(o.status),
		Amount: money(o.amount), Final: finalStatus(o.status)}
	sf.s.mu.Unlock()
	infoFrom(r.Context()).orderID = v.ID
	render(w, http.StatusOK, sf.csp, "order.html", pageData{Title: "Order " + v.ID, User: sess.user, Order: &v})
}

// handleStatus is what the confirmation page polls (a fetch): the order's
// status as JSON.
func (sf *storefront) handleStatus(w http.ResponseWriter, r *http.Request) {
	_, sess, ok := sf.session(r)
	if !ok || sess.user == "" {
		writeError(w, http.StatusUnauthorized, "unauthorized", "log in first")
		return
	}
	id := r.PathValue("id")
	sf.s.mu.Lock()
	o, ok := sf.s.orders.get(id)
	if !ok || o.user != sess.user {
		sf.s.mu.Unlock()
		writeError(w, http.StatusNotFound, "order_not_found", "")
		return
	}
	sf.s.settle(o, sf.s.now())
	st := o.status
	sf.s.mu.Unlock()
	infoFrom(r.Context()).orderID = id
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": st, "message": statusMessage(st)})
}
