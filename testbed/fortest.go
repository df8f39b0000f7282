package testbed

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// ForTest brings up n hosts of kind k for the test and removes them when
// the test ends (t.Cleanup). It skips the test, with the reason, when the
// process is not root or a needed tool is missing; it fails the test when
// the hosts do not come up. Systemd hosts build the cached Debian tree
// first when it is missing (about two minutes, once per machine).
func ForTest(t testing.TB, n int, k Kind) *Bed {
	t.Helper()
	return ForTestWith(t, Options{Hosts: n, Kind: k})
}

// ForTestWith is ForTest with more options; Log defaults to the test log.
func ForTestWith(t testing.TB, opts Options) *Bed {
	t.Helper()
	k := opts.Kind
	if k == "" {
		k = KindLight
	}
	if os.Geteuid() != 0 {
		t.Skip("testbed: test hosts need root (network namespaces, mounts, nspawn); run the tests as root")
	}
	if missing := MissingTools(k); len(missing) > 0 {
		t.Skipf("testbed: %s hosts need %s, not installed (run testbed/install-deps.sh)", k, strings.Join(missing, ", "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if opts.Log == nil {
		opts.Log = testWriter{t}
	}
	bed, err := Up(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		if err := bed.Down(ctx); err != nil {
			t.Error(err)
		}
		t.Logf("testbed: run %s down in %s", bed.Prefix, time.Since(start).Round(time.Millisecond))
	})
	return bed
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
