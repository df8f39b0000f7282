package remote

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// KnownHostsPin, as Endpoint.KnownHosts, trusts a host's key on first use
// and refuses any other key later.
const KnownHostsPin = "pin"

// Endpoint says how to reach one host.
type Endpoint struct {
	// Name is the host's name in the plan, used in messages.
	Name    string
	Address string
	Port    int
	User    string
	// IdentityFile is a private key file; empty with UseAgent.
	IdentityFile string
	// Passphrase decrypts IdentityFile when it is encrypted.
	Passphrase []byte
	// UseAgent authenticates with the agent at AgentSocket.
	UseAgent    bool
	AgentSocket string
	// KnownHosts is a known_hosts file, or KnownHostsPin.
	KnownHosts string
	// Jump, when set, is the bastion this host is reached through.
	Jump           *Endpoint
	ConnectTimeout time.Duration
}

// HostPort is the address dialled.
func (e Endpoint) HostPort() string {
	port := e.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(e.Address, strconv.Itoa(port))
}

func (e Endpoint) String() string {
	if e.Name != "" && e.Name != e.Address {
		return fmt.Sprintf("host %s (%s)", e.Name, e.HostPort())
	}
	return "host " + e.HostPort()
}

// ParseJump reads a ProxyJump value, [user@]host[:port], into an Endpoint
// that inherits the other settings of base.
func ParseJump(value string, base Endpoint) (Endpoint, error) {
	jump := base
	jump.Jump = nil
	jump.Name = value
	rest := value
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		jump.User, rest = rest[:at], rest[at+1:]
	}
	host, portText, err := net.SplitHostPort(rest)
	if err != nil {
		host, portText = rest, ""
	}
	if host == "" {
		return Endpoint{}, fmt.Errorf("proxyJump %q: no host", value)
	}
	jump.Address, jump.Port = strings.Trim(host, "[]"), 22
	if portText != "" {
		port, err := strconv.Atoi(portText)
		if err != nil || port < 1 || port > 65535 {
			return Endpoint{}, fmt.Errorf("proxyJump %q: bad port %q", value, portText)
		}
		jump.Port = port
	}
	return jump, nil
}
