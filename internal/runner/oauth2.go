package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

// tokenCache is a flow's OAuth2 client credentials token: fetched by the
// first HTTP step of a run that needs it and kept, across runs, until it
// expires (less oauth2's 10s margin), so a flow run every 30s does not ask
// the token server every 30s.
type tokenCache struct {
	cfg     clientcredentials.Config
	secrets *secret.Set // the configured secrets

	mu  sync.Mutex
	tok *oauth2.Token
	set *secret.Set // the configured secrets and the token: what runs redact
}

// noExpiryKeep is how long a token without expires_in is kept: a revoked
// one must not fail the flow forever.
const noExpiryKeep = time.Hour

// tokenName is the token's name in the redaction set: it shows as
// [secret:oauth2-token].
const tokenName = "oauth2-token"

func newTokenCache(a *config.OAuth2, secrets *secret.Set) *tokenCache {
	return &tokenCache{
		cfg: clientcredentials.Config{
			ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL,
			Scopes: a.Scopes, EndpointParams: a.EndpointParams,
		},
		secrets: secrets,
	}
}

// token returns a valid access token and the redaction set that holds it,
// fetching a new one through client when the kept one has expired.
func (c *tokenCache) token(ctx context.Context, client *http.Client) (string, *secret.Set, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.Valid() {
		return c.tok.AccessToken, c.set, nil
	}
	tok, err := c.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return "", nil, err
	}
	if secret.Short(tok.AccessToken) {
		// Masking a short value would shred every message; using it
		// unmasked would show it. Neither: the step fails.
		return "", nil, errShortToken
	}
	if tok.Expiry.IsZero() {
		tok.Expiry = time.Now().Add(noExpiryKeep)
	}
	values := map[string]string{tokenName: tok.AccessToken}
	for _, n := range c.secrets.Names() {
		values[n], _ = c.secrets.Get(n)
	}
	c.tok, c.set = tok, secret.NewSet(values)
	return tok.AccessToken, c.set, nil
}

// forget drops tok if it is the kept token: the API refused it (revoked
// before it expired), so the next run fetches another instead of failing
// until it expires.
func (c *tokenCache) forget(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.AccessToken == tok {
		c.tok = nil
	}
}

var errShortToken = fmt.Errorf("the token server answered a token shorter than %d characters, too short to keep out of the output", secret.MinLen)

// bearer gets the run its token before an HTTP step (once per run; a
// failure fails this step and every later one that needs it, without
// asking again in the same run). It returns a class and message on
// failure.
func (r *run) bearer(ctx context.Context, st *config.Step) (result.Class, string) {
	if r.tokenClass != "" || r.token != "" {
		return r.tokenClass, r.tokenMsg
	}
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	// The run's transport (the flow's TLS settings), not its cookie jar
	// or redirect policy.
	tok, set, err := r.f.auth().token(ctx, &http.Client{Transport: r.client.Transport})
	if err != nil {
		class, msg := tokenFailure(err, attemptState{stepTimeout: st.Timeout})
		r.tokenClass, r.tokenMsg = class, fmt.Sprintf("oauth2 token from %s: %s", r.f.auth().cfg.TokenURL, msg)
		return r.tokenClass, r.tokenMsg
	}
	r.token, r.secrets, r.redacts = tok, set, true
	return "", ""
}

// tokenFailure classifies a failed token request like a step's: the
// token server's status or the transport's failure; a 2xx without a
// usable token is a swallowed error. The message holds the OAuth2 error
// code and description, never the body.
func tokenFailure(err error, st attemptState) (result.Class, string) {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		msg := fmt.Sprintf("status %d", re.Response.StatusCode)
		if re.ErrorCode != "" {
			msg += ", error " + re.ErrorCode
		}
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		if re.Response.StatusCode < 400 {
			return result.SwallowedError, msg
		}
		return StatusClass(re.Response.StatusCode), msg
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return classify(err, st)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return result.Timeout, fmt.Sprintf("no token within the step timeout %s", st.stepTimeout)
	}
	// The server answered 2xx with no token, or one that does not parse.
	return result.SwallowedError, err.Error()
}
