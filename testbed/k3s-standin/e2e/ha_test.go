package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// haServer is one server of the HA test: its own node IP, ports and data.
type haServer struct {
	name, ip             string
	port, etcdPort       int
	dataDir, kubeconfig  string
	args                 []string
	proc                 *proc
	client, shortTimeout kubernetes.Interface
}

func (s *haServer) url() string { return "https://" + net.JoinHostPort(s.ip, strconv.Itoa(s.port)) }

// stop sends SIGTERM and waits for the process to exit.
func (s *haServer) stop(t *testing.T) {
	t.Helper()
	_ = s.proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.proc.done:
	case <-time.After(60 * time.Second):
		_ = s.proc.cmd.Process.Signal(syscall.SIGQUIT) // goroutine dump into its log
		<-s.proc.done
		if d := os.Getenv("STANDIN_E2E_DUMP_DIR"); d != "" {
			_ = os.WriteFile(filepath.Join(d, s.name+".log"), []byte(s.proc.output()), 0o600)
		}
		t.Fatalf("%s did not exit 60s after SIGTERM", s.name)
	}
}

// etcdMembers lists the members through a server's local etcd client
// port, with the etcd client certificate of its data dir (as the
// apiserver connects).
func etcdMembers(ctx context.Context, s *haServer) ([]*clientv3.MemberListResponse, error) {
	dir := filepath.Join(s.dataDir, "server", "tls", "etcd")
	tlsCfg, err := (transport.TLSInfo{CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key"), TrustedCAFile: filepath.Join(dir, "server-ca.crt")}).ClientConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://127.0.0.1:" + strconv.Itoa(s.etcdPort)}, TLS: tlsCfg, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := cli.MemberList(ctx)
	if err != nil {
		return nil, err
	}
	return []*clientv3.MemberListResponse{l}, nil
}

// votingMembers returns the names of the started voting members, sorted,
// and the number of members.
func votingMembers(ctx context.Context, s *haServer) ([]string, int, error) {
	ls, err := etcdMembers(ctx, s)
	if err != nil {
		return nil, 0, err
	}
	var names []string
	for _, m := range ls[0].Members {
		if !m.IsLearner && m.Name != "" {
			names = append(names, m.Name)
		}
	}
	slices.Sort(names)
	return names, len(ls[0].Members), nil
}

// TestHAServers runs three servers as mcplan sets them up (the first with
// cluster-init, the others with server: and the cluster token) on three
// addresses of the test's network namespace and checks the HA that k3s
// with embedded etcd has: one etcd cluster of three voting members, every
// server's own API, quorum behaviour when servers stop, member removal on
// Node deletion, and snapshot + cluster-reset restore.
func TestHAServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three real kube-apiservers and an etcd cluster; run without -short")
	}
	if !inNetNS() {
		t.Skip("needs three non-loopback node IPs: runs as root in the test's network namespace")
	}
	bin := buildStandin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	none := filepath.Join(tmp, "none.yaml")

	// sd_notify: the first server tells a notify socket READY=1.
	notifyPath := filepath.Join(tmp, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	servers := make([]*haServer, 3)
	for i, ip := range []string{netnsNodeIP, netnsAgentIP, netnsThirdIP} {
		// Ports below the ephemeral range, which the servers' own
		// outgoing connections take from: the namespace is the test's.
		s := &haServer{name: fmt.Sprintf("ha-%d", i+1), ip: ip, port: 16443 + 10*i, etcdPort: 12379 + 10*i}
		s.dataDir = filepath.Join(tmp, s.name)
		s.kubeconfig = filepath.Join(tmp, s.name+".yaml")
		// Every server shares loopback here, so each has its own
		// apiserver and etcd ports (on test hosts they would be the
		// same), and a connection between two servers comes from the
		// address it dials, not from the dialer's node IP: the peers do
		// not match client certificates against source addresses.
		s.args = []string{"server", "--config", none, "--node-ip", ip, "--node-name", s.name, "--data-dir", s.dataDir,
			"--write-kubeconfig", s.kubeconfig, "--https-listen-port", strconv.Itoa(s.port), "--standin-etcd-port", strconv.Itoa(s.etcdPort),
			"--standin-native-images", filepath.Join(tmp, "no-images"), "--standin-pod-log-dir", filepath.Join(tmp, "pods-"+s.name),
			"--standin-etcd-peer-skip-client-san-verify"}
		servers[i] = s
	}
	s1, s2, s3 := servers[0], servers[1], servers[2]
	s1.args = append(s1.args, "--cluster-init")
	startServer := func(s *haServer, env ...string) {
		t.Helper()
		s.proc = startEnv(t, bin, s.name, env, s.args...)
	}
	connect := func(s *haServer) {
		t.Helper()
		waitKubeconfig(t, ctx, s.proc, s.kubeconfig)
		cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		s.client = kubernetes.NewForConfigOrDie(cfg)
		short := rest.CopyConfig(cfg)
		short.Timeout = 5 * time.Second
		s.shortTimeout = kubernetes.NewForConfigOrDie(short)
	}

	started := time.Now()
	startServer(s1, "NOTIFY_SOCKET="+notifyPath)
	connect(s1)
	_ = notify.SetReadDeadline(time.Now().Add(2 * time.Minute))
	buf := make([]byte, 128)
	n, err := notify.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("notify socket: %q, %v", buf[:n], err)
	}
	if _, err := s1.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		t.Fatalf("READY=1 sent before the API serves: %v", err)
	}
	t.Logf("first server READY=1 after %s", time.Since(started).Round(time.Millisecond))
	tok, err := os.ReadFile(filepath.Join(s1.dataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*haServer{s2, s3} {
		s.args = append(s.args, "--server", s1.url(), "--token", strings.TrimSpace(string(tok)))
		startServer(s)
	}
	for _, s := range []*haServer{s2, s3} {
		connect(s)
	}
	names := []string{"ha-1", "ha-2", "ha-3"}
	allSeeNodes := func(what string, servers []*haServer, want []string) {
		t.Helper()
		for _, s := range servers {
			poll(t, ctx, what+" through "+s.name, 3*time.Minute, func(ctx context.Context) (bool, error) {
				l, err := s.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
				if err != nil {
					return false, err
				}
				var ready []string
				for _, n := range l.Items {
					if nodeReady(&n) && n.Labels["node-role.kubernetes.io/etcd"] == "true" && n.Labels["node-role.kubernetes.io/control-plane"] == "true" {
						ready = append(ready, n.Name)
					}
				}
				slices.Sort(ready)
				return orErr(slices.Equal(ready, want), fmt.Errorf("ready etcd nodes %v", ready))
			})
		}
	}
	allSeeNodes("three Ready etcd server nodes", servers, names)
	t.Logf("three servers up after %s", time.Since(started).Round(time.Millisecond))
	threeVoters := func(what string) {
		t.Helper()
		poll(t, ctx, what, 2*time.Minute, func(ctx context.Context) (bool, error) {
			voters, total, err := votingMembers(ctx, s1)
			if err != nil {
				return false, err
			}
			ok := total == 3 && len(voters) == 3
			for i, v := range voters {
				ok = ok && strings.HasPrefix(v, names[i]+"-")
			}
			return orErr(ok, fmt.Errorf("voting members %v of %d", voters, total))
		})
	}
	threeVoters("etcd has three voting members named <node>-<suffix>")
	// Each server runs its own apiserver: each one's advertise address is
	// an endpoint of the kubernetes Service (the lease endpoint
	// reconciler).
	poll(t, ctx, "three apiservers in the kubernetes Service's endpoints", time.Minute, func(ctx context.Context) (bool, error) {
		ep, err := s2.client.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		var ips []string
		for _, e := range ep.Endpoints {
			ips = append(ips, e.Addresses...)
		}
		slices.Sort(ips)
		return orErr(slices.Equal(ips, []string{netnsNodeIP, netnsAgentIP, netnsThirdIP}), fmt.Errorf("endpoints %v", ips))
	})

	cm := func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": name}}
	}
	create := func(s *haServer, name string) error {
		_, err := s.shortTimeout.CoreV1().ConfigMaps("default").Create(ctx, cm(name), metav1.CreateOptions{})
		return err
	}

	// One server down: the other two keep quorum and serve writes.
	s3.stop(t)
	for i, s := range []*haServer{s1, s2} {
		name := fmt.Sprintf("one-down-%d", i)
		poll(t, ctx, "write through "+s.name+" with ha-3 stopped", time.Minute, func(ctx context.Context) (bool, error) {
			err := create(s, name)
			return orErr(err == nil || apierrors.IsAlreadyExists(err), err)
		})
	}
	if _, err := s2.client.CoreV1().ConfigMaps("default").Get(ctx, "one-down-0", metav1.GetOptions{}); err != nil {
		t.Fatalf("ha-2 does not see the write made through ha-1: %v", err)
	}

	// Two down: no quorum, writes fail.
	s2.stop(t)
	begin := time.Now()
	err = create(s1, "no-quorum")
	if err == nil {
		t.Fatal("a write succeeded with two of three etcd members stopped")
	}
	t.Logf("write without quorum failed after %s: %v", time.Since(begin).Round(time.Millisecond), err)

	// Both back: all healthy. Without quorum ha-1's controller-manager
	// or scheduler may have lost its lease, which ends the process as in
	// k3s; systemd would start it again, so does the test.
	startServer(s2)
	startServer(s3)
	select {
	case <-s1.proc.done:
		t.Logf("ha-1 exited without quorum (%v); starting it again, as systemd would", s1.proc.err)
		startServer(s1)
	default:
	}
	for _, s := range servers {
		connect(s)
	}
	for i, s := range servers {
		name := fmt.Sprintf("all-back-%d", i)
		poll(t, ctx, "write through "+s.name+" after the restarts", 3*time.Minute, func(ctx context.Context) (bool, error) {
			err := create(s, name)
			return orErr(err == nil || apierrors.IsAlreadyExists(err), err)
		})
	}
	threeVoters("still three voting members after the restarts (none added again)")
	allSeeNodes("three Ready nodes after the restarts", servers, names)

	// Deleting ha-3's Node removes its etcd member.
	if err := s1.client.CoreV1().Nodes().Delete(ctx, "ha-3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "ha-3's etcd member removed and its Node gone", 2*time.Minute, func(ctx context.Context) (bool, error) {
		voters, total, err := votingMembers(ctx, s1)
		if err != nil {
			return false, err
		}
		_, nerr := s1.client.CoreV1().Nodes().Get(ctx, "ha-3", metav1.GetOptions{})
		return orErr(total == 2 && len(voters) == 2 && !strings.HasPrefix(voters[0], "ha-3-") && !strings.HasPrefix(voters[1], "ha-3-") && apierrors.IsNotFound(nerr),
			fmt.Errorf("members %v of %d, node: %v", voters, total, nerr))
	})
	select {
	case <-s3.proc.done:
		t.Logf("ha-3 exited after its member was removed: %v", s3.proc.err)
	case <-time.After(30 * time.Second):
		t.Log("ha-3 still runs 30s after its member was removed")
	}
	if err := create(s2, "two-members"); err != nil {
		t.Fatalf("write with two members: %v", err)
	}

	// Snapshot, then a cluster-reset restore brings back what the
	// snapshot had.
	if err := create(s1, "before-snapshot"); err != nil {
		t.Fatal(err)
	}
	snapArgs := []string{"--config", none, "--data-dir", s1.dataDir, "--node-name", s1.name, "--node-ip", s1.ip, "--standin-etcd-port", strconv.Itoa(s1.etcdPort)}
	out, err := exec.CommandContext(ctx, bin, append([]string{"etcd-snapshot", "save", "--name", "pre"}, snapArgs...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Snapshot pre-ha-1-") {
		t.Fatalf("etcd-snapshot save: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, bin, append([]string{"etcd-snapshot", "ls"}, snapArgs...)...).Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "Name Location Size Created" {
		t.Fatalf("etcd-snapshot ls: %v\n%s", err, out)
	}
	f := strings.Fields(lines[1])
	snapPath := strings.TrimPrefix(f[1], "file://")
	if !strings.HasPrefix(f[0], "pre-ha-1-") || snapPath != filepath.Join(s1.dataDir, "server", "db", "snapshots", f[0]) {
		t.Fatalf("etcd-snapshot ls row %q", lines[1])
	}
	if fi, err := os.Stat(snapPath); err != nil || strconv.FormatInt(fi.Size(), 10) != f[2] {
		t.Fatalf("snapshot file %s: %v (ls says size %s)", snapPath, err, f[2])
	}
	t.Logf("etcd-snapshot ls:\n%s", out)
	if err := create(s1, "after-snapshot"); err != nil {
		t.Fatal(err)
	}
	s1.stop(t)
	s2.stop(t)
	reset := exec.CommandContext(ctx, bin, append(slices.Clone(s1.args), "--cluster-reset", "--cluster-reset-restore-path", snapPath)...)
	reset.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + tmp}
	out, err = reset.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "restart without --cluster-reset flag now") {
		t.Fatalf("cluster-reset restore: %v\n%s", err, out)
	}
	startServer(s1)
	connect(s1)
	poll(t, ctx, "restored ha-1 serves the snapshot's objects", 3*time.Minute, func(ctx context.Context) (bool, error) {
		if _, err := s1.client.CoreV1().ConfigMaps("default").Get(ctx, "before-snapshot", metav1.GetOptions{}); err != nil {
			return false, err
		}
		_, err := s1.client.CoreV1().ConfigMaps("default").Get(ctx, "after-snapshot", metav1.GetOptions{})
		if err == nil {
			t.Fatal("after-snapshot exists after restoring a snapshot taken before it")
		}
		return orErr(apierrors.IsNotFound(err), err)
	})
	if voters, total, err := votingMembers(ctx, s1); err != nil || total != 1 || len(voters) != 1 || !strings.HasPrefix(voters[0], "ha-1-") {
		t.Fatalf("after the reset: members %v of %d, %v", voters, total, err)
	}
	// As k3s says after a reset: delete the other servers' db and rejoin.
	if err := os.RemoveAll(filepath.Join(s2.dataDir, "server", "db")); err != nil {
		t.Fatal(err)
	}
	startServer(s2)
	connect(s2)
	poll(t, ctx, "ha-2 rejoined the restored cluster", 3*time.Minute, func(ctx context.Context) (bool, error) {
		voters, total, err := votingMembers(ctx, s1)
		if err != nil {
			return false, err
		}
		if total != 2 || len(voters) != 2 {
			return false, fmt.Errorf("members %v of %d", voters, total)
		}
		_, err = s2.client.CoreV1().ConfigMaps("default").Get(ctx, "before-snapshot", metav1.GetOptions{})
		return err == nil, err
	})
}

// orErr is a poll result: done, or not yet with why.
func orErr(done bool, why error) (bool, error) {
	if done {
		return true, nil
	}
	return false, why
}
