package kube

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/testbed"
)

// discoveryCounter counts the discovery requests (/api, /apis and their
// group versions) a client sends.
type discoveryCounter struct {
	next http.RoundTripper
	n    *atomic.Int32
}

func (d discoveryCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	path := strings.Trim(req.URL.Path, "/")
	parts := strings.Split(path, "/")
	if (parts[0] == "api" && len(parts) <= 2) || (parts[0] == "apis" && len(parts) <= 3) {
		d.n.Add(1)
	}
	return d.next.RoundTrip(req)
}

// TestDiscoveryCachedAcrossClientsOnStandin: against a real API server,
// a client (a run) asks discovery to find a kind's resource; the next
// client with the same cache folder (the next run) asks none; one with
// another folder asks again. The API server's answers are real.
func TestDiscoveryCachedAcrossClientsOnStandin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := testbed.StandinBinary(t)
	testbed.HoldMachineLock(t, "kube-discovery-standin")
	s := testbed.StartStandinServer(t, ctx, bin, "discovery", "127.0.0.51")
	s.AdminClient(t, ctx) // the API answers
	cfg, err := clientcmd.BuildConfigFromFlags("", s.K3sYAML)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	run := func(cacheDir string) int32 {
		t.Helper()
		var n atomic.Int32
		counted := rest.CopyConfig(cfg)
		counted.Wrap(func(rt http.RoundTripper) http.RoundTripper { return discoveryCounter{next: rt, n: &n} })
		c, err := NewWithDiscoveryCache("discovery", counted, cacheDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []Ref{
			{Version: "v1", Kind: "Namespace", Name: "default"},
			{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "kube-system", Name: "coredns"},
		} {
			if _, err := c.Get(ctx, ref); err != nil {
				t.Fatalf("get %s: %v", ref, err)
			}
		}
		return n.Load()
	}
	first := run(cache)
	second := run(cache)
	other := run(t.TempDir())
	t.Logf("discovery requests: first run %d, next run with its cache %d, a run with another cache %d", first, second, other)
	if first == 0 {
		t.Fatal("the first client sent no discovery request: the counter counts nothing")
	}
	if second != 0 {
		t.Errorf("the next client with the same cache sent %d discovery requests, want 0", second)
	}
	if other == 0 {
		t.Errorf("a client with another cache folder sent no discovery request")
	}
}
