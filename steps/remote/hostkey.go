package remote

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"mcplan.io/mcplan/internal/lists"
)

// TrustStore keeps values trusted on first use, such as pinned host keys.
// mcplan keeps them in its state.
type TrustStore interface {
	Trusted(key string) (string, bool)
	Trust(key, value string) error
}

// HostKeyError is a host key that does not match what is trusted.
type HostKeyError struct {
	Endpoint string
	// Presented is the fingerprint of the key the server showed.
	Presented string
	// Expected are the fingerprints of the trusted keys, and Source where
	// they come from.
	Expected []string
	Source   string
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("%s: HOST KEY MISMATCH: the server presents %s but %s trusts %s; "+
		"if the host was reinstalled on purpose, remove the old key from %s, otherwise someone may be intercepting the connection",
		e.Endpoint, e.Presented, e.Source, strings.Join(e.Expected, ", "), e.Source)
}

// hostKeyCheck returns the callback and the host key algorithms to offer
// for an endpoint.
func hostKeyCheck(ep Endpoint, trust TrustStore, logf func(string, ...any)) (ssh.HostKeyCallback, []string, error) {
	if ep.KnownHosts == KnownHostsPin {
		return pinCallback(ep, trust, logf), pinnedAlgorithms(ep, trust), nil
	}
	if ep.KnownHosts == "" {
		return nil, nil, fmt.Errorf("%s: no known_hosts file and no pin: host keys must be verified", ep)
	}
	check, err := knownhosts.New(ep.KnownHosts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: read known_hosts: %w", ep, err)
	}
	algos, err := knownAlgorithms(ep.KnownHosts, ep.HostPort())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: read known_hosts: %w", ep, err)
	}
	callback := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var keyErr *knownhosts.KeyError
		if !errors.As(err, &keyErr) {
			return err
		}
		if len(keyErr.Want) == 0 {
			return fmt.Errorf("%s: host key %s is not in %s: check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and add it, or set ssh.knownHosts: pin to trust it on first use",
				ep, ssh.FingerprintSHA256(key), ep.KnownHosts)
		}
		var want []string
		for _, k := range keyErr.Want {
			want = append(want, fmt.Sprintf("%s (%s:%d)", ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		return &HostKeyError{Endpoint: ep.String(), Presented: ssh.FingerprintSHA256(key), Expected: want, Source: ep.KnownHosts}
	}
	return callback, algos, nil
}

// pinKeyPrefix starts the TrustStore keys of pinned host keys.
const pinKeyPrefix = "ssh-host-key/"

// pinKey is the TrustStore key of a host's pinned key: its address and
// port, not its name, so that renaming a host in the plan keeps its pin.
func pinKey(ep Endpoint) string { return pinKeyPrefix + ep.HostPort() }

func pinCallback(ep Endpoint, trust TrustStore, logf func(string, ...any)) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
		pinned, ok := trust.Trusted(pinKey(ep))
		if !ok {
			if err := trust.Trust(pinKey(ep), line); err != nil {
				return fmt.Errorf("%s: pin host key: %w", ep, err)
			}
			logf("%s: pinned host key %s on first use", ep, ssh.FingerprintSHA256(key))
			return nil
		}
		if pinned == line {
			return nil
		}
		expected := pinned
		if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pinned)); err == nil {
			expected = ssh.FingerprintSHA256(pk)
		}
		return &HostKeyError{Endpoint: ep.String(), Presented: ssh.FingerprintSHA256(key), Expected: []string{expected}, Source: pinSource(trust)}
	}
}

// pinSource names where pins are kept, for messages.
func pinSource(trust TrustStore) string {
	if f, ok := trust.(*PinFile); ok {
		return f.path
	}
	return "the keys pinned in mcplan's state"
}

// pinnedAlgorithms offers the pinned key's algorithm, so a server with
// several host keys shows the pinned one.
func pinnedAlgorithms(ep Endpoint, trust TrustStore) []string {
	pinned, ok := trust.Trusted(pinKey(ep))
	if !ok {
		return nil
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pinned))
	if err != nil {
		return nil
	}
	return algorithmsFor(pk.Type())
}

// knownAlgorithms lists the key algorithms known_hosts has for a host, so
// the server is asked for a key we can check (OpenSSH does the same).
func knownAlgorithms(path, hostport string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	want := knownhosts.Normalize(hostport)
	var algos []string
	for rest := data; len(rest) > 0; {
		marker, hosts, key, _, next, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			break // io.EOF at the end; knownhosts.New reports malformed files
		}
		rest = next
		if marker != "" {
			continue
		}
		for _, h := range hosts {
			if h == want || hashedMatch(h, want) {
				algos = lists.AppendNew(algos, algorithmsFor(key.Type())...)
			}
		}
	}
	return algos, nil
}

// hashedMatch checks a HashKnownHosts entry, |1|salt|hash, against host.
func hashedMatch(entry, host string) bool {
	parts := strings.Split(entry, "|")
	if len(parts) != 4 || parts[1] != "1" {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	sum, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(host))
	return bytes.Equal(mac.Sum(nil), sum)
}

// preferredHostKeyAlgorithms are asked for when no key of the host is
// known yet: ed25519 first, and never ssh-rsa (RSA signed with SHA-1).
var preferredHostKeyAlgorithms = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384,
	ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}

// algorithmsFor are the signature algorithms to ask for a key of keyType:
// an RSA key is verified with SHA-2 signatures only.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{keyType}
}
