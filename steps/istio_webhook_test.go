package steps

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

// fakeWebhooks stands for istiod's webhooks in the API tests. The
// rendered MutatingWebhookConfiguration (failurePolicy Fail) sends every
// gateway pod to istiod's injector, and the validator sends every Istio
// object to istiod; with no istiod running, the API server would call
// istiod.istio-system.svc, which here resolves off the machine. The test
// plan points both webhooks at this server on 127.0.0.1 with Istio's own
// values (istiodRemote.injectionURL, base.validationURL and their CA
// bundles), so the webhook path is exercised and traffic stays on
// loopback. It allows every request unchanged.
type fakeWebhooks struct {
	url    string
	caPEM  []byte
	mu     sync.Mutex
	counts map[string]int // path -> requests
}

func startFakeIstiodWebhooks(t *testing.T) *fakeWebhooks {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fake istiod"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeWebhooks{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), counts: map[string]int{}}
	l, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	f.url = "https://" + l.Addr().String()
	srv := &http.Server{
		Handler:   http.HandlerFunc(f.serve),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

func (f *fakeWebhooks) serve(w http.ResponseWriter, r *http.Request) {
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

func (f *fakeWebhooks) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[path]
}

// values are the plan's Istio values that point the webhooks here.
func (f *fakeWebhooks) values() map[string]any {
	ca := base64.StdEncoding.EncodeToString(f.caPEM)
	return map[string]any{
		"istiodRemote": map[string]any{"injectionURL": f.url + "/inject", "injectionCABundle": ca},
		"base":         map[string]any{"validationURL": f.url + "/validate", "validationCABundle": ca},
	}
}
