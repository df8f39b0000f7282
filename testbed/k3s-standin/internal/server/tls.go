package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/config"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
)

// certs holds the server PKI under <data-dir>/server/tls, named as k3s
// names its files.
type certs struct {
	dir           string
	serverCA      *pki.CA // signs serving certs; its PEM is /cacerts and the K10 hash
	clientCA      *pki.CA // signs client certs (admin, controllers, nodes)
	requestHeader *pki.CA // signs the supervisor's front-proxy client cert
	etcdServerCA  *pki.CA // etcd/server-ca: etcd serving + apiserver etcd client
	etcdPeerCA    *pki.CA // etcd/peer-ca: etcd peer serving and client
}

// caFiles are the files every server of a cluster shares, relative to
// <data-dir>/server/tls: what a joining server gets from
// /v1-k3s/server-bootstrap (k3s's bootstrap data: the CAs with their keys
// and the service-account key).
var caFiles = []string{
	"server-ca.crt", "server-ca.key",
	"client-ca.crt", "client-ca.key",
	"request-header-ca.crt", "request-header-ca.key",
	"etcd/server-ca.crt", "etcd/server-ca.key",
	"etcd/peer-ca.crt", "etcd/peer-ca.key",
	"service.key",
}

func (c *certs) path(name string) string { return filepath.Join(c.dir, name) }

// loadCerts makes or loads every CA and (re)issues every leaf certificate,
// so a changed tls-san or node-ip is reflected after a restart.
func loadCerts(cfg *config.Config) (*certs, error) {
	dir := filepath.Join(cfg.DataDir, "server", "tls")
	if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o700); err != nil {
		return nil, fmt.Errorf("server: mkdir %s: %w", dir, err)
	}
	c := &certs{dir: dir}
	var err error
	if c.serverCA, err = pki.LoadOrCreateCA(dir, "server-ca", "k3s-server-ca"); err != nil {
		return nil, err
	}
	if c.clientCA, err = pki.LoadOrCreateCA(dir, "client-ca", "k3s-client-ca"); err != nil {
		return nil, err
	}
	if c.requestHeader, err = pki.LoadOrCreateCA(dir, "request-header-ca", "k3s-request-header-ca"); err != nil {
		return nil, err
	}
	if c.etcdServerCA, err = pki.LoadOrCreateCA(filepath.Join(dir, "etcd"), "server-ca", "etcd-server-ca"); err != nil {
		return nil, err
	}
	if c.etcdPeerCA, err = pki.LoadOrCreateCA(filepath.Join(dir, "etcd"), "peer-ca", "etcd-peer-ca"); err != nil {
		return nil, err
	}
	if _, err := pki.LoadOrCreateKey(filepath.Join(dir, "service.key")); err != nil {
		return nil, err
	}
	dns, ips := servingSANs(cfg)
	etcdDNS, etcdIPs := etcdSANs(cfg)
	issue := []struct {
		ca   *pki.CA
		dir  string
		name string
		leaf pki.Leaf
	}{
		{c.serverCA, dir, "serving-kube-apiserver", pki.Leaf{CommonName: "kube-apiserver", DNSNames: dns, IPs: ips, Server: true}},
		{c.clientCA, dir, "client-admin", pki.Leaf{CommonName: "system:admin", Organization: []string{"system:masters"}, Client: true}},
		{c.clientCA, dir, "client-controller", pki.Leaf{CommonName: "system:kube-controller-manager", Client: true}},
		{c.clientCA, dir, "client-scheduler", pki.Leaf{CommonName: "system:kube-scheduler", Client: true}},
		{c.clientCA, dir, "client-kube-apiserver", pki.Leaf{CommonName: "system:apiserver", Organization: []string{"system:masters"}, Client: true}},
		{c.clientCA, dir, "client-k3s-controller", pki.Leaf{CommonName: "system:k3s-controller", Organization: []string{"system:masters"}, Client: true}},
		{c.requestHeader, dir, "client-auth-proxy", pki.Leaf{CommonName: "system:auth-proxy", Client: true}},
		{c.etcdServerCA, filepath.Join(dir, "etcd"), "server-client", pki.Leaf{CommonName: "etcd-server", DNSNames: etcdDNS, IPs: etcdIPs, Server: true, Client: true}},
		{c.etcdPeerCA, filepath.Join(dir, "etcd"), "peer-server-client", pki.Leaf{CommonName: "etcd-peer", DNSNames: etcdDNS, IPs: etcdIPs, Server: true, Client: true}},
		{c.etcdServerCA, filepath.Join(dir, "etcd"), "client", pki.Leaf{CommonName: "etcd-client", Client: true}},
	}
	for _, i := range issue {
		// Like k3s, client certificates are kept across restarts while
		// valid (k3s.yaml stays the same); serving certificates are issued
		// again so a changed node-ip or tls-san takes effect.
		if !i.leaf.Server && i.ca.Signed(filepath.Join(i.dir, i.name+".crt"), 30*24*time.Hour) {
			continue
		}
		if _, _, err := i.ca.IssueFiles(i.dir, i.name, i.leaf); err != nil {
			return nil, fmt.Errorf("server: issue %s: %w", i.name, err)
		}
	}
	return c, nil
}

// servingSANs lists what the :6443 and apiserver certificates are valid
// for: every node IP, advertise address, tls-san, loopback and the in-cluster
// names, like k3s.
func servingSANs(cfg *config.Config) ([]string, []net.IP) {
	dnsSet := map[string]bool{"localhost": true, "kubernetes": true, "kubernetes.default": true, "kubernetes.default.svc": true, "kubernetes.default.svc.cluster.local": true, cfg.NodeName: true}
	ipSet := map[string]bool{"127.0.0.1": true, "::1": true, cfg.NodeIP: true, cfg.AdvertiseAddress: true}
	if h, err := os.Hostname(); err == nil {
		dnsSet[h] = true
	}
	if ip, err := firstServiceIP(cfg.ServiceCIDR); err == nil {
		ipSet[ip.String()] = true
	}
	for _, s := range cfg.TLSSANs {
		if net.ParseIP(s) != nil {
			ipSet[s] = true
		} else if s != "" {
			dnsSet[s] = true
		}
	}
	var dns []string
	for d := range dnsSet {
		dns = append(dns, d)
	}
	sort.Strings(dns)
	var ips []net.IP
	for s := range ipSet {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		}
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].String() < ips[j].String() })
	return dns, ips
}

// etcdSANs are the names of the etcd serving and peer certificates, as in
// k3s: localhost, the loopback addresses, the node name and the node IP.
func etcdSANs(cfg *config.Config) ([]string, []net.IP) {
	dns := []string{"localhost"}
	if cfg.NodeName != "localhost" {
		dns = append(dns, cfg.NodeName)
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if ip := net.ParseIP(cfg.NodeIP); ip != nil && !ip.IsLoopback() {
		ips = append(ips, ip)
	}
	return dns, ips
}

// firstServiceIP is the kubernetes Service's ClusterIP (network + 1).
func firstServiceIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("server: service CIDR %q: %w", cidr, err)
	}
	ip := n.IP.To4()
	if ip == nil {
		ip = n.IP
	}
	out := make(net.IP, len(ip))
	copy(out, ip)
	out[len(out)-1]++
	return out, nil
}
