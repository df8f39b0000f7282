package steps

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
	"mcplan.io/mcplan/steps/verify"
)

// TestVerifyControlPlaneOnStandins runs verify (a) on a healthy
// two-network mesh of two stand-ins, then breaks the mesh one way at a
// time (and repairs it) and checks that verify names the problem.
func TestVerifyControlPlaneOnStandins(t *testing.T) {
	r := newIstioRun(t, plans.ModelMultiPrimary, []string{"network1", "network2"}, nil)
	start := time.Now()
	r.run()
	t.Logf("Istio steps applied in %s", time.Since(start).Round(time.Millisecond))
	ctx := r.ctx
	v := NewVerifySample(r.plan, plans.StepSpec{Mesh: "mesh1"}, nil)
	env := engine.NewEnv(plans.VerifySampleID("mesh1"), r.dir, nil, nil, nil)

	healthy := func(t *testing.T) {
		t.Helper()
		start := time.Now()
		d, err := v.Check(ctx, env)
		if err != nil || !d.InSync {
			t.Fatalf("Check on the healthy mesh: %+v %v", d, err)
		}
		if err := v.Apply(ctx, env); err != nil {
			t.Fatalf("Apply on the healthy mesh: %v", err)
		}
		fs := v.ControlPlane(ctx, r.dir)
		// 2 x (network, cacerts, eastwest) + 2 remote secrets.
		if len(fs) != 8 {
			t.Errorf("%d findings, want 8: %v", len(fs), fs)
		}
		t.Logf("healthy mesh: %d checks pass in %s", len(fs), time.Since(start).Round(time.Millisecond))
	}
	healthy(t)

	// failsWith checks that Check is drifted and Apply fails, both naming
	// each of want.
	failsWith := func(t *testing.T, want ...string) {
		t.Helper()
		d, err := v.Check(ctx, env)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if d.InSync {
			t.Fatal("Check: InSync on a broken mesh")
		}
		aerr := v.Apply(ctx, env)
		if aerr == nil {
			t.Fatal("Apply passed on a broken mesh")
		}
		for _, w := range want {
			if !strings.Contains(d.Reason, w) {
				t.Errorf("Check reason lacks %q:\n%s", w, d.Reason)
			}
			if !strings.Contains(aerr.Error(), w) {
				t.Errorf("Apply error lacks %q:\n%v", w, aerr)
			}
		}
		if n := len(verify.Failed(v.ControlPlane(ctx, r.dir))); n != 1 {
			t.Errorf("%d failed checks, want 1", n)
		}
		t.Logf("verify says:\n%v", aerr)
	}

	c1, c2 := r.clients["cluster1"], r.clients["cluster2"]

	// plant rewrites the kubeconfig of cluster2's remote secret for
	// cluster1, as whoever can write Secrets in its istio-system could:
	// what the kubeconfig asks for must not happen on the operator's
	// machine. restore puts the original back.
	plant := func(t *testing.T, edit func(cfg *clientcmdapi.Config, user *clientcmdapi.AuthInfo)) (restore func()) {
		t.Helper()
		sec, err := c2.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.RemoteSecretName("cluster1"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		orig := sec.Data["cluster1"]
		cfg, err := clientcmd.Load(orig)
		if err != nil {
			t.Fatal(err)
		}
		edit(cfg, cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo])
		planted, err := clientcmd.Write(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		setSecretKey(t, ctx, c2, istiorender.RemoteSecretName("cluster1"), "cluster1", planted)
		return func() { setSecretKey(t, ctx, c2, istiorender.RemoteSecretName("cluster1"), "cluster1", orig) }
	}

	t.Run("RemoteSecretAtLoopback", func(t *testing.T) {
		restore := plant(t, func(cfg *clientcmdapi.Config, _ *clientcmdapi.AuthInfo) {
			cfg.Clusters["cluster1"].Server = "https://127.0.0.1:6443"
		})
		failsWith(t, "cluster cluster2", "Secret istio-system/istio-remote-secret-cluster1", "https://127.0.0.1:6443",
			"the local machine", "clusters[cluster1].api.meshAddress")
		restore()
		healthy(t)
	})

	t.Run("RemoteSecretWithExecPlugin", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "exec-ran")
		restore := plant(t, func(_ *clientcmdapi.Config, user *clientcmdapi.AuthInfo) {
			user.Token = ""
			user.Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: "/bin/sh",
				Args:            []string{"-c", "touch " + marker + "; echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"x\"}}'"},
				InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
		})
		failsWith(t, "cluster cluster2", "Secret istio-system/istio-remote-secret-cluster1", "user exec (a command to run): refused")
		if _, err := os.Stat(marker); err == nil {
			t.Error("the remote secret's exec plugin ran on the operator's machine")
		}
		restore()
		healthy(t)
	})

	t.Run("RemoteSecretWithTokenFile", func(t *testing.T) {
		// A local secret, and a server of the Secret's writer that would
		// collect it.
		local := filepath.Join(t.TempDir(), "vault-token")
		if err := os.WriteFile(local, []byte("s.operator-secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var seen []string
		collector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			mu.Lock()
			seen = append(seen, req.Header.Get("Authorization"))
			mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
		}))
		defer collector.Close()
		caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: collector.Certificate().Raw})
		restore := plant(t, func(cfg *clientcmdapi.Config, user *clientcmdapi.AuthInfo) {
			cl := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
			cl.Server, cl.CertificateAuthorityData = collector.URL, caPEM
			user.Token, user.TokenFile = "", local
		})
		failsWith(t, "cluster cluster2", "Secret istio-system/istio-remote-secret-cluster1", "user tokenFile (a file path): refused")
		mu.Lock()
		if len(seen) > 0 {
			t.Errorf("the planted server got %d requests (Authorization %q)", len(seen), seen)
		}
		mu.Unlock()
		restore()
		healthy(t)
	})

	t.Run("CACertsOfAnotherRoot", func(t *testing.T) {
		// Another CA, made by the same steps in another state directory.
		other := t.TempDir()
		ca := plans.CA{KeySize: 2048}
		oenv := engine.NewEnv("other", other, nil, nil, nil)
		if err := newCARoot("mesh1", ca, other).Apply(ctx, oenv); err != nil {
			t.Fatal(err)
		}
		if err := newCAIntermediate("mesh1", "cluster1", ca, plans.CARootID("mesh1")).Apply(ctx, oenv); err != nil {
			t.Fatal(err)
		}
		secrets := c1.Typed.CoreV1().Secrets(istiorender.Namespace)
		sec, err := secrets.Get(ctx, istiorender.CACertsSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		orig := sec.Data
		foreign := map[string][]byte{}
		for _, k := range cacertsKeys() {
			b, err := os.ReadFile(filepath.Join(statedir.CACluster(other, "mesh1", "cluster1"), k))
			if err != nil {
				t.Fatal(err)
			}
			foreign[k] = b
		}
		sec.Data = foreign
		if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		failsWith(t, "cluster cluster1", "Secret istio-system/cacerts", "does not chain to the mesh root", "different root", "mcplan apply")
		sec, err = secrets.Get(ctx, istiorender.CACertsSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sec.Data = orig
		if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		healthy(t)
	})

	t.Run("GatewayWithoutAddress", func(t *testing.T) {
		// The stand-in's servicelb gives every LoadBalancer Service the
		// node's address again at once, so an emptied status would not
		// stay empty: as NodePort the gateway keeps no externalIPs and
		// servicelb itself empties its ingress.
		setGatewayType(t, ctx, c2, corev1.ServiceTypeNodePort)
		failsWith(t, "cluster cluster2", "Service istio-system/istio-eastwestgateway", "no address",
			"clusters[cluster2].eastWest.address")
		setGatewayType(t, ctx, c2, corev1.ServiceTypeLoadBalancer)
		healthy(t)
	})
}

// setSecretKey rewrites one data key of a Secret in istio-system.
func setSecretKey(t *testing.T, ctx context.Context, c *kube.Client, name, key string, value []byte) {
	t.Helper()
	secrets := c.Typed.CoreV1().Secrets(istiorender.Namespace)
	sec, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data[key] = value
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
