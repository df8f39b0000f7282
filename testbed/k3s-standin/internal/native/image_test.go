package native

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestImageName(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"docker.io/istio/pilot:1.31.0", "pilot"},
		{"istio/pilot@sha256:0123abcd", "pilot"},
		{"registry.example:5000/istio/pilot:1.31.0-distroless@sha256:00", "pilot"},
		{"localhost:5000/pilot", "pilot"},
		{"pilot", "pilot"},
		{"nginx:1.27", "nginx"},
	} {
		if got := imageName(tc.image); got != tc.want {
			t.Errorf("imageName(%q) = %q, want %q", tc.image, got, tc.want)
		}
	}
}

func TestExecutableFor(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pilot"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, image string
		ok         bool
	}{
		{dir, "docker.io/istio/pilot:1.31.0", true},
		{dir, "docker.io/istio/proxyv2:1.31.0", false},
		{dir, "example/notexec:1", false},
		{"", "docker.io/istio/pilot:1.31.0", false},
		{"/nonexistent", "docker.io/istio/pilot:1.31.0", false},
	} {
		exe, ok := executableFor(tc.dir, tc.image)
		if ok != tc.ok || ok && exe != filepath.Join(dir, "pilot") {
			t.Errorf("executableFor(%q, %q) = %q, %v; want ok=%v", tc.dir, tc.image, exe, ok, tc.ok)
		}
	}
}

func TestContainerArgv(t *testing.T) {
	vars := map[string]string{"NS": "istio-system"}
	for _, tc := range []struct {
		name    string
		c       corev1.Container
		want    []string
		wantErr string
	}{
		{"args only", corev1.Container{Image: "istio/pilot:1", Args: []string{"discovery", "--ns=$(NS)"}},
			[]string{"/usr/local/bin/pilot-discovery", "discovery", "--ns=istio-system"}, ""},
		{"command names the entrypoint", corev1.Container{Image: "istio/pilot:1", Command: []string{"/usr/local/bin/pilot-discovery", "discovery"}, Args: []string{"-a"}},
			[]string{"/usr/local/bin/pilot-discovery", "discovery", "-a"}, ""},
		{"command names the executable", corev1.Container{Image: "istio/pilot:1", Command: []string{"pilot"}},
			[]string{"/usr/local/bin/pilot-discovery"}, ""},
		{"escaped reference stays", corev1.Container{Image: "istio/pilot:1", Args: []string{"$$(NS)"}},
			[]string{"/usr/local/bin/pilot-discovery", "$(NS)"}, ""},
		{"other program refused", corev1.Container{Image: "istio/pilot:1", Command: []string{"sh", "-c", "x"}},
			nil, `command "sh" cannot run natively`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := containerArgv("/x/pilot", &tc.c, expander(vars))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("argv %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCrashBackoff(t *testing.T) {
	var b crashBackoff
	var got []string
	for _, ran := range []string{"1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s", "11m", "1s"} {
		d, err := time.ParseDuration(ran)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.delay(d).String())
	}
	want := []string{"0s", "10s", "20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s", "0s", "10s"}
	if !slices.Equal(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
}
