// Package shop is the sandbox shop used by `prober demo`, tests and
// end-to-end tests: a small checkout API that pays through a fake bank
// gateway over real HTTP, with faults switchable at run time. It exists to
// reproduce the story prober was built for: the gateway fails, the shop
// swallows the failure into 200 "processing", and only a prober that
// follows the order to settlement notices.
package shop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	defaultUser           = "synthetic-1"
	defaultSettleDelay    = 300 * time.Millisecond
	defaultGatewayTimeout = 5 * time.Second
	sessionTTL            = time.Hour
	maxSessions           = 10000
	maxOrders             = 10000
	maxIdemKeysPerOrder   = 100
	maxIdemKeyLen         = 255
	currencyEUR           = "EUR"
)

// Order statuses.
const (
	statusCreated    = "created"
	statusProcessing = "processing"
	statusPaid       = "paid"
	statusConfirmed  = "confirmed"
	statusFailed     = "failed"
	statusCancelled  = "cancelled"
)

// gatewayOutcomes are the outcome label values of shop_gateway_requests_total.
func gatewayOutcomes() []string {
	return []string{"success", "http_4xx", "http_429", "http_5xx", "timeout", "error"}
}

// priceCents is the catalogue. A function rather than a map variable so the
// package has no mutable globals.
func priceCents(sku string) (int64, bool) {
	switch sku {
	case "SENTINEL-SKU-1":
		return 1999, true
	case "SENTINEL-SKU-2":
		return 4999, true
	case "TSHIRT-M":
		return 2500, true
	case "MUG":
		return 1200, true
	}
	return 0, false
}

// Options configure a Shop.
type Options struct {
	User           string        // synthetic user name; default "synthetic-1"
	Password       string        // required (no default password)
	SettleDelay    time.Duration // paid -> confirmed after this; default 300ms
	GatewayURL     string        // base URL of the gateway
	Logger         *slog.Logger  // JSON logs; nil = discard. "service":"shop" is added.
	Faults         *Faults       // nil = a private healthy fault state
	Rand           *rand.Rand    // for blips; nil = random seed
	GatewayTimeout time.Duration // client timeout to the gateway; default 5s
}

// Shop is the sandbox shop API. Create it with New.
type Shop struct {
	userHash, passHash [32]byte
	settleDelay        time.Duration
	chargesURL         string
	log                *slog.Logger
	faults             *Faults
	transport          *http.Transport
	client             *http.Client
	now                func() time.Time

	randMu sync.Mutex // *rand.Rand is not safe for concurrent use
	rand   *rand.Rand

	sessions *sessionStore[string] // bearer token -> user
	mu       sync.Mutex            // guards orders and every *order
	orders   *fifo[string, *order]

	reg     *prometheus.Registry
	http    httpMetrics
	gwReqs  *prometheus.CounterVec
	gwDur   prometheus.Histogram
	handler http.Handler
	spans   spans // off until Sandbox.Trace
}

type order struct {
	id, user, sku string
	qty           int
	amount        int64
	status        string
	paymentID     string
	paidAt        time.Time
	paying        bool                    // a gateway call is in flight
	idem          map[string]storedResult // Idempotency-Key -> first result
}

type storedResult struct {
	status     int
	body       any
	retryAfter string
}

// New validates o and builds a Shop.
func New(o Options) (*Shop, error) {
	if o.Password == "" {
		return nil, errors.New("shop: Options.Password is required")
	}
	if o.User == "" {
		o.User = defaultUser
	}
	if o.SettleDelay < 0 {
		return nil, errors.New("shop: Options.SettleDelay must not be negative")
	}
	if o.SettleDelay == 0 {
		o.SettleDelay = defaultSettleDelay
	}
	if o.GatewayTimeout < 0 {
		return nil, errors.New("shop: Options.GatewayTimeout must not be negative")
	}
	if o.GatewayTimeout == 0 {
		o.GatewayTimeout = defaultGatewayTimeout
	}
	u, err := url.Parse(o.GatewayURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("shop: Options.GatewayURL must be an absolute http(s) URL, got %q", o.GatewayURL)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Faults == nil {
		o.Faults = NewFaults()
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	// A private transport: no proxy from the environment (the sandbox is
	// loopback only) and idle connections we can close on shutdown.
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: o.GatewayTimeout}).DialContext,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: o.GatewayTimeout,
	}
	s := &Shop{
		userHash:    sha256.Sum256([]byte(o.User)),
		passHash:    sha256.Sum256([]byte(o.Password)),
		settleDelay: o.SettleDelay,
		chargesURL:  strings.TrimRight(u.String(), "/") + "/v1/charges",
		log:         o.Logger.With("service", "shop"),
		faults:      o.Faults,
		transport:   tr,
		client: &http.Client{
			Transport: tr,
			Timeout:   o.GatewayTimeout,
			// A gateway redirect is a gateway error, not something to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now:    time.Now,
		rand:   o.Rand,
		orders: newFIFO[string, *order](maxOrders),
		reg:    prometheus.NewRegistry(),
	}
	s.sessions = newSessionStore[string](func() time.Time { return s.now() }, sessionTTL, maxSessions, nil)
	s.client.Transport = &spanTransport{base: tr, spans: &s.spans} // client spans once tracing is on
	s.handler = s.routes()
	return s, nil
}

// Handler serves the API, /metrics, /healthz and /admin/faults.
func (s *Shop) Handler() http.Handler { return s.handler }

// Close releases idle keep-alive connections to the gateway so no
// transport goroutines outlive the shop.
func (s *Shop) Close() { s.transport.CloseIdleConnections() }

func (s *Shop) routes() http.Handler {
	api := []route{
		{"POST /api/login", http.StatusOK, s.handleLogin},
		{"POST /api/orders", http.StatusCreated, s.handleCreateOrder},
		{"GET /api/orders/{id}", http.StatusOK, s.handleGetOrder},
		{"POST /api/orders/{id}/pay", http.StatusOK, s.handlePay},
		{"DELETE /api/orders/{id}", http.StatusOK, s.handleCancel},
	}
	ops := []route{
		{"GET /healthz", http.StatusOK, handleHealthz},
		{"GET /metrics", http.StatusOK, promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}).ServeHTTP},
		{"GET /admin/faults", http.StatusOK, s.faults.handleGet},
		{"PUT /admin/faults", http.StatusOK, s.faults.handlePut(s.now)},
		{"DELETE /admin/faults", http.StatusOK, s.faults.handleDelete},
	}
	pages := s.storefrontRoutes() // storefront.go: the HTML storefront, faulted like the API
	s.http = newHTTPMetrics(s.reg, "shop", append(append(append([]route(nil), api...), ops...), pages...))
	s.gwReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shop_gateway_requests_total",
		Help: "Calls from the shop to the payment gateway by outcome.",
	}, []string{"outcome"})
	s.gwDur = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "shop_gateway_request_duration_seconds",
		Help:    "Latency of calls from the shop to the payment gateway.",
		Buckets: prometheus.DefBuckets,
	})
	s.reg.MustRegister(s.gwReqs, s.gwDur)
	for _, o := range gatewayOutcomes() {
		s.gwReqs.WithLabelValues(o)
	}

	mux := http.NewServeMux()
	for _, rt := range api {
		// Faults (blips, resets) hit the API only, never ops endpoints, so
		// the demo can always be observed and repaired.
		mux.Handle(rt.pattern, s.apiFaults(rt.h))
	}
	for _, rt := range ops {
		mux.HandleFunc(rt.pattern, rt.h)
	}
	for _, rt := range pages {
		mux.Handle(rt.pattern, s.apiFaults(rt.h))
	}
	return instrument(s.log, s.http, mux, &s.spans)
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// apiFaults applies ResetConnections and BlipRate to API requests.
func (s *Shop) apiFaults(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoFrom(r.Context())
		if id := r.PathValue("id"); id != "" && len(id) <= 64 {
			ri.orderID = id // so even blipped or reset requests are attributable
		}
		eff := s.faults.Effective(ri.region, s.now())
		if eff.ResetConnections {
			ri.reset = true
			ri.resetConn = resetConnection(w)
			if !ri.counted {
				_ = ri.resetConn.Close()
			}
			return
		}
		if eff.BlipRate > 0 && s.float64() < eff.BlipRate {
			writeError(w, http.StatusServiceUnavailable, "transient", "")
			return
		}
		next(w, r)
	})
}

// resetConnection takes the TCP connection from net/http so that it is
// dropped without an HTTP answer when the caller closes it. Linger 0 turns
// the close into an RST, which is what a crashing proxy looks like.
func resetConnection(w http.ResponseWriter) io.Closer {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 and test recorders cannot hijack; aborting the handler
		// makes net/http drop the stream/connection instead.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return conn
}

func (s *Shop) float64() float64 {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.rand.Float64()
}

type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func (s *Shop) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if !s.validLogin(req.User, req.Password) {
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "")
		return
	}
	token := s.sessions.start(req.User)
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "expires_in": int(sessionTTL.Seconds())})
}

// authenticate returns the session user, answering 401 itself otherwise.
func (s *Shop) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if strings.EqualFold(scheme, "Bearer") && token != "" {
		if user, ok := s.sessions.get(token); ok {
			return user, true
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="shop"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", "missing, unknown or expired bearer token")
	return "", false
}

type orderJSON struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	SKU         string `json:"sku"`
	Qty         int    `json:"qty"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	PaymentID   string `json:"payment_id,omitempty"`
}

func (o *order) json() orderJSON {
	return orderJSON{ID: o.id, Status: o.status, SKU: o.sku, Qty: o.qty, AmountCents: o.amount, Currency: currencyEUR, PaymentID: o.paymentID}
}

// settle moves a paid order to confirmed once SettleDelay has passed.
// Computed lazily on access, so there is no timer or goroutine per order.
func (s *Shop) settle(o *order, now time.Time) {
	if o.status == statusPaid && now.Sub(o.paidAt) >= s.settleDelay {
		o.status = statusConfirmed
	}
}

type createOrderRequest struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

func (s *Shop) handleCreateOrder(w http.ResponseWriter, r *http.Request) {
	user, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	var req createOrderRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Qty < 1 || req.Qty > 100 {
		writeError(w, http.StatusUnprocessableEntity, "invalid_qty", "qty must be between 1 and 100")
		return
	}
	price, ok := priceCents(req.SKU)
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_sku", "")
		return
	}
	o := &order{
		id: "ord_" + randomHex(12), user: user, sku: req.SKU, qty: req.Qty,
		amount: price * int64(req.Qty), status: statusCreated,
	}
	s.mu.Lock()
	s.orders.put(o.id, o)
	body := o.json()
	s.mu.Unlock()
	infoFrom(r.Context()).orderID = o.id
	w.Header().Set("Location", "/api/orders/"+o.id)
	writeJSON(w, http.StatusCreated, body)
}

// lookup returns the caller's order with s.mu held, or answers 404 and
// returns nil with s.mu released.
func (s *Shop) lookup(w http.ResponseWriter, r *http.Request, user string) *order {
	id := r.PathValue("id")
	s.mu.Lock()
	o, ok := s.orders.get(id)
	if !ok || o.user != user {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "order_not_found", "")
		return nil
	}
	return o
}

func (s *Shop) handleGetOrder(w http.ResponseWriter, r *http.Request) {
	user, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	o := s.lookup(w, r, user)
	if o == nil {
		return
	}
	s.settle(o, s.now())
	body := o.json()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (s *Shop) handleCancel(w http.ResponseWriter, r *http.Request) {
	user, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	o := s.lookup(w, r, user)
	if o == nil {
		return
	}
	if o.paying {
		// Cancelling under a charge in flight would race the gateway result.
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "payment_in_progress", "retry once the payment has completed")
		return
	}
	o.status = statusCancelled
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"id": o.id, "status": statusCancelled})
}

type payRequest struct {
	Card string `json:"card"`
	Mode string `json:"mode"`
}

type chargeRequest struct {
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Card        string `json:"card"`
	OrderID     string `json:"order_id"`
}

// gatewayResult is the shop's view of one gateway call.
type gatewayResult struct {
	outcome    string // one of gatewayOutcomes
	status     int    // HTTP status; 0 for timeouts and transport errors
	chargeID   string
	retryAfter string
	err        error
}

func (s *Shop) handlePay(w http.ResponseWriter, r *http.Request) {
	user, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	var req payRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Mode != "" && req.Mode != "sandbox" {
		writeError(w, http.StatusUnprocessableEntity, "unsupported_mode", `mode must be "sandbox"`)
		return
	}
	if !validCard(req.Card) {
		writeError(w, http.StatusUnprocessableEntity, "invalid_card", "card must be 12 to 19 digits")
		return
	}
	key := r.Header.Get(headerIdemKey)
	if len(key) > maxIdemKeyLen {
		writeError(w, http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key is limited to 255 characters")
		return
	}

	o := s.lookup(w, r, user)
	if o == nil {
		return
	}
	if res, ok := o.idem[key]; ok && key != "" {
		s.mu.Unlock()
		w.Header().Set("Idempotent-Replayed", "true")
		writeStored(w, res)
		return
	}
	s.settle(o, s.now())
	var conflict string
	switch {
	case o.paying:
		conflict = "payment_in_progress"
	case o.status == statusPaid || o.status == statusConfirmed:
		conflict = "already_paid"
	case o.status == statusCancelled:
		conflict = "order_cancelled"
	}
	if conflict != "" {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, conflict, "")
		return
	}
	o.paying = true
	charge := chargeRequest{AmountCents: o.amount, Currency: currencyEUR, Card: req.Card, OrderID: o.id}
	s.mu.Unlock()

	ri := infoFrom(r.Context())
	gr := s.callGateway(r.Context(), ri, key, charge)
	swallow := s.faults.Effective(ri.region, s.now()).SwallowErrors

	var res storedResult
	s.mu.Lock()
	o.paying = false
	switch {
	case gr.outcome == "success":
		o.status, o.paymentID, o.paidAt = statusPaid, gr.chargeID, s.now()
		res = storedResult{status: http.StatusOK, body: map[string]string{
			"status": "success", "order_id": o.id, "payment_id": gr.chargeID}}
	case swallow:
		// The bug of the story: the failure is hidden behind a 200 and the
		// order sits in "processing" forever.
		o.status = statusProcessing
		res = storedResult{status: http.StatusOK, body: map[string]string{
			"status": statusProcessing, "order_id": o.id}}
	default:
		o.status = statusFailed
		res = storedResult{status: http.StatusBadGateway, retryAfter: gr.retryAfter, body: map[string]any{
			"error": "payment_gateway_error", "gateway_status": gr.status, "order_id": o.id}}
	}
	// Gateway failures are not remembered: a retry with the same key must
	// reach the gateway again (which dedups by key itself), otherwise one
	// 504 would poison the key forever.
	if key != "" && res.status != http.StatusBadGateway && len(o.idem) < maxIdemKeysPerOrder {
		if o.idem == nil {
			o.idem = map[string]storedResult{}
		}
		o.idem[key] = res
	}
	s.mu.Unlock()

	if gr.outcome != "success" {
		s.gatewayFailed(r.Context(), ri, o.id, gr, swallow, "")
	}
	writeStored(w, res)
}

// gatewayFailed reports a failed gateway call of a pay, by the API or the
// storefront (via): a log line, and on the server span an exception event
// (with shop.gateway.error_swallowed=true when swallowed). Both paths say
// it the same way, so a trace of either shows what the answer hid.
func (s *Shop) gatewayFailed(ctx context.Context, ri *reqInfo, orderID string, gr gatewayResult, swallow bool, via string) {
	msg := "gateway_error"
	if swallow {
		msg = "gateway_error_swallowed"
	}
	attrs := []any{
		"event", msg, "order_id", orderID, "gateway_status", gr.status, "outcome", gr.outcome,
		"trace_id", ri.trace.traceID, "region", ri.region,
	}
	if via != "" {
		attrs = append(attrs, "via", via)
	}
	if gr.err != nil {
		attrs = append(attrs, "err", gr.err.Error())
	}
	// What the caller got instead of the failure: the API answers 200
	// "processing"; the storefront redirects to a confirmation page that
	// says processing.
	hidden := fmt.Sprintf("200 %q", statusProcessing)
	if via == viaStorefront {
		hidden = fmt.Sprintf("a confirmation page saying %q", statusProcessing)
	}
	recordGatewayError(ctx, gr, swallow, hidden)
	if swallow {
		s.log.Warn(msg, attrs...)
	} else {
		s.log.Error(msg, attrs...)
	}
}

func writeStored(w http.ResponseWriter, res storedResult) {
	if res.retryAfter != "" {
		// Surface the gateway's back-off hint so clients can honour it.
		w.Header().Set("Retry-After", res.retryAfter)
	}
	writeJSON(w, res.status, res.body)
}

func validCard(c string) bool {
	if len(c) < 12 || len(c) > 19 {
		return false
	}
	for _, d := range []byte(c) {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

// callGateway charges the card at the gateway, propagating trace context
// as a child span and the prober's headers.
func (s *Shop) callGateway(ctx context.Context, ri *reqInfo, key string, charge chargeRequest) (gr gatewayResult) {
	start := time.Now()
	defer func() {
		s.gwDur.Observe(time.Since(start).Seconds())
		s.gwReqs.WithLabelValues(gr.outcome).Inc()
	}()
	body, err := json.Marshal(charge)
	if err != nil {
		return gatewayResult{outcome: "error", err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.chargesURL, bytes.NewReader(body))
	if err != nil {
		return gatewayResult{outcome: "error", err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerTraceparent, ri.trace.traceparent())
	if ri.trace.tracestate != "" {
		req.Header.Set(headerTracestate, ri.trace.tracestate)
	}
	if ri.region != "" {
		req.Header.Set(headerRegion, ri.region)
	}
	if ri.synthetic {
		req.Header.Set(headerSynthetic, "1")
	}
	if key != "" {
		req.Header.Set(headerIdemKey, key)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if isTimeout(err) {
			return gatewayResult{outcome: "timeout", err: err}
		}
		return gatewayResult{outcome: "error", err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	gr = gatewayResult{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		var ch struct {
			ID string `json:"id"`
		}
		if err != nil {
			gr.outcome, gr.err = errOutcome(err), err
		} else if jerr := json.Unmarshal(raw, &ch); jerr != nil || ch.ID == "" {
			gr.outcome, gr.err = "error", fmt.Errorf("gateway %d with unusable body: %q", c, truncate(raw, 200))
		} else {
			gr.outcome, gr.chargeID = "success", ch.ID
		}
	case c == http.StatusTooManyRequests:
		gr.outcome = "http_429"
	case c >= 400 && c < 500:
		gr.outcome = "http_4xx"
	case c >= 500 && c < 600:
		gr.outcome = "http_5xx"
	default:
		gr.outcome = "error"
	}
	if gr.outcome != "success" && gr.err == nil {
		gr.err = fmt.Errorf("gateway answered %d: %s", resp.StatusCode, truncate(raw, 200))
	}
	return gr
}

func errOutcome(err error) string {
	if isTimeout(err) {
		return "timeout"
	}
	return "error"
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func truncate(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// retryAfterSeconds renders d as Retry-After seconds, rounded up, min 1.
func retryAfterSeconds(d time.Duration) string {
	secs := int64(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return strconv.FormatInt(secs, 10)
}
