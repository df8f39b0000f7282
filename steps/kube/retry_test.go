package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
)

// flakyServer is a real HTTP server on loopback whose first failures
// requests fail as fail says: "refuse" cuts the connection without an
// answer (the client sees it reset or closed), "cut body" cuts it after the
// start of an answer, "503" and "500" answer so,
// "429" answers Too Many Requests with Retry-After: 1, "hang" answers
// only after two seconds.
type flakyServer struct {
	addr     string
	requests atomic.Int32
	mu       sync.Mutex
	bodies   []string
	times    []time.Time
}

func startFlaky(t *testing.T, failures int32, fail string) *flakyServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &flakyServer{addr: l.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies, s.times = append(s.bodies, string(body)), append(s.times, time.Now())
		s.mu.Unlock()
		if n <= failures {
			switch fail {
			case "503":
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			case "500":
				http.Error(w, "etcdserver: leader changed", http.StatusInternalServerError)
				return
			case "429":
				w.Header().Set("Retry-After", "1")
				http.Error(w, "too many requests", http.StatusTooManyRequests)
				return
			case "hang":
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
				}
				return
			}
			// Cut the connection without an answer (or, "cut body", in
			// the middle of one), as a server that goes away does.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				if fail == "cut body" {
					fmt.Fprint(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"kind\":")
				}
				if tc, ok := conn.(*net.TCPConn); ok {
					tc.SetLinger(0) // a reset, not a clean close
				}
				conn.Close()
			}
			return
		}
		fmt.Fprint(w, "ok")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

// fastPolicy keeps the tests short; the attempts are what is tested.
func fastPolicy() retryPolicy {
	return retryPolicy{attempts: 5, backoff: wait.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 5, Cap: 40 * time.Millisecond},
		attempt: 300 * time.Millisecond}
}

func retryingClient(logs *[]string) *http.Client {
	var mu sync.Mutex
	logf := func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		*logs = append(*logs, fmt.Sprintf(f, a...))
	}
	tr := &retryTransport{next: &http.Transport{DisableKeepAlives: true}, logf: logf, policy: fastPolicy}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestRetryTransport(t *testing.T) {
	for _, tt := range []struct {
		name       string
		method     string
		body       string
		failures   int32
		fail       string
		wantOK     bool
		wantTries  int32
		wantLogged string
	}{
		{"GET through a cut connection", http.MethodGet, "", 2, "refuse", true, 3, "trying again"},
		{"server-side apply PATCH resent with its body", http.MethodPatch, `{"kind":"ConfigMap"}`, 2, "refuse", true, 3, "PATCH"},
		{"an answer cut off while read is asked for again", http.MethodPatch, `{"kind":"ConfigMap"}`, 1, "cut body", true, 2, "answer cut off while read"},
		{"503 while starting", http.MethodGet, "", 3, "503", true, 4, "answered 503 Service Unavailable"},
		{"500 of an etcd leader change", http.MethodPatch, `{"kind":"ConfigMap"}`, 1, "500", true, 2, "answered 500 Internal Server Error"},
		{"an attempt with no answer is sent again", http.MethodGet, "", 1, "hang", true, 2, "no answer after 300ms"},
		{"POST never sent twice", http.MethodPost, `{"kind":"TokenRequest"}`, 1, "refuse", false, 1, ""},
		{"gives up after the last attempt", http.MethodGet, "", 100, "503", false, 5, "gave up after 5 attempts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startFlaky(t, tt.failures, tt.fail)
			var logs []string
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, "http://"+s.addr+"/api/v1/namespaces/istio-system/configmaps/x", body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := retryingClient(&logs).Do(req)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if resp != nil {
				resp.Body.Close()
			}
			if ok != tt.wantOK || s.requests.Load() != tt.wantTries {
				t.Errorf("ok %v (err %v) after %d requests, want %v after %d; logs %q", ok, err, s.requests.Load(), tt.wantOK, tt.wantTries, logs)
			}
			if tt.wantLogged != "" && !strings.Contains(strings.Join(logs, "\n"), tt.wantLogged) {
				t.Errorf("logs %q lack %q", logs, tt.wantLogged)
			}
			if tt.wantLogged == "" && len(logs) > 0 {
				t.Errorf("logged %q for a request that is not tried again", logs)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for i, b := range s.bodies {
				if b != tt.body {
					t.Errorf("request %d carried %q, want %q", i+1, b, tt.body)
				}
			}
		})
	}
}

func TestTransientPolicy(t *testing.T) {
	p := transientPolicy()
	base := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, want := range base {
		got := p.backoff.Step()
		if got < want || got > want+want/5 {
			t.Errorf("pause %d: %s, want %s plus at most 20%% jitter", i+1, got, want)
		}
	}
	if p.attempts != len(base)+1 {
		t.Errorf("%d attempts, want %d", p.attempts, len(base)+1)
	}
}

// TestRetryTransportHonoursRetryAfter: a 429's Retry-After is waited for,
// longer than the backoff's own pause.
func TestRetryTransportHonoursRetryAfter(t *testing.T) {
	s := startFlaky(t, 1, "429")
	var logs []string
	resp, err := retryingClient(&logs).Get("http://" + s.addr + "/api/v1/namespaces")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("err %v resp %v; logs %q", err, resp, logs)
	}
	resp.Body.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.times) != 2 || s.times[1].Sub(s.times[0]) < time.Second {
		t.Errorf("requests at %v, want a second one at least 1s after the first (Retry-After: 1)", s.times)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "trying again in 1s (attempt 2 of 5)") {
		t.Errorf("logs %q", logs)
	}
}

func TestRetryTransportStopsWithItsContext(t *testing.T) {
	s := startFlaky(t, 100, "503")
	var logs []string
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Millisecond)
	defer cancel()
	tr := retryingClient(&logs).Transport.(*retryTransport)
	tr.policy = func() retryPolicy {
		return retryPolicy{attempts: 5, backoff: wait.Backoff{Duration: time.Hour, Factor: 1, Steps: 5}}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/version", nil)
	if _, err := (&http.Client{Transport: tr}).Do(req); err == nil {
		t.Fatal("no error once the context ended")
	}
	if n := s.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1: the pause ended with the context", n)
	}
}

func TestRetryOp(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	p := fastPolicy()
	for _, tt := range []struct {
		name      string
		errs      []error // what each attempt returns; nil ends
		wantCalls int
		wantErr   string
	}{
		{"refused twice, then through", []error{refused, refused, nil}, 3, ""},
		{"a 503 from the API", []error{apierrors.NewServiceUnavailable("starting"), nil}, 2, ""},
		{"a 403 is not transient", []error{apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New("no")), nil}, 1, "forbidden"},
		{"gives up", []error{refused, refused, refused, refused, refused, refused}, 5, "gave up after 5 attempts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var logs []string
			err := retryOp(context.Background(), p, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }, "pods/portforward x",
				func(context.Context) error {
					calls++
					return tt.errs[calls-1]
				})
			if calls != tt.wantCalls || (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("%d calls, err %v; want %d calls, err %q; logs %q", calls, err, tt.wantCalls, tt.wantErr, logs)
			}
			if len(logs) != max(0, calls-1) {
				t.Errorf("%d log lines for %d calls: %q", len(logs), calls, logs)
			}
		})
	}
}
