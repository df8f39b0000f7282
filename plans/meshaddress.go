package plans

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// CheckMeshAddress refuses an API address no other cluster can use:
// empty, unspecified, localhost, 127.0.0.1 or ::1. (Other loopback
// addresses are allowed: they tell apart API servers sharing one machine,
// as in tests.)
func CheckMeshAddress(addr string) error {
	host := strings.TrimSuffix(strings.ToLower(addr), ".")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	switch {
	case host == "":
		return errors.New("is empty")
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return fmt.Errorf("is %q, the local machine", addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.IsUnspecified() || ip == netip.MustParseAddr("127.0.0.1") || ip == netip.IPv6Loopback() {
			return fmt.Errorf("is %s, the local machine", addr)
		}
	}
	return nil
}
