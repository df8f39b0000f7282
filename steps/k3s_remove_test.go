package steps

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestK3sNetworkLeftovers runs the check of what k3s's network leaves on a
// host in a network namespace of the test's own: nothing on a clean one;
// a flannel link, cni0 and a pod's namespace are each named.
func TestK3sNetworkLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces (CI runs as root)")
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	ns := "mtb" + hex.EncodeToString(b[:])[:5] + "-cni"
	pod := "cni-" + hex.EncodeToString(b[:])
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	check := func() string {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", k3sNetworkLeftovers).CombinedOutput()
		if err != nil {
			t.Fatalf("check: %v: %s", err, out)
		}
		return strings.Join(strings.Fields(string(out)), " ")
	}
	if got := check(); got != "" {
		t.Errorf("a clean namespace: %q, want nothing", got)
	}
	ip("-n", ns, "link", "add", "cni0", "type", "bridge")
	ip("-n", ns, "link", "add", "flannel.1", "type", "bridge")
	ip("-n", ns, "link", "add", "eth9", "type", "bridge")
	// A pod's namespace, as the CNI names them, seen from inside ns:
	// ip netns lists /run/netns, which ip netns exec does not change.
	ip("netns", "add", pod)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", pod).Run() })
	got := check()
	for _, want := range []string{"cni0", "flannel.1", pod} {
		if !strings.Contains(got, want) {
			t.Errorf("leftovers %q lack %s", got, want)
		}
	}
	if strings.Contains(got, "eth9") {
		t.Errorf("leftovers %q name a link k3s did not make", got)
	}
}
