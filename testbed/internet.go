package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"mcplan.io/mcplan/testbed/internet"
)

// InternetPort is the port the stand-in internet listens on, at the
// bridge's address.
const InternetPort = 443

// HostInternetCA is where a host keeps the stand-in internet's CA, which
// update-ca-certificates adds to the host's trusted certificates.
const HostInternetCA = "/usr/local/share/ca-certificates/mcplan-testbed-internet.crt"

// internetHostsMarker ends the /etc/hosts line that sends the stand-in
// internet's names to the bridge.
const internetHostsMarker = "# mcplan testbed stand-in internet"

// startInternet starts the stand-in internet of opts on the bridge's
// address (.1 of subnet) port InternetPort, its CA and logs in the run
// directory's internet/ folder.
func (b *Bed) startInternet(opts Options, subnet netip.Prefix) error {
	addr := net.JoinHostPort(gatewayAddress(subnet).String(), fmt.Sprint(InternetPort))
	srv, err := internet.Start(addr, filepath.Join(b.Dir, "internet"), *opts.Internet)
	if err != nil {
		return fmt.Errorf("testbed %s: %w", b.Prefix, err)
	}
	b.Internet = srv
	fmt.Fprintf(opts.Log, "testbed %s: stand-in internet on %s for %s\n", b.Prefix, addr, strings.Join(internet.Names, ", "))
	return nil
}

// connectToInternet makes every host use the stand-in internet, as a VM's
// provisioning would: over SSH, the names in the host's /etc/hosts and the
// test CA among its trusted certificates (update-ca-certificates). Nothing
// else of the hosts' resolution or routes changes: their default route
// stays unreachable.
func (b *Bed) connectToInternet(ctx context.Context) error {
	script := fmt.Sprintf(`set -e
mkdir -p %[1]s
cat >%[2]s <<'MCPLAN_TESTBED_CA'
%[3]sMCPLAN_TESTBED_CA
update-ca-certificates >/dev/null 2>&1 || { echo "update-ca-certificates failed" >&2; exit 1; }
grep -v %[4]s /etc/hosts >/etc/hosts.mcplan-testbed || true
printf '%%s %%s\n' %[5]s %[4]s >>/etc/hosts.mcplan-testbed
cat /etc/hosts.mcplan-testbed >/etc/hosts
rm -f /etc/hosts.mcplan-testbed
`, shellQuote(filepath.Dir(HostInternetCA)), shellQuote(HostInternetCA), b.Internet.CACert,
		shellQuote(internetHostsMarker), shellQuote(b.Internet.HostsLine()))
	key, err := os.ReadFile(b.ClientKeyPath)
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return err
	}
	errs := make([]error, len(b.Hosts))
	var wg sync.WaitGroup
	for i, h := range b.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runOnHost(ctx, h, signer, script); err != nil {
				errs[i] = fmt.Errorf("testbed %s host %s: connect to the stand-in internet: %w", b.Prefix, h.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runOnHost runs script on h as root, h's host key checked.
func runOnHost(ctx context.Context, h Host, signer ssh.Signer, script string) error {
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.HostKey))
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	cfg := &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 10 * time.Second,
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.SSHAddr())
	if err != nil {
		return err
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, h.SSHAddr(), cfg)
	if err != nil {
		conn.Close()
		return err
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	var out bytes.Buffer
	s.Stdout, s.Stderr = &out, &out
	done := make(chan error, 1)
	go func() { done <- s.Run(script) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(out.String()))
		}
		return nil
	case <-ctx.Done():
		client.Close()
		return ctx.Err()
	}
}
