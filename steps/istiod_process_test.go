package steps

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/testbed"
)

// Real istiods for the tests: Istio's pilot-discovery, built from the
// Istio module mcplan renders with (testbed/native-images/build.sh), run
// as a child process outside any cluster against a stand-in's API with
// the cluster's admin kubeconfig, on loopback ports. It reads the other
// clusters through the remote secrets, as in a cluster.

// pilotBinary builds (or finds) pilot-discovery; a build failure fails
// the test. With -short it skips before building anything (the test also
// needs stand-ins).
func pilotBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs pilot-discovery against k3s stand-ins (real kube-apiservers); run without -short")
	}
	start := time.Now()
	cmd := exec.Command("bash", "../testbed/native-images/build.sh")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pilot-discovery cannot be built (testbed/native-images/build.sh: %v): %s", err, lastLines(stderr.String(), 10))
	}
	bin := filepath.Join(strings.TrimSpace(string(out)), "pilot")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("build.sh printed %q, which holds no executable pilot", strings.TrimSpace(string(out)))
	}
	t.Logf("pilot-discovery %s (build.sh took %s)", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// istiodProcess is one running pilot-discovery: the istiod of a cluster.
type istiodProcess struct {
	cluster  string
	grpcAddr string // plaintext xDS
	cmd      *exec.Cmd
	done     chan struct{}
	log      testbed.LockedBuffer
}

// tail is the end of the process's log.
func (p *istiodProcess) tail() string { return p.log.Tail(30) }

// stop ends the process (SIGTERM, then SIGKILL after 10 s).
func (p *istiodProcess) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startIstiod runs pilot-discovery as cluster's istiod, reading the API
// with kubeconfig, and waits until it is ready; t fails, owner's cleanup
// stops it (a subtest may start an istiod for the rest of its parent). Its environment is the
// chart's where it matters (CLUSTER_ID, POD_NAMESPACE, REVISION,
// PILOT_CERT_PROVIDER); it does not patch the webhook configurations,
// which point at the tests' stand-in webhooks.
func startIstiod(t, owner *testing.T, ctx context.Context, bin, cluster, kubeconfig string) *istiodProcess {
	t.Helper()
	dir := owner.TempDir()
	addr := func() string { return "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t)) }
	p := &istiodProcess{cluster: cluster, grpcAddr: addr(), done: make(chan struct{})}
	httpAddr := addr()
	p.cmd = exec.Command(bin, "discovery",
		"--kubeconfig", kubeconfig,
		"--grpcAddr", p.grpcAddr,
		"--httpAddr", httpAddr,
		"--httpsAddr", addr(),
		"--secureGRPCAddr", addr(),
		"--monitoringAddr", addr(),
		"--ctrlz_port", strconv.Itoa(testbed.FreePort(t)),
		"--shutdownDuration", "1s",
	)
	p.cmd.Dir = dir
	p.cmd.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + dir,
		"CLUSTER_ID=" + cluster,
		"POD_NAMESPACE=istio-system",
		"POD_NAME=istiod-" + cluster + "-test",
		"REVISION=default",
		"PILOT_CERT_PROVIDER=istiod",
		"INJECTION_WEBHOOK_CONFIG_NAME=",
		"VALIDATION_WEBHOOK_CONFIG_NAME=",
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start pilot-discovery for %s: %v", cluster, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	owner.Cleanup(func() {
		p.stop()
		if owner.Failed() {
			owner.Logf("---- istiod %s log (tail) ----\n%s", cluster, p.tail())
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-p.done:
			t.Fatalf("istiod %s exited:\n%s", cluster, p.tail())
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("istiod %s not ready after 1m:\n%s", cluster, p.tail())
		}
	}
	t.Logf("istiod of %s ready in %s, xDS at %s", cluster, time.Since(start).Round(time.Millisecond), p.grpcAddr)
	return p
}
