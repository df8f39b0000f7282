package kube

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flakyServer is a real HTTP server on loopback whose first failures
// requests fail as fail says: "refuse" closes the listener's connections
// at once (the client sees them reset or closed), "503" answers 503.
type flakyServer struct {
	addr     string
	requests atomic.Int32
	mu       sync.Mutex
	bodies   []string
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
		s.bodies = append(s.bodies, string(body))
		s.mu.Unlock()
		if n <= failures {
			if fail == "503" {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			// Cut the connection without an answer, as a server that
			// goes away does.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
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

// fastBackoff keeps the tests short; the attempts are what is tested.
func fastBackoff() backoff {
	return backoff{first: 10 * time.Millisecond, most: 40 * time.Millisecond, attempts: 5}
}

func retryingClient(logs *[]string) *http.Client {
	var mu sync.Mutex
	logf := func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		*logs = append(*logs, fmt.Sprintf(f, a...))
	}
	tr := &retryTransport{next: &http.Transport{DisableKeepAlives: true}, logf: logf, backoff: fastBackoff}
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
		{"503 while starting", http.MethodGet, "", 3, "503", true, 4, "answered 503 Service Unavailable"},
		{"POST never sent twice", http.MethodPost, `{"kind":"TokenRequest"}`, 1, "refuse", false, 1, ""},
		{"gives up after the last attempt", http.MethodGet, "", 100, "503", false, 5, "attempt 5"},
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

func TestTransientBackoff(t *testing.T) {
	b := transientBackoff()
	var got []time.Duration
	for n := 1; n < b.attempts; n++ {
		got = append(got, b.pause(n))
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pauses %v, want %v", got, want)
	}
}

func TestRetryTransportStopsWithItsContext(t *testing.T) {
	s := startFlaky(t, 100, "503")
	var logs []string
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Millisecond)
	defer cancel()
	tr := retryingClient(&logs).Transport.(*retryTransport)
	tr.backoff = func() backoff { return backoff{first: time.Hour, most: time.Hour, attempts: 5} }
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/version", nil)
	if _, err := (&http.Client{Transport: tr}).Do(req); err == nil {
		t.Fatal("no error once the context ended")
	}
	if n := s.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1: the pause ended with the context", n)
	}
}
