package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// checkKubeletAPI checks a node's kubelet API: its serving certificate is
// valid for the node IP under the cluster's server CA, and it admits only
// client certificates of system:masters (401 without one, 403 for a node's).
// Then the apiserver reaches it: logs of a (simulated) pod bound to the node
// come back as the kubelet API's refusal.
func checkKubeletAPI(t *testing.T, ctx context.Context, cs kubernetes.Interface, adminKubeconfig, nodeKubeconfig, nodeName, nodeIP string) {
	t.Helper()
	admin, err := clientcmd.LoadFromFile(adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	node, err := clientcmd.LoadFromFile(nodeKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(admin.Clusters["default"].CertificateAuthorityData) {
		t.Fatal("no server CA in the admin kubeconfig")
	}
	cert := func(kc string, data func() ([]byte, []byte)) []tls.Certificate {
		c, k := data()
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatalf("%s client certificate: %v", kc, err)
		}
		return []tls.Certificate{pair}
	}
	adminCert := cert("admin", func() ([]byte, []byte) {
		return admin.AuthInfos["default"].ClientCertificateData, admin.AuthInfos["default"].ClientKeyData
	})
	nodeCert := cert("node", func() ([]byte, []byte) {
		return node.AuthInfos["default"].ClientCertificateData, node.AuthInfos["default"].ClientKeyData
	})
	url := "https://" + net.JoinHostPort(nodeIP, "10250") + "/healthz"
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		code  int
	}{
		{"no client certificate", nil, http.StatusUnauthorized},
		{"node client certificate", nodeCert, http.StatusForbidden},
		{"admin client certificate", adminCert, http.StatusOK},
	} {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: tc.certs, MinVersion: tls.VersionTLS12},
		}}
		var code int
		var body string
		poll(t, ctx, fmt.Sprintf("kubelet API of %s, %s", nodeName, tc.name), 30*time.Second, func(ctx context.Context) (bool, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return false, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			code, body = resp.StatusCode, string(b)
			return true, nil
		})
		if code != tc.code {
			t.Fatalf("%s: %d %q, want %d", tc.name, code, body, tc.code)
		}
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "on-" + nodeName, Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27"}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "apiserver reaches the kubelet API of "+nodeName, 30*time.Second, func(ctx context.Context) (bool, error) {
		rc, err := cs.CoreV1().Pods("default").GetLogs(pod.Name, &corev1.PodLogOptions{}).Stream(ctx)
		if err == nil {
			rc.Close()
			return false, fmt.Errorf("logs of a simulated pod returned")
		}
		if !strings.Contains(errorText(err), "is simulated by the k3s stand-in") {
			return false, err
		}
		return true, nil
	})
	zero := int64(0)
	_ = cs.CoreV1().Pods("default").Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
}
