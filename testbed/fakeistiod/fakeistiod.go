// Package fakeistiod is test harness: an HTTPS server answering Istio's
// sidecar-injection and validation webhooks with "allowed, unchanged".
// Only steps' loopback API tests use it: they run two k3s stand-ins in one
// network namespace, where two natively run istiods would collide on their
// ports. The test world (testbed hosts, one network namespace each) runs
// the real istiod instead.
package fakeistiod

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// Webhooks stands for istiod's webhooks in tests while no istiod runs. The
// rendered MutatingWebhookConfiguration (failurePolicy Fail) sends every
// gateway pod to istiod's injector, and the validator sends every Istio
// object to istiod; with no istiod running, the API server would call
// istiod.istio-system.svc, whose made-up pod IP leads nowhere (or, outside
// a test host's namespace, off the machine). The test plan points both
// webhooks at this server with Istio's own
// values (istiodRemote.injectionURL, base.validationURL and their CA
// bundles), so the webhook path is exercised and traffic stays on
// loopback. It allows every request unchanged.
type Webhooks struct {
	srv    *http.Server
	url    string
	caPEM  []byte
	mu     sync.Mutex
	counts map[string]int // path -> requests
}

// Start serves the fake webhooks on addr's IP (a free port) until the
// test ends. addr must be loopback or an address of a namespace the test
// made (the testbed's bridge).
func Start(t testing.TB, addr netip.Addr) *Webhooks {
	t.Helper()
	f, err := Serve(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// Serve serves the fake webhooks on addr's IP (a free port) until Close.
func Serve(addr netip.Addr) (*Webhooks, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fake istiod"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{addr.AsSlice()},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	f := &Webhooks{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), counts: map[string]int{}}
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return nil, err
	}
	f.url = "https://" + l.Addr().String()
	srv := &http.Server{
		Handler:   http.HandlerFunc(f.serve),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	f.srv = srv
	return f, nil
}

// Close stops the server.
func (f *Webhooks) Close() error { return f.srv.Close() }

func (f *Webhooks) serve(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "bad AdmissionReview", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.counts[r.URL.Path]++
	f.mu.Unlock()
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

// Count is how many reviews a path (/inject, /validate) answered.
func (f *Webhooks) Count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[path]
}

// Values are the plan's Istio values that point the webhooks here.
func (f *Webhooks) Values() map[string]any {
	ca := base64.StdEncoding.EncodeToString(f.caPEM)
	return map[string]any{
		"istiodRemote": map[string]any{"injectionURL": f.url + "/inject", "injectionCABundle": ca},
		"base":         map[string]any{"validationURL": f.url + "/validate", "validationCABundle": ca},
	}
}
