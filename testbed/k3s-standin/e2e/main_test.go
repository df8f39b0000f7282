package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// The tests run in a network namespace of their own when they can (root):
// istiod binds its ports on every address, and the apiserver refuses
// loopback pod IPs in Endpoints/EndpointSlices, so the native pods need a
// node IP that is not loopback. The re-executed test binary sets up
// loopback plus nodeIP, agentIP and thirdIP (the HA test's three servers)
// on lo; nothing leaves the namespace.
const (
	envInNetNS        = "STANDIN_E2E_IN_NETNS"
	envStandinBin     = "STANDIN_E2E_BIN"
	envNativeImages   = "STANDIN_E2E_NATIVE_IMAGES"
	envNativeSkipWhy  = "STANDIN_E2E_NATIVE_SKIP"
	netnsNodeIP       = "10.254.0.1"
	netnsAgentIP      = "10.254.0.2"
	netnsThirdIP      = "10.254.0.3"
	nativeImagesBuild = "../../native-images/build.sh"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() || os.Getenv(envInNetNS) != "" {
		if os.Getenv(envInNetNS) != "" {
			if err := setupNetNS(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: set up network namespace:", err)
				os.Exit(1)
			}
		}
		os.Exit(m.Run())
	}
	// Builds need the network (module downloads): do them here, before
	// entering the empty network namespace.
	bin, err := buildStandinBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build.sh:", err)
		os.Exit(1)
	}
	os.Setenv(envStandinBin, bin)
	dir, err := buildNativeImages()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: native-images/build.sh:", err)
		os.Exit(1)
	}
	os.Setenv(envNativeImages, dir)
	if os.Geteuid() != 0 {
		os.Setenv(envNativeSkipWhy, "not root: no network namespace with a non-loopback node IP, no mount namespaces")
		os.Exit(m.Run())
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envInNetNS+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "e2e: run in a network namespace:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func setupNetNS() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", netnsNodeIP + "/32", "dev", "lo"},
		{"addr", "add", netnsAgentIP + "/32", "dev", "lo"},
		{"addr", "add", netnsThirdIP + "/32", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func buildStandinBinary() (string, error) {
	cmd := exec.Command("bash", "../build.sh")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// buildNativeImages runs testbed/native-images/build.sh (a no-op when its
// cache is there; about 5 minutes otherwise).
func buildNativeImages() (string, error) {
	if _, err := os.Stat(nativeImagesBuild); err != nil {
		return "", fmt.Errorf("no %s: %w", nativeImagesBuild, err)
	}
	cmd := exec.Command("bash", nativeImagesBuild)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", nativeImagesBuild, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// inNetNS reports whether the test runs in its own network namespace.
func inNetNS() bool { return os.Getenv(envInNetNS) != "" }
