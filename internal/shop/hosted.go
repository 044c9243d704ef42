package shop

import (
	"crypto/rand"
	"math/big"
	"net/http"
	"net/url"
	"time"
)

// The gateway's hosted payment page: the shop creates a checkout session
// (server to server, with the URL to return to), sends the customer's
// browser to the page on the gateway's own origin, and the page, once the
// card is accepted, sends the browser back to the shop with a payment
// token the shop then charges. Card numbers never reach the shop.

const maxCheckoutSessions = 10000

type checkoutSession struct {
	checkoutRequest
	returnOrigin string
}

type hostedPay struct {
	faults   *Faults
	now      func() time.Time
	sessions *sessionStore[checkoutSession] // a payment link lives an hour
}

// hostedRoutes are the gateway's checkout sessions and hosted page.
func (g *gateway) hostedRoutes() []route {
	h := &hostedPay{faults: g.faults, now: g.now}
	h.sessions = newSessionStore[checkoutSession](func() time.Time { return h.now() }, time.Hour, maxCheckoutSessions,
		func() string { return "cs_" + randomHex(16) })
	return []route{
		{"POST " + checkoutPath, http.StatusCreated, h.handleCreate},
		{"GET /pay/{id}", http.StatusOK, h.handlePage},
		{"POST /pay/{id}", http.StatusSeeOther, h.handlePay},
		{"GET " + hostedStatic + "{file}", http.StatusOK, staticFiles("web/static/pay", hostedStatic)},
	}
}

func (h *hostedPay) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req checkoutRequest
	if !decodeBody(w, r, &req) {
		return
	}
	infoFrom(r.Context()).orderID = req.OrderID
	u, err := url.Parse(req.ReturnURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_return_url", "return_url must be an absolute http(s) URL")
		return
	}
	if req.AmountCents <= 0 || len(req.Currency) != 3 || req.OrderID == "" || len(req.OrderID) > 64 || len(req.Description) > 200 {
		writeError(w, http.StatusUnprocessableEntity, "invalid_request",
			"amount_cents > 0, 3-letter currency, order_id and a short description are required")
		return
	}
	id := h.sessions.start(checkoutSession{checkoutRequest: req, returnOrigin: u.Scheme + "://" + u.Host})
	writeJSON(w, http.StatusCreated, map[string]string{"id": id, "url": "/pay/" + id})
}

// hostedData is what the hosted page shows.
type hostedData struct {
	Title, Amount, Description, Merchant, Error string
	Action                                      string
	Widget                                      string // "missing" under pay_script_error
	Consent                                     bool   // pay_button_hidden: an overlay over the page
}

func (h *hostedPay) render(w http.ResponseWriter, r *http.Request, status int, cs checkoutSession, msg string) {
	eff := h.faults.Effective(infoFrom(r.Context()).region, h.now())
	d := hostedData{Title: "Pay " + money(cs.AmountCents), Amount: money(cs.AmountCents), Description: cs.Description,
		Merchant: cs.returnOrigin, Error: msg, Action: r.URL.Path, Widget: "card", Consent: eff.PayButtonHidden}
	if eff.PayScriptError {
		d.Widget = "missing" // pay.js trips over it: a release that broke the page
	}
	// Forms go back to this page and, by its redirect, to the shop.
	render(w, status, strictCSP("'self' "+cs.returnOrigin), "pay.html", d)
}

func (h *hostedPay) handlePage(w http.ResponseWriter, r *http.Request) {
	cs, ok := h.sessions.get(r.PathValue("id"))
	if !ok {
		render(w, http.StatusNotFound, strictCSP("'self'"), "pay_error.html", hostedData{Title: "Payment link expired"})
		return
	}
	infoFrom(r.Context()).orderID = cs.OrderID
	h.render(w, r, http.StatusOK, cs, "")
}

// handlePay takes the card: the declined test card is refused on the page;
// any other valid number is accepted and the browser goes back to the
// shop with a payment token (a 16-digit network token, which the gateway's
// charges take as a card).
func (h *hostedPay) handlePay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cs, ok := h.sessions.get(id)
	if !ok {
		render(w, http.StatusNotFound, strictCSP("'self'"), "pay_error.html", hostedData{Title: "Payment link expired"})
		return
	}
	infoFrom(r.Context()).orderID = cs.OrderID
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.render(w, r, http.StatusBadRequest, cs, "The form could not be read.")
		return
	}
	card := r.PostForm.Get("card")
	switch {
	case !validCard(card):
		h.render(w, r, http.StatusUnprocessableEntity, cs, "Enter a card number of 12 to 19 digits.")
		return
	case card == declinedCard:
		h.render(w, r, http.StatusPaymentRequired, cs, "Your card was declined.")
		return
	}
	h.sessions.end(id)              // one payment per session
	u, _ := url.Parse(cs.ReturnURL) // checked when the session was made
	q := u.Query()
	q.Set("payment_token", networkToken())
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// networkToken is a random 16-digit number starting with 9 (no card
// network's prefix).
func networkToken() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1e15))
	return "9" + leftPad(n.String(), 15)
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}
