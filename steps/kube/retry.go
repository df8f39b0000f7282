package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// backoff says how a request that failed transiently is tried again: the
// pause doubles from first up to most, for attempts in all.
type backoff struct {
	first, most time.Duration
	attempts    int
}

// transientBackoff is 0.5 s, 1 s, 2 s, 4 s, then every 8 s, for at most 7
// attempts (about 24 s of pauses: an API server restarting, as k3s does on
// a config change, is back well within it; every request is bounded by
// the client's 30 s timeout too).
func transientBackoff() backoff {
	return backoff{first: 500 * time.Millisecond, most: 8 * time.Second, attempts: 7}
}

// pause is the wait after the nth failed attempt (1-based).
func (b backoff) pause(n int) time.Duration {
	d := b.first
	for i := 1; i < n && d < b.most; i++ {
		d *= 2
	}
	return min(d, b.most)
}

// retryTransport tries again the requests that may safely be sent twice
// (GET, HEAD, PUT, PATCH, which server-side apply uses, and DELETE) when
// they fail in the ways a restarting API server or a lossy network
// explain: the connection refused, reset or cut before an answer, or the
// server answering 429, 502, 503 or 504. Each attempt is logged. A
// request that creates (POST) is never sent again: the first may have
// arrived.
type retryTransport struct {
	next    http.RoundTripper
	logf    func(format string, args ...any)
	backoff func() backoff
}

// withRetries wraps a transport of the cluster's API in a retryTransport.
func withRetries(logf func(string, ...any)) func(http.RoundTripper) http.RoundTripper {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return &retryTransport{next: next, logf: logf, backoff: transientBackoff}
	}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !resendable(req) {
		return t.next.RoundTrip(req)
	}
	b := t.backoff()
	for attempt := 1; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		why := transient(req.Context(), resp, err)
		if why == "" || attempt >= b.attempts {
			return resp, err
		}
		pause := b.pause(attempt)
		next, rerr := rewound(req)
		if rerr != nil {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		t.logf("API %s: %s %s: %s; trying again in %s (attempt %d)", req.URL.Host, req.Method, req.URL.Path, why, pause.Round(100*time.Millisecond), attempt+1)
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(pause):
		}
		req = next
	}
}

// resendable says whether a request may be sent again: its method is
// idempotent and its body can be read again.
func resendable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return false
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewound is req ready to be sent again, with a fresh body.
func rewound(req *http.Request) (*http.Request, error) {
	next := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		next.Body = body
	}
	return next, nil
}

// transient says why a round trip failed in a way worth another attempt,
// or "" when it did not fail so or the caller gave up (its context ended).
func transient(ctx context.Context, resp *http.Response, err error) string {
	if ctx.Err() != nil {
		return ""
	}
	if err != nil {
		var ne net.Error
		switch {
		case utilnet.IsConnectionRefused(err):
			return "connection refused"
		case utilnet.IsConnectionReset(err):
			return "connection reset"
		case utilnet.IsProbableEOF(err) || errors.Is(err, io.ErrUnexpectedEOF):
			return "connection closed before an answer"
		case errors.As(err, &ne) && ne.Timeout():
			return "timed out"
		}
		return ""
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fmt.Sprintf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return ""
}
