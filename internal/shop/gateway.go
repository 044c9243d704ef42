package shop

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// declinedCard is the test card the gateway always declines.
const declinedCard = "4000000000000002"

const maxCharges = 10000

// gatewayChargeOutcomes are the outcome label values of gateway_charges_total.
func gatewayChargeOutcomes() []string {
	return []string{"succeeded", "replayed", "declined", "fault", "invalid", "cancelled"}
}

type gateway struct {
	faults  *Faults
	log     *slog.Logger
	now     func() time.Time
	charges *prometheus.CounterVec

	mu   sync.Mutex
	keys *fifo[string, charge] // Idempotency-Key -> charge
}

type charge struct {
	id, orderID string
	amount      int64
}

// NewGateway returns the fake bank gateway: POST /v1/charges, GET /healthz
// and GET /metrics (its own registry). It honours GatewayStatus,
// GatewayDelay and RetryAfter from faults for the X-Prober-Region of each
// request. A nil logger discards; "service":"gateway" is added.
func NewGateway(faults *Faults, logger *slog.Logger) http.Handler {
	return newGateway(faults, logger, nil)
}

// newGateway is NewGateway with its server spans in sp (nil: none).
func newGateway(faults *Faults, logger *slog.Logger, sp *spans) http.Handler {
	if faults == nil {
		faults = NewFaults()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	g := &gateway{
		faults: faults,
		log:    logger.With("service", "gateway"),
		now:    time.Now,
		keys:   newFIFO[string, charge](maxCharges),
		charges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_charges_total",
			Help: "Charge attempts at the fake gateway by outcome.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(g.charges)
	for _, o := range gatewayChargeOutcomes() {
		g.charges.WithLabelValues(o)
	}
	routes := []route{
		{"POST /v1/charges", http.StatusOK, g.handleCharge},
		{"GET /healthz", http.StatusOK, handleHealthz},
		{"GET /metrics", http.StatusOK, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP},
	}
	routes = append(routes, g.hostedRoutes()...) // hosted.go
	m := newHTTPMetrics(reg, "gateway", routes)
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, rt.h)
	}
	return instrument(g.log, m, mux, sp)
}

func (g *gateway) handleCharge(w http.ResponseWriter, r *http.Request) {
	ri := infoFrom(r.Context())
	var req chargeRequest
	// Decode before injecting faults so even failed calls log their order.
	if !decodeBody(w, r, &req) {
		g.charges.WithLabelValues("invalid").Inc()
		return
	}
	if len(req.OrderID) <= 64 {
		ri.orderID = req.OrderID
	}

	eff := g.faults.Effective(ri.region, g.now())
	if d := time.Duration(eff.GatewayDelay); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The caller gave up (or the server is shutting down): stop
			// sleeping so no handler outlives its request.
			t.Stop()
			g.charges.WithLabelValues("cancelled").Inc()
			writeError(w, http.StatusServiceUnavailable, "cancelled", "caller went away")
			return
		}
	}
	if st := eff.GatewayStatus; st >= 400 && st <= 599 {
		if st == http.StatusTooManyRequests || (st == http.StatusServiceUnavailable && eff.RetryAfter > 0) {
			ra := time.Duration(eff.RetryAfter)
			if ra == 0 {
				ra = time.Second
			}
			w.Header().Set("Retry-After", retryAfterSeconds(ra))
		}
		g.charges.WithLabelValues("fault").Inc()
		writeError(w, st, faultErrorCode(st), "injected fault")
		return
	}

	if req.AmountCents <= 0 || len(req.Currency) != 3 || !validCard(req.Card) || req.OrderID == "" {
		g.charges.WithLabelValues("invalid").Inc()
		writeError(w, http.StatusUnprocessableEntity, "invalid_request",
			"amount_cents > 0, 3-letter currency, 12-19 digit card and order_id are required")
		return
	}
	if req.Card == declinedCard {
		g.charges.WithLabelValues("declined").Inc()
		writeError(w, http.StatusPaymentRequired, "card_declined", "")
		return
	}

	key := r.Header.Get(headerIdemKey)
	g.mu.Lock()
	if key != "" {
		if c, ok := g.keys.get(key); ok {
			g.mu.Unlock()
			if c.orderID != req.OrderID || c.amount != req.AmountCents {
				// Reusing a key for a different charge is a client bug;
				// answering the old charge would hide it.
				g.charges.WithLabelValues("invalid").Inc()
				writeError(w, http.StatusUnprocessableEntity, "idempotency_key_mismatch",
					"Idempotency-Key was already used for a different charge")
				return
			}
			g.charges.WithLabelValues("replayed").Inc()
			w.Header().Set("Idempotent-Replayed", "true")
			writeJSON(w, http.StatusOK, map[string]string{"id": c.id, "status": "succeeded"})
			return
		}
	}
	c := charge{id: "ch_" + randomHex(12), orderID: req.OrderID, amount: req.AmountCents}
	if key != "" {
		g.keys.put(key, c)
	}
	g.mu.Unlock()
	g.charges.WithLabelValues("succeeded").Inc()
	writeJSON(w, http.StatusOK, map[string]string{"id": c.id, "status": "succeeded"})
}

func faultErrorCode(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusGatewayTimeout:
		return "gateway_timeout"
	case http.StatusServiceUnavailable:
		return "service_unavailable"
	case http.StatusBadGateway:
		return "bad_gateway"
	}
	if status >= 500 {
		return "internal_error"
	}
	if text := http.StatusText(status); text != "" {
		return strings.ReplaceAll(strings.ToLower(text), " ", "_")
	}
	return "client_error"
}
