package runner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// errTooManyRedirects is returned by CheckRedirect; classify maps it to Redirect.
var errTooManyRedirects = errors.New("too many redirects")

// errRedirectScheme is returned by CheckRedirect for a Location that is not
// http or https (file:, javascript:, gopher:); classify maps it to Request,
// like such a URL in the configuration.
var errRedirectScheme = errors.New("redirect to an unsupported URL scheme")

// attemptState is what was known when a transport error happened.
type attemptState struct {
	dnsStarted, dnsDone, connected, gotFirstByte bool
	tlsStarted, tlsDone                          bool
	readingBody                                  bool
	bodyBytes                                    int64
	stepTimeout                                  time.Duration
	flowDeadline                                 bool // the run's own deadline expired (not only the attempt's)
	reply                                        bool // a step kind's attempt: it awaits a reply, not response headers
}

// classify maps a transport error to a class and a sentence for people. The
// sentence never holds the URL (it may carry secrets or tokens): the URL is
// shown, redacted, beside it.
func classify(err error, st attemptState) (result.Class, string) {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, errTooManyRedirects):
		return result.Redirect, err.Error()
	case errors.Is(err, errRedirectScheme):
		return result.Request, err.Error()
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return result.DNS, "dns: lookup of " + dnsErr.Name + " timed out"
		}
		if dnsErr.IsNotFound {
			return result.DNS, "dns: no such host " + dnsErr.Name
		}
		return result.DNS, "dns: " + dnsErr.Error()
	case isTimeout(err):
		return timeoutClass(st)
	case errors.Is(err, syscall.ECONNREFUSED):
		return result.ConnectRefused, "connection refused" + opAddr(err)
	case isTLS(err):
		return result.TLS, "tls: " + tlsMessage(err)
	case errors.Is(err, syscall.ECONNRESET):
		return result.Network, "connection reset by peer" + during(st)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.EPIPE):
		return result.Network, "connection closed by peer" + during(st)
	case errors.Is(err, context.Canceled):
		return result.Timeout, "cancelled: the prober is shutting down"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return result.ConnectRefused, "connect: " + opErr.Err.Error()
	}
	return result.Network, err.Error() + during(st)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// decodeWaitClass classifies a body received whole whose decoding waited
// for memory (brotliWindows) until the attempt's context ended.
func decodeWaitClass(err error, st attemptState) (result.Class, string) {
	if !isTimeout(err) {
		return classify(err, st) // cancelled: the prober is shutting down
	}
	return result.Timeout, "body not decoded within " + timeoutLimit(st) + ": " + err.Error()
}

func timeoutLimit(st attemptState) string {
	if st.flowDeadline {
		return "the flow timeout"
	}
	return fmt.Sprintf("the step timeout (%s)", st.stepTimeout)
}

func timeoutClass(st attemptState) (result.Class, string) {
	limit := timeoutLimit(st)
	switch {
	case st.dnsStarted && !st.dnsDone:
		return result.DNS, "dns: lookup not finished within " + limit
	case !st.connected:
		return result.ConnectTimeout, "no connection within " + limit
	case st.tlsStarted && !st.tlsDone:
		// A handshake that never finishes is a TLS failure, not a slow
		// server: no request was sent yet.
		return result.TLS, "tls: handshake not finished within " + limit
	case st.reply && st.connected && (!st.tlsStarted || st.tlsDone):
		return result.Timeout, "no reply within " + limit
	case st.reply:
		return result.Timeout, "not finished within " + limit
	case !st.gotFirstByte:
		return result.Timeout, "no response headers within " + limit
	default:
		return result.Timeout, fmt.Sprintf("body not complete within %s (%d bytes read)", limit, st.bodyBytes)
	}
}

func isTLS(err error) bool {
	var (
		rh   tls.RecordHeaderError
		cv   *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		ci   x509.CertificateInvalidError
		alrt tls.AlertError
	)
	switch {
	case errors.As(err, &rh), errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &he),
		errors.As(err, &ci), errors.As(err, &alrt):
		return true
	}
	// Handshake failures from crypto/tls are plain errors prefixed "tls:".
	return strings.Contains(err.Error(), "tls: ")
}

func tlsMessage(err error) string {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return cv.Err.Error()
	}
	return strings.TrimPrefix(err.Error(), "tls: ")
}

func opAddr(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Addr != nil {
		return " (" + opErr.Addr.String() + ")"
	}
	return ""
}

func during(st attemptState) string {
	switch {
	case st.readingBody:
		return fmt.Sprintf(" while reading the body (%d bytes read)", st.bodyBytes)
	case st.reply && st.connected:
		return " before the reply"
	case st.connected && !st.gotFirstByte:
		return " before response headers"
	}
	return ""
}
