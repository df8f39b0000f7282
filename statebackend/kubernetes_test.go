package statebackend

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestKubernetesBackend(t *testing.T) {
	c := standinAPI(t)
	t.Run("secrets", func(t *testing.T) { testSecrets(t, c) })
	t.Run("lease lock", func(t *testing.T) { testLeaseLock(t, c) })
	t.Run("mirror", func(t *testing.T) { testMirror(t, c) })
}

// testSecrets: a state round-trips, also one over the 1 MiB object
// limit (split across Secrets); a write over a state another run wrote
// since it read fails loudly and leaves that state; a rewrite leaves no
// chunk of the generation it replaced.
func testSecrets(t *testing.T, c kubernetes.Interface) {
	ctx := context.Background()
	makeNamespace(t, c, "secrets")
	s := &Secrets{Client: c, Namespace: "secrets", Name: "mcplan-state"}
	data, v, err := s.Read(ctx)
	if err != nil || data != nil || v != "" {
		t.Fatalf("empty backend: %q %q %v", data, v, err)
	}
	small := []byte("a small state")
	v1, err := s.Write(ctx, small, "")
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 5*ChunkSize/2) // random: gzip cannot shrink it
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	v2, err := s.Write(ctx, big, v1)
	if err != nil {
		t.Fatal(err)
	}
	other := &Secrets{Client: c, Namespace: "secrets", Name: "mcplan-state"}
	got, gotV, err := other.Read(ctx)
	if err != nil || !bytes.Equal(got, big) || gotV != v2 {
		t.Fatalf("read back %d bytes at %q (%v), want %d at %q", len(got), gotV, err, len(big), v2)
	}
	list, err := c.CoreV1().Secrets("secrets").List(ctx, metav1.ListOptions{LabelSelector: StateLabel + "=mcplan-state," + GenerationLabel})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 3 {
		t.Errorf("%d chunk Secrets after the big write, want 3 (2.5 chunks; the small write's chunk deleted)", len(list.Items))
	}
	// A write from what was read before v2 is refused, naming why.
	if _, err := s.Write(ctx, []byte("stale"), v1); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "Secret secrets/mcplan-state") {
		t.Errorf("stale write: %v, want ErrConflict naming the Secret", err)
	}
	// Two runs read the same state; the second to write loses.
	a := &Secrets{Client: c, Namespace: "secrets", Name: "mcplan-state"}
	b := &Secrets{Client: c, Namespace: "secrets", Name: "mcplan-state"}
	_, va, _ := a.Read(ctx)
	_, vb, _ := b.Read(ctx)
	if _, err := a.Write(ctx, []byte("a's"), va); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write(ctx, []byte("b's"), vb); !errors.Is(err, ErrConflict) {
		t.Errorf("concurrent write with a stale resourceVersion: %v, want ErrConflict", err)
	}
	if got, _, _ := other.Read(ctx); string(got) != "a's" {
		t.Errorf("after the refused write the state is %q, want a's", got)
	}
	// Not a state: a Secret of that name mcplan did not label.
	idx, _ := c.CoreV1().Secrets("secrets").Get(ctx, "mcplan-state", metav1.GetOptions{})
	delete(idx.Labels, StateLabel)
	if _, err := c.CoreV1().Secrets("secrets").Update(ctx, idx, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Read(ctx); err == nil || !strings.Contains(err.Error(), "not a state mcplan wrote") {
		t.Errorf("unlabelled Secret read as a state: %v", err)
	}
}

func testLeaseLock(t *testing.T, c kubernetes.Interface) {
	ctx := context.Background()
	makeNamespace(t, c, "locks")
	lock := func(command string) *LeaseLock {
		return &LeaseLock{Client: c, Namespace: "locks", Name: "mcplan-state-lock", Timeout: 3 * time.Second, Logf: t.Logf,
			Holder: Holder{User: "ci", Host: "runner-" + command, PID: 42, Command: "mcplan " + command, Since: time.Now()}}
	}
	a, err := lock("apply a").Acquire(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Held and renewed: refused at once, naming the holder, also after
	// the timeout has passed (it is renewed).
	time.Sleep(4 * time.Second)
	_, err = lock("apply b").Acquire(ctx, 0, nil)
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Holder.Command != "mcplan apply a" || !strings.Contains(err.Error(), "runner-apply a") {
		t.Fatalf("second apply: %v, want a LockedError naming apply a", err)
	}
	// Waiting: released a moment later, then taken.
	go func() { time.Sleep(time.Second); _ = a.Release() }()
	b, err := lock("apply b").Acquire(ctx, 10*time.Second, nil)
	if err != nil {
		t.Fatalf("waiting for a released lock: %v", err)
	}
	// A holder that stops renewing (killed) loses the lock after the
	// timeout, without an unlock.
	b.stop()
	<-b.done
	killed := time.Now()
	cLock, err := lock("apply c").Acquire(ctx, 10*time.Second, nil)
	if err != nil {
		t.Fatalf("taking over a lock not renewed: %v", err)
	}
	t.Logf("lock of a stopped holder taken over %s after it stopped renewing (timeout 3s)", time.Since(killed).Round(100*time.Millisecond))
	// Forced unlock names the holder; the holder notices it lost the lock.
	lost := make(chan error, 1)
	cLock.onLost = func(err error) { lost <- err }
	holder, ok, err := lock("unlock").ForceUnlock(ctx)
	if err != nil || !ok || holder.Command != "mcplan apply c" {
		t.Fatalf("force unlock: %v %v %v", holder, ok, err)
	}
	select {
	case err := <-lost:
		if !errors.Is(err, ErrLockLost) {
			t.Errorf("lost: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the holder did not notice the forced unlock")
	}
	if _, ok, _ := lock("unlock").ForceUnlock(ctx); ok {
		t.Error("a free lock was unlocked")
	}
}

// testMirror: a state directory pushed from one machine is the same
// bytes on another; a local state the backend lacks is not lost.
func testMirror(t *testing.T, c kubernetes.Interface) {
	ctx := context.Background()
	makeNamespace(t, c, "mirror")
	remote := func() Remote { return &Secrets{Client: c, Namespace: "mirror", Name: "mcplan-state"} }
	first := t.TempDir()
	files := map[string]string{"state.json": `{"serial": 3}`, "ca/mesh1/root-key.pem": "-----BEGIN RSA PRIVATE KEY-----", "kubeconfig/cluster1.yaml": "apiVersion: v1"}
	for name, content := range files {
		p := filepath.Join(first, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m1 := &Mirror{Remote: remote(), Dir: first}
	if err := m1.Pull(ctx); !errors.Is(err, ErrLocalOnly) {
		t.Fatalf("pull over a local-only state: %v, want ErrLocalOnly", err)
	}
	if err := m1.Push(ctx); err != nil {
		t.Fatal(err)
	}
	second := t.TempDir()
	if err := os.WriteFile(filepath.Join(second, "stale-cache-file"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	m2 := &Mirror{Remote: remote(), Dir: second}
	if err := m2.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	a, _ := ReadSnapshot(first)
	b, _ := ReadSnapshot(second)
	if len(a) != len(files) || len(b) != len(a) {
		t.Fatalf("snapshots of %d and %d files, want %d", len(a), len(b), len(files))
	}
	for p := range a {
		if !bytes.Equal(a[p], b[p]) {
			t.Errorf("%s differs after the round trip", p)
		}
		if fi, err := os.Stat(filepath.Join(second, p)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", p, err, fi.Mode())
		}
	}
	// m1 pushes again after m2 wrote: refused, not lost.
	if err := os.WriteFile(filepath.Join(second, "state.json"), []byte(`{"serial": 4}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m2.Push(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(first, "state.json"), []byte(`{"serial": 4, "other": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m1.Push(ctx); !errors.Is(err, ErrConflict) {
		t.Errorf("push from a cache behind the backend: %v, want ErrConflict", err)
	}
}
