// Package backend is the end-to-end test of the state kept in Kubernetes:
// the mcplan binary against a k3s stand-in's real API server, no test
// hosts. Its own package, so that it runs beside testbed/e2e.
package backend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"mcplan.io/mcplan/statebackend"
	"mcplan.io/mcplan/testbed"
)

// backendNamespace holds the states of TestStateInKubernetes.
const backendNamespace = "mcplan-state"

// caOnly are the targets of an apply that runs only the CA steps: it
// contacts no host, so a plan of hundreds of clusters applies in seconds
// and its state (their intermediates' keys) grows past 1 MiB.
var caOnly = []string{"--target", "mesh/*/ca/*", "--target", "cluster/*/ca/*"}

// TestStateInKubernetes keeps a plan's state in the k3s stand-in's real
// API server, as a CI identity bound only to the Role `mcplan state rbac`
// prints: a state over 1 MiB round-trips to another machine's cache; a
// held lock refuses a second apply naming its holder, or is waited for
// with --lock-timeout; a SIGKILLed holder's lock is taken over after
// state.lockTimeout without an unlock; state migrate local -> kubernetes
// -> local is byte-identical; the identity can do nothing else.
func TestStateInKubernetes(t *testing.T) {
	bin := testbed.StandinBinary(t)
	mcplan := testbed.BuildMcplan(t)
	testbed.HoldMachineLock(t, "e2e-backend-standin")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	api := testbed.StartStandinServer(t, ctx, bin, "statehost", "127.0.0.41")
	admin := api.AdminClient(t, ctx)
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: backendNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	const clusters = 520
	planPath := writeBackendPlan(t, dir, "ci", clusters, "ci.kubeconfig")
	runEnv := func(env []string, dir string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, mcplan, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(dir string, args ...string) (string, error) { return runEnv(nil, dir, args...) }

	// The CI identity: a ServiceAccount bound by state rbac's Role, and a
	// kubeconfig with its token.
	rbac, err := run(dir, "state", "rbac", "--service-account", backendNamespace+"/ci", planPath)
	if err != nil {
		t.Fatalf("state rbac: %v\n%s", err, rbac)
	}
	t.Logf("mcplan state rbac:\n%s", rbac)
	applyRBAC(t, ctx, admin, rbac)
	ci := ciKubeconfig(t, ctx, admin, api.K3sYAML, filepath.Join(dir, "ci.kubeconfig"))

	t.Run("a state over 1 MiB, migrated by the CI identity, round-trips", func(t *testing.T) {
		// Applied with local state first (the bootstrap path; every
		// write to the backend carries the whole state, so hundreds of
		// steps would each send a MiB), then migrated.
		setBackend(t, planPath, "local")
		start := time.Now()
		if out, err := run(dir, append([]string{"apply"}, append(caOnly, planPath)...)...); err != nil {
			t.Fatalf("apply: %v\n%s", err, testbed.LastLines(out, 30))
		}
		t.Logf("apply of %d clusters' CA steps (local state): %s", clusters, time.Since(start).Round(time.Millisecond))
		if out, err := run(dir, "state", "migrate", "--to", "kubernetes", planPath); err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		setBackend(t, planPath, "kubernetes")
		idx, err := admin.CoreV1().Secrets(backendNamespace).Get(ctx, "mcplan-state-ci", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		chunks, err := admin.CoreV1().Secrets(backendNamespace).List(ctx, metav1.ListOptions{LabelSelector: statebackend.StateLabel + "=mcplan-state-ci," + statebackend.GenerationLabel + "=" + string(idx.Data["generation"])})
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, c := range chunks.Items {
			size += len(c.Data["data"])
			for _, v := range c.Data {
				if bytes.Contains(v, []byte("PRIVATE KEY")) {
					t.Errorf("Secret %s holds a PEM key in clear inside the gzip", c.Name)
				}
			}
		}
		t.Logf("state: %d bytes compressed in %d chunk Secrets", size, len(chunks.Items))
		if size <= 1<<20 || len(chunks.Items) < 2 {
			t.Fatalf("state of %d bytes in %d Secrets: want over 1 MiB, split", size, len(chunks.Items))
		}
		// Another machine: the plan and the CI kubeconfig, no .mcplan.
		other := t.TempDir()
		otherPlan := writeBackendPlan(t, other, "ci", clusters, "ci.kubeconfig")
		testbed.CopyFile(t, filepath.Join(dir, "ci.kubeconfig"), filepath.Join(other, "ci.kubeconfig"))
		out, err := run(other, append([]string{"plan", "--offline", "--detailed-exitcode"}, append(caOnly, otherPlan)...)...)
		if err != nil {
			t.Fatalf("plan on another machine: %v (want exit 0: nothing to change)\n%s", err, testbed.LastLines(out, 30))
		}
		a, _ := statebackend.ReadSnapshot(filepath.Join(dir, ".mcplan"))
		b, _ := statebackend.ReadSnapshot(filepath.Join(other, ".mcplan"))
		if len(a) < clusters || len(a) != len(b) {
			t.Fatalf("%d files here, %d on the other machine", len(a), len(b))
		}
		for p := range a {
			if !bytes.Equal(a[p], b[p]) {
				t.Errorf("%s differs on the other machine", p)
			}
		}
	})

	t.Run("a held lock: refused naming the holder, or waited for", func(t *testing.T) {
		holder := &statebackend.LeaseLock{Client: ci, Namespace: backendNamespace, Name: "mcplan-state-ci-lock", Timeout: 10 * time.Second,
			Holder: statebackend.Holder{User: "alice", Host: "laptop", PID: 4242, Command: "mcplan apply plan.yaml", Since: time.Now()}}
		held, err := holder.Acquire(ctx, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := run(dir, append([]string{"apply"}, append(caOnly, planPath)...)...)
		if err == nil || !strings.Contains(out, "state is locked by \"mcplan apply plan.yaml\" (alice@laptop pid 4242") {
			t.Fatalf("second apply: %v, want refused naming alice's apply:\n%s", err, testbed.LastLines(out, 30))
		}
		go func() { time.Sleep(2 * time.Second); _ = held.Release() }()
		out, err = run(dir, append([]string{"apply", "--lock-timeout", "30s"}, append(caOnly, planPath)...)...)
		if err != nil || !strings.Contains(out, "waiting") {
			t.Fatalf("apply --lock-timeout 30s: %v\n%s", err, testbed.LastLines(out, 30))
		}
	})

	t.Run("a SIGKILLed holder's lock expires by itself", func(t *testing.T) {
		// Thirty intermediates issued again, one at a time: long enough
		// to be killed while it holds the lock.
		args := []string{"apply", "--parallelism", "1"}
		for i := range 30 {
			args = append(args, "--replace", fmt.Sprintf("cluster/cluster%d/ca/intermediate", i+1))
		}
		cmd := exec.CommandContext(ctx, mcplan, append(args, append(caOnly, planPath)...)...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		leases := ci.CoordinationV1().Leases(backendNamespace)
		for {
			l, err := leases.Get(ctx, "mcplan-state-ci-lock", metav1.GetOptions{})
			if err == nil && strings.Contains(ptr.Deref(l.Spec.HolderIdentity, ""), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
				break
			}
			select {
			case <-exited:
				t.Fatalf("apply ended before it held the lock:\n%s", testbed.LastLines(out.String(), 30))
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
		time.Sleep(500 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
		killed := time.Now()
		next, err := run(dir, append([]string{"apply", "--lock-timeout", "60s"}, append(caOnly, planPath)...)...)
		if err != nil {
			t.Fatalf("apply after the holder was killed: %v\n%s", err, testbed.LastLines(next, 30))
		}
		t.Logf("apply after SIGKILL of the holder went on %s after the kill (lockTimeout 10s), without an unlock", time.Since(killed).Round(100*time.Millisecond))
		if again, err := run(dir, append([]string{"plan", "--offline", "--detailed-exitcode"}, append(caOnly, planPath)...)...); err != nil {
			t.Errorf("plan after the resumed apply: %v (want no changes)\n%s", err, testbed.LastLines(again, 30))
		}
	})

	t.Run("migrate local -> kubernetes -> local is byte-identical", func(t *testing.T) {
		// The CI identity's Role is for the state ci only: this one is
		// the admin's.
		mdir := t.TempDir()
		testbed.CopyFile(t, api.K3sYAML, filepath.Join(mdir, "admin.kubeconfig"))
		local := writeBackendPlan(t, mdir, "migrated", 2, "admin.kubeconfig")
		setBackend(t, local, "local")
		if out, err := run(mdir, append([]string{"apply"}, append(caOnly, local)...)...); err != nil {
			t.Fatalf("local apply: %v\n%s", err, testbed.LastLines(out, 30))
		}
		before, _ := statebackend.ReadSnapshot(filepath.Join(mdir, ".mcplan"))
		if out, err := run(mdir, "state", "migrate", "--to", "kubernetes", local); err != nil || !strings.Contains(out, "Migrated") {
			t.Fatalf("migrate --to kubernetes: %v\n%s", err, out)
		}
		if err := os.RemoveAll(filepath.Join(mdir, ".mcplan")); err != nil {
			t.Fatal(err)
		}
		if out, err := run(mdir, "state", "migrate", "--to", "local", local); err != nil || !strings.Contains(out, "Migrated") {
			t.Fatalf("migrate --to local: %v\n%s", err, out)
		}
		after, _ := statebackend.ReadSnapshot(filepath.Join(mdir, ".mcplan"))
		if len(before) == 0 || len(after) != len(before) {
			t.Fatalf("%d files before, %d after", len(before), len(after))
		}
		for p := range before {
			if !bytes.Equal(before[p], after[p]) {
				t.Errorf("%s differs after the round trip", p)
			}
		}
		if out, err := run(mdir, append([]string{"plan", "--offline", "--detailed-exitcode"}, append(caOnly, local)...)...); err != nil {
			t.Errorf("plan after the round trip: %v\n%s", err, testbed.LastLines(out, 30))
		}
	})

	t.Run("a sealed state: no key in clear in the files or the Secrets, a wrong passphrase refused", func(t *testing.T) {
		pass := []string{"MCPLAN_E2E_PASSPHRASE=correct horse battery staple"}
		wrong := []string{"MCPLAN_E2E_PASSPHRASE=wrong"}
		caApply := append([]string{"apply"}, caOnly...)
		for _, backend := range []string{"kubernetes", "local"} {
			sdir := t.TempDir()
			testbed.CopyFile(t, api.K3sYAML, filepath.Join(sdir, "admin.kubeconfig"))
			plan := writeBackendPlan(t, sdir, "sealed-"+backend, 2, "admin.kubeconfig")
			setBackend(t, plan, backend)
			if backend == "local" {
				// A plain state first: the first sealed apply seals it.
				if out, err := run(sdir, append(caApply, plan)...); err != nil {
					t.Fatalf("plain apply: %v\n%s", err, testbed.LastLines(out, 30))
				}
			}
			addEncryption(t, plan, "MCPLAN_E2E_PASSPHRASE")
			if out, err := runEnv(pass, sdir, append(caApply, plan)...); err != nil {
				t.Fatalf("%s: sealed apply: %v\n%s", backend, err, testbed.LastLines(out, 30))
			}
			assertNoPEM(t, filepath.Join(sdir, ".mcplan"))
			if backend == "kubernetes" {
				list, err := admin.CoreV1().Secrets(backendNamespace).List(ctx, metav1.ListOptions{LabelSelector: statebackend.StateLabel + "=mcplan-state-sealed-kubernetes"})
				if err != nil || len(list.Items) < 2 {
					t.Fatalf("the sealed state's Secrets: %v (%d)", err, len(list.Items))
				}
				for _, sec := range list.Items {
					for k, v := range sec.Data {
						if bytes.Contains(v, []byte("BEGIN")) || bytes.HasPrefix(v, []byte{0x1f, 0x8b}) {
							t.Errorf("Secret %s key %s holds a PEM or a plain gzip", sec.Name, k)
						}
					}
				}
			}
			out, err := runEnv(wrong, sdir, append([]string{"plan", "--offline"}, append(caOnly, plan)...)...)
			if err == nil || !strings.Contains(out, "the passphrase does not open the state") {
				t.Errorf("%s: plan with a wrong passphrase: %v\n%s", backend, err, testbed.LastLines(out, 10))
			}
			if out, err := runEnv(pass, sdir, append([]string{"plan", "--offline", "--detailed-exitcode"}, append(caOnly, plan)...)...); err != nil {
				t.Errorf("%s: plan with the passphrase: %v (want no changes)\n%s", backend, err, testbed.LastLines(out, 30))
			}
			assertNoPEM(t, filepath.Join(sdir, ".mcplan"))
		}
	})

	t.Run("the Role allows nothing more", func(t *testing.T) {
		denied := map[string]error{}
		_, denied["list secrets"] = ci.CoreV1().Secrets(backendNamespace).List(ctx, metav1.ListOptions{})
		_, denied["get configmaps"] = ci.CoreV1().ConfigMaps(backendNamespace).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		_, denied["get secrets in default"] = ci.CoreV1().Secrets("default").Get(ctx, "x", metav1.GetOptions{})
		_, denied["get another Lease"] = ci.CoordinationV1().Leases(backendNamespace).Get(ctx, "other-lock", metav1.GetOptions{})
		_, denied["create pods"] = ci.CoreV1().Pods(backendNamespace).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}, metav1.CreateOptions{})
		for what, err := range denied {
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s as the CI identity: %v, want Forbidden", what, err)
			}
		}
	})
}

// writeBackendPlan writes a plan of n clusters (n <= 750; one host each:
// only its CA steps are applied, which contact no host) whose state is
// kept in backendNamespace under mcplan-state-<name>.
func writeBackendPlan(t *testing.T, dir, name string, n int, kubeconfig string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: mcplan.io/v1alpha1\nkind: Plan\nmetadata: {name: %s}\n", name)
	fmt.Fprintf(&b, "state:\n  backend: kubernetes\n  lockTimeout: 10s\n  kubernetes: {kubeconfig: %s, namespace: %s}\nhosts:\n", kubeconfig, backendNamespace)
	// Documentation addresses (RFC 5737): a CA step dials no host, and
	// a loopback address is refused as a cluster's mesh address.
	nets := []string{"192.0.2", "198.51.100", "203.0.113"}
	for i := range n {
		fmt.Fprintf(&b, "  - {name: h%d, address: %s.%d}\n", i+1, nets[i/250], 1+i%250)
	}
	b.WriteString("clusters:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: cluster%d, servers: [h%d]}\n", i+1, i+1)
	}
	b.WriteString("meshes:\n  - name: mesh1\n    ca: {keySize: 2048}\n    clusters: [")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "cluster%d", i+1)
	}
	b.WriteString("]\n")
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// setBackend sets the plan's state.backend.
func setBackend(t *testing.T, path, backend string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"kubernetes", "local"} {
		data = bytes.Replace(data, []byte("backend: "+b+"\n"), []byte("backend: "+backend+"\n"), 1)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func kubeClient(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// applyRBAC creates the Role and RoleBinding state rbac printed.
func applyRBAC(t *testing.T, ctx context.Context, admin kubernetes.Interface, docs string) {
	t.Helper()
	parts := strings.Split(docs, "\n---\n")
	if len(parts) != 2 {
		t.Fatalf("state rbac printed %d documents, want a Role and a RoleBinding", len(parts))
	}
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	if err := yaml.UnmarshalStrict([]byte(parts[0]), &role); err != nil || role.Kind != "Role" {
		t.Fatalf("Role: %v (kind %q)", err, role.Kind)
	}
	if err := yaml.UnmarshalStrict([]byte(parts[1]), &binding); err != nil || binding.Kind != "RoleBinding" {
		t.Fatalf("RoleBinding: %v (kind %q)", err, binding.Kind)
	}
	if _, err := admin.RbacV1().Roles(role.Namespace).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings(binding.Namespace).Create(ctx, &binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ciKubeconfig makes the ServiceAccount ci, writes a kubeconfig with a
// token of it (the API's CA from the admin kubeconfig) to path and
// returns its client.
func ciKubeconfig(t *testing.T, ctx context.Context, admin kubernetes.Interface, adminKubeconfig, path string) kubernetes.Interface {
	t.Helper()
	if _, err := admin.CoreV1().ServiceAccounts(backendNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ci"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CoreV1().ServiceAccounts(backendNamespace).CreateToken(ctx, "ci", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.LoadFromFile(adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var cluster *clientcmdapi.Cluster
	for _, c := range raw.Clusters {
		cluster = c
	}
	if cluster == nil {
		t.Fatal("the admin kubeconfig has no cluster")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["standin"] = cluster
	cfg.AuthInfos["ci"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["ci"] = &clientcmdapi.Context{Cluster: "standin", AuthInfo: "ci"}
	cfg.CurrentContext = "ci"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeClient(t, path)
}

// addEncryption seals the plan's state with the passphrase in env.
func addEncryption(t *testing.T, path, env string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("state:\n"), []byte("state:\n  encryption: {passphraseEnv: "+env+"}\n"), 1)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// assertNoPEM fails when a file under dir holds a PEM block in clear.
func assertNoPEM(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte("-----BEGIN")) {
			t.Errorf("%s holds a PEM block in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("%s holds no file at all", dir)
	}
}
