package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
)

// Bounds of a request that is tried again.
const (
	// attemptTimeout bounds one attempt of a request that may be sent
	// again: a request lost to packet loss is sent again rather than
	// awaited for the whole request's time.
	attemptTimeout = 30 * time.Second
	// retriedRequestTimeout bounds a request with all its attempts and
	// pauses (rest.Config.Timeout of the retrying clients); the step's
	// own deadline bounds it too.
	retriedRequestTimeout = 5 * time.Minute
	// maxRetryAfter caps the wait a server asks for in Retry-After.
	maxRetryAfter = 30 * time.Second
)

// retryPolicy says how a request that failed transiently is tried again:
// attempts in all, with the pauses of backoff (client-go's wait.Backoff:
// doubling, with jitter, up to its cap) between them.
type retryPolicy struct {
	attempts int
	backoff  wait.Backoff
	attempt  time.Duration // bound of one attempt; 0: none
}

// transientPolicy is 7 attempts with pauses of about 0.5 s, 1 s, 2 s,
// 4 s, then 8 s (each ±20%): about 24 s of pauses, within which an API
// server restarting, as k3s does on a config change, is back.
func transientPolicy() retryPolicy {
	return retryPolicy{
		attempts: 7,
		backoff:  wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 7, Cap: 8 * time.Second},
		attempt:  attemptTimeout,
	}
}

// retryTransport tries again the requests that may safely be sent twice
// (GET, HEAD, PUT, PATCH, which server-side apply uses, and DELETE) when
// they fail in the ways a restarting API server or a lossy network
// explain: the connection refused, reset or cut before an answer, an
// attempt timing out, or the server answering 429 (after its Retry-After),
// 500 (an etcd leader change, a webhook not reachable yet), 502, 503 or
// 504. Each attempt is logged; the last error says how many were made.
// A request that creates (POST) is never sent again: the first may have
// arrived.
type retryTransport struct {
	next   http.RoundTripper
	logf   func(format string, args ...any)
	policy func() retryPolicy
}

// Retrying makes the clients of cfg try transient failures again (see
// retryTransport), each attempt logged to logf: every attempt is bounded
// by attemptTimeout, a request with its attempts by
// retriedRequestTimeout.
func Retrying(cfg *rest.Config, logf func(string, ...any)) {
	cfg.Wrap(WithRetries(logf))
	cfg.Timeout = retriedRequestTimeout
}

// WithRetries wraps a transport of a cluster's API in a retryTransport
// that logs its attempts to logf (rest.Config.Wrap).
func WithRetries(logf func(string, ...any)) func(http.RoundTripper) http.RoundTripper {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return &retryTransport{next: next, logf: logf, policy: transientPolicy}
	}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !resendable(req) {
		return t.next.RoundTrip(req)
	}
	p := t.policy()
	for attempt := 1; ; attempt++ {
		resp, err := t.once(req, p.attempt)
		why := transient(req.Context(), resp, err)
		if why == "" {
			return resp, err
		}
		if attempt >= p.attempts {
			if err != nil {
				return nil, fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
			}
			t.logf("API %s: %s %s: %s; gave up after %d attempts", req.URL.Host, req.Method, req.URL.Path, why, attempt)
			return resp, nil
		}
		pause := max(p.backoff.Step(), retryAfter(resp))
		next, rerr := rewound(req)
		if rerr != nil {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		t.logf("API %s: %s %s: %s; trying again in %s (attempt %d of %d)", req.URL.Host, req.Method, req.URL.Path, why,
			pause.Round(100*time.Millisecond), attempt+1, p.attempts)
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(pause):
		}
		req = next
	}
}

// once sends one attempt, bounded by limit unless the request streams (a
// watch, a followed log, an upgrade to a stream). The answer of a request
// that does not stream is read whole within the attempt, so an answer cut
// off while it is read (an API server restarting resets its HTTP/2
// streams) is an attempt that failed, sent again, rather than an error of
// the caller's read.
func (t *retryTransport) once(req *http.Request, limit time.Duration) (*http.Response, error) {
	q := req.URL.Query()
	if q.Get("watch") == "true" || q.Get("follow") == "true" || req.Header.Get("Upgrade") != "" {
		return t.next.RoundTrip(req)
	}
	ctx, cancel := req.Context(), context.CancelFunc(func() {})
	if limit > 0 {
		ctx, cancel = context.WithTimeoutCause(req.Context(), limit, errAttemptTimeout)
	}
	defer cancel()
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			resp.Body = io.NopCloser(bytes.NewReader(body))
			return resp, nil
		}
		err = fmt.Errorf("%w: %w", errAnswerCut, err)
	}
	if errors.Is(context.Cause(ctx), errAttemptTimeout) && req.Context().Err() == nil {
		return nil, fmt.Errorf("%w after %s: %w", errAttemptTimeout, limit, err)
	}
	return nil, err
}

// errAttemptTimeout marks an attempt its own bound ended.
var errAttemptTimeout = errors.New("no answer")

// errAnswerCut marks an answer whose body could not be read to its end.
var errAnswerCut = errors.New("answer cut off while read")

// retryAfter is the wait an answer asks for (Retry-After in seconds),
// capped; 0 without one.
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || s <= 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, maxRetryAfter)
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
		case errors.Is(err, errAttemptTimeout), errors.Is(err, errAnswerCut):
			return err.Error()
		case utilnet.IsConnectionRefused(err):
			return "connection refused"
		case utilnet.IsConnectionReset(err):
			return "connection reset"
		case errors.As(err, new(http2.StreamError)):
			return "stream reset by the server"
		case utilnet.IsProbableEOF(err) || errors.Is(err, io.ErrUnexpectedEOF):
			return "connection closed before an answer"
		case errors.As(err, &ne) && ne.Timeout():
			return "timed out"
		}
		return ""
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fmt.Sprintf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return ""
}
