package testbed

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// StandinBinary builds (or finds) the k3s stand-in; a build failure fails
// the test (only -short and not being root skip it).
func StandinBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts k3s stand-ins (real kube-apiservers); run without -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("the k3s stand-in runs as root (it writes node state as k3s does); run as root")
	}
	_, file, _, _ := runtime.Caller(0)
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join(filepath.Dir(file), "k3s-standin", "build.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the k3s stand-in cannot be built (testbed/k3s-standin/build.sh: %v): %s", err, LastLines(stderr.String(), 10))
	}
	bin := strings.TrimSpace(string(out))
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("build.sh printed %q, which is not an executable", bin)
	}
	t.Logf("stand-in %s (build.sh took %s)", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// LastLines is the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StandinServer is one running stand-in server: a cluster's real
// kube-apiserver, etcd, controller-manager and scheduler, on a loopback
// address of its own.
type StandinServer struct {
	Name    string
	IP      string // node IP and API address
	Port    int    // API (supervisor) port
	K3sYAML string // its k3s.yaml (admin kubeconfig)
	Log     LockedBuffer
	// args and dir start it again (Restart) on the same ports and data.
	bin, dir string
	args     []string
	cmd      *exec.Cmd
	done     chan struct{}
}

// StartStandinServer starts a stand-in server for cluster name whose node
// and API address is ip, waits for its k3s.yaml, and stops it when the
// test ends.
func StartStandinServer(t testing.TB, ctx context.Context, bin, name, ip string) *StandinServer {
	t.Helper()
	dir := t.TempDir()
	s := &StandinServer{Name: name, IP: ip, Port: FreePortPair(t), K3sYAML: filepath.Join(dir, "k3s.yaml")}
	etcd := FreePortPair(t)
	s.bin, s.dir = bin, dir
	s.args = []string{"server",
		"--config", filepath.Join(dir, "no-config.yaml"),
		"--data-dir", filepath.Join(dir, "data"),
		"--node-name", name + "-server",
		"--node-ip", ip,
		// kube-apiserver refuses to advertise a loopback address; this
		// documentation address (TEST-NET-1) is only written into the
		// kubernetes Endpoints, which nothing here connects to.
		"--advertise-address", "192.0.2.10",
		"--tls-san", ip,
		"--https-listen-port", strconv.Itoa(s.Port),
		"--standin-etcd-port", strconv.Itoa(etcd),
		"--write-kubeconfig", s.K3sYAML,
	}
	s.start(t)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("---- stand-in %s log (tail) ----\n%s", name, s.Log.Tail(40))
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(s.K3sYAML); err == nil {
			break
		}
		select {
		case <-s.done:
			t.Fatalf("stand-in %s exited:\n%s", name, s.Log.Tail(20))
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("stand-in %s wrote no k3s.yaml in 3m", name)
		}
	}
	return s
}

// start runs the stand-in's process.
func (s *StandinServer) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + s.dir}
	cmd.Stdout, cmd.Stderr = &s.Log, &s.Log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stand-in %s: %v", s.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
}

// Stop ends the stand-in as a service manager does: an interrupt, then a
// kill after 20 s.
func (s *StandinServer) Stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Restart stops the stand-in and starts it again on the same ports and
// data, as systemctl restart k3s does.
func (s *StandinServer) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// AdminClient is a client of the stand-in's API with its admin
// kubeconfig, once the API answers.
func (s *StandinServer) AdminClient(t testing.TB, ctx context.Context) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.K3sYAML)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := c.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return c
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the API of stand-in %s did not answer", s.Name)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// BuildMcplan builds the mcplan binary for the test, into its temporary
// directory.
func BuildMcplan(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(t.TempDir(), "mcplan")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mcplan")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build mcplan: %v\n%s", err, out)
	}
	return bin
}
