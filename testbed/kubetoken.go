package testbed

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TokenStatus is the HTTP status an API server answers a list of services
// with a bearer token alone: admin's server and CA, without its client
// certificate.
func TokenStatus(t testing.TB, ctx context.Context, admin *rest.Config, token string) int {
	t.Helper()
	cfg := rest.CopyConfig(admin)
	cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData = nil, nil
	cfg.BearerToken = token
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CoreV1().Services("").List(ctx, metav1.ListOptions{Limit: 1})
	var status apierrors.APIStatus
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &status):
		return int(status.Status().Code)
	}
	t.Fatalf("%s: list services with a token: %v", admin.Host, err)
	return 0
}

// WaitTokenStatus asks TokenStatus again, every half second for up to
// timeout, until it answers want (the API server drops a revoked token a
// moment after its Secret goes); it returns the last answer.
func WaitTokenStatus(t testing.TB, ctx context.Context, admin *rest.Config, token string, want int, timeout time.Duration) int {
	t.Helper()
	code := TokenStatus(t, ctx, admin, token)
	for deadline := time.Now().Add(timeout); code != want && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		code = TokenStatus(t, ctx, admin, token)
	}
	return code
}
