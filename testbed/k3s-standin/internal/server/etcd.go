package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/config"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
)

// Files and folders of the embedded etcd, as k3s keeps them.
func dbDir(dataDir string) string       { return filepath.Join(dataDir, "server", "db") }
func etcdDataDir(dataDir string) string { return filepath.Join(dbDir(dataDir), "etcd") }

// etcdNameFile holds the member's name (k3s: server/db/etcd/name).
func etcdNameFile(dataDir string) string { return filepath.Join(etcdDataDir(dataDir), "name") }

// etcdClusterFile marks a member that served peers (cluster-init or
// joined): it keeps doing so after a restart without cluster-init and
// server, as k3s keeps using etcd once it has its data (a joined server
// that becomes the cluster's only or first one).
func etcdClusterFile(dataDir string) string {
	return filepath.Join(etcdDataDir(dataDir), "cluster")
}

// wasClusterMember says whether the member in the data dir served peers.
func wasClusterMember(dataDir string) bool {
	_, err := os.Stat(etcdClusterFile(dataDir))
	return err == nil
}

// hasEtcdData reports whether a member was started in this data dir.
func hasEtcdData(dataDir string) bool {
	_, err := os.Stat(filepath.Join(etcdDataDir(dataDir), "member"))
	return err == nil
}

// legacyMemberName is the name older stand-ins gave their only member.
const legacyMemberName = "default"

// memberSuffixLen is the length of the random hex suffix of a member name.
const memberSuffixLen = 8

// newMemberName names a node's etcd member as k3s does:
// <node name>-<8 random hex digits>, unique per incarnation of the member.
func newMemberName(nodeName string) (string, error) {
	b := make([]byte, memberSuffixLen/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("server: member name: %w", err)
	}
	return nodeName + "-" + hex.EncodeToString(b), nil
}

// memberNodeName is the node name of a member named by newMemberName, or ""
// when the name is not of that form.
func memberNodeName(member string) string {
	i := strings.LastIndexByte(member, '-')
	if i <= 0 || len(member)-i-1 != memberSuffixLen {
		return ""
	}
	if _, err := hex.DecodeString(member[i+1:]); err != nil {
		return ""
	}
	return member[:i]
}

// readMemberName returns the member name kept in the data dir ("" when
// there is none).
func readMemberName(dataDir string) string {
	b, err := os.ReadFile(etcdNameFile(dataDir))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// etcdPlan is how to start the local member.
type etcdPlan struct {
	name string
	// cluster: the member serves peers and clients on the node IP too
	// (cluster-init, joined servers).
	cluster bool
	// learner: the member was just added as a learner (join).
	learner        bool
	state          string // embed.ClusterStateFlagNew or ...Existing
	initialCluster string // "" means <name>=<own peer URL>
	forceNew       bool
}

// etcdURLs are the member's URLs.
type etcdURLs struct {
	listenClient, listenPeer []url.URL
	client, peer             url.URL // advertised
}

func memberURLs(cfg *config.Config, cluster bool) etcdURLs {
	mk := func(host string, port int) url.URL {
		return url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port))}
	}
	u := etcdURLs{
		listenClient: []url.URL{mk("127.0.0.1", cfg.EtcdPort)},
		listenPeer:   []url.URL{mk("127.0.0.1", cfg.EtcdPeerPort)},
		client:       mk("127.0.0.1", cfg.EtcdPort),
		peer:         mk("127.0.0.1", cfg.EtcdPeerPort),
	}
	if ip := net.ParseIP(cfg.NodeIP); cluster && ip != nil && !ip.IsLoopback() {
		u.client, u.peer = mk(cfg.NodeIP, cfg.EtcdPort), mk(cfg.NodeIP, cfg.EtcdPeerPort)
		u.listenClient = append(u.listenClient, u.client)
		u.listenPeer = append(u.listenPeer, u.peer)
	}
	return u
}

// startEtcd starts the embedded etcd member (TLS with client-cert auth on
// the client and the peer port, certificates of etcd/server-ca and
// etcd/peer-ca) and returns without waiting for it to be ready: a joining
// learner becomes ready only once promoted.
func startEtcd(cfg *config.Config, p etcdPlan, c *certs) (*embed.Etcd, error) {
	u := memberURLs(cfg, p.cluster)
	ec := embed.NewConfig()
	ec.Name = p.name
	ec.Dir = etcdDataDir(cfg.DataDir)
	ec.Logger = "zap"
	ec.LogLevel = "warn"
	ec.ListenClientUrls = u.listenClient
	ec.AdvertiseClientUrls = []url.URL{u.client}
	ec.ListenPeerUrls = u.listenPeer
	ec.AdvertisePeerUrls = []url.URL{u.peer}
	ec.ClusterState = p.state
	if ec.ClusterState == "" {
		ec.ClusterState = embed.ClusterStateFlagNew
	}
	ec.InitialCluster = p.initialCluster
	if ec.InitialCluster == "" {
		ec.InitialCluster = p.name + "=" + u.peer.String()
	}
	ec.ForceNewCluster = p.forceNew
	ec.ListenMetricsUrls = nil
	ec.ClientTLSInfo = transport.TLSInfo{
		CertFile:       c.path("etcd/server-client.crt"),
		KeyFile:        c.path("etcd/server-client.key"),
		TrustedCAFile:  c.path("etcd/server-ca.crt"),
		ClientCertAuth: true,
	}
	ec.PeerTLSInfo = transport.TLSInfo{
		CertFile:       c.path("etcd/peer-server-client.crt"),
		KeyFile:        c.path("etcd/peer-server-client.key"),
		TrustedCAFile:  c.path("etcd/peer-ca.crt"),
		ClientCertAuth: true,
		// Real hosts connect from their node IP, which the peer
		// certificate holds; servers sharing one namespace do not.
		SkipClientSANVerify: cfg.EtcdPeerSkipClientSANVerify,
	}
	if err := os.MkdirAll(ec.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := pki.WriteFile(etcdNameFile(cfg.DataDir), []byte(p.name+"\n"), 0o600); err != nil {
		return nil, err
	}
	if p.cluster {
		if err := pki.WriteFile(etcdClusterFile(cfg.DataDir), []byte("cluster member\n"), 0o600); err != nil {
			return nil, err
		}
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("server: start etcd: %w", err)
	}
	return e, nil
}

// waitEtcdReady waits until the member serves (it has joined a quorum),
// logging while it waits.
func waitEtcdReady(ctx context.Context, e *embed.Etcd, logf func(string, ...any)) error {
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-e.Server.ReadyNotify():
			return nil
		case err := <-e.Err():
			return fmt.Errorf("server: etcd failed: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("server: waiting for etcd: %w", ctx.Err())
		case <-tick.C:
			logf("waiting for etcd member to join a quorum")
		}
	}
}

// etcdClient is a client of the given endpoints with the etcd client
// certificate (etcd/client.crt, as the apiserver uses).
func etcdClient(c *certs, endpoints []string) (*clientv3.Client, error) {
	tlsCfg, err := (transport.TLSInfo{
		CertFile:      c.path("etcd/client.crt"),
		KeyFile:       c.path("etcd/client.key"),
		TrustedCAFile: c.path("etcd/server-ca.crt"),
	}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("server: etcd client TLS: %w", err)
	}
	tlsCfg.MinVersion = tls.VersionTLS12
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsCfg,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("server: etcd client: %w", err)
	}
	return cli, nil
}

func localEtcdEndpoint(cfg *config.Config) string {
	return "https://127.0.0.1:" + strconv.Itoa(cfg.EtcdPort)
}

// initialClusterOf is the initial-cluster flag for members; a member not
// started yet (no name) is the local one, self.
func initialClusterOf(members []*etcdserverpb.Member, self string) string {
	var parts []string
	for _, m := range members {
		name := m.Name
		if name == "" {
			name = self
		}
		for _, p := range m.PeerURLs {
			parts = append(parts, name+"="+p)
		}
	}
	return strings.Join(parts, ",")
}

// joinEtcd adds this server to the cluster of members (from the first
// server's /db/info) as a learner, as k3s does, and returns how to start
// the local member. A member with this server's peer URL is reused when it
// never started (an earlier join that stopped halfway) and removed when it
// did (the data dir of that incarnation is gone).
func (s *Server) joinEtcd(ctx context.Context, endpoints []string) (etcdPlan, error) {
	cfg := s.cfg
	if len(endpoints) == 0 {
		return etcdPlan{}, errors.New("server: the server joined lists no etcd members")
	}
	cli, err := etcdClient(s.certs, endpoints)
	if err != nil {
		return etcdPlan{}, err
	}
	defer cli.Close()
	name := readMemberName(cfg.DataDir)
	if name == "" {
		if name, err = newMemberName(cfg.NodeName); err != nil {
			return etcdPlan{}, err
		}
	}
	u := memberURLs(cfg, true)
	peer := u.peer.String()
	var list *clientv3.MemberListResponse
	if err := retry(ctx, 2*time.Minute, func(ctx context.Context) error {
		list, err = cli.MemberList(ctx)
		return err
	}); err != nil {
		return etcdPlan{}, fmt.Errorf("server: list etcd members at %v: %w", endpoints, err)
	}
	for _, m := range list.Members {
		if slices.Contains(m.PeerURLs, peer) {
			if m.Name == "" {
				s.logf("etcd: reusing member %x for %s, added by an earlier join", m.ID, peer)
				return etcdPlan{name: name, cluster: true, learner: m.IsLearner, state: embed.ClusterStateFlagExisting, initialCluster: initialClusterOf(list.Members, name)}, nil
			}
			s.logf("etcd: removing member %s (%x) of an earlier incarnation at %s", m.Name, m.ID, peer)
			if _, err := cli.MemberRemove(ctx, m.ID); err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound) {
				return etcdPlan{}, fmt.Errorf("server: remove stale etcd member %s: %w", m.Name, err)
			}
			continue
		}
		if memberNodeName(m.Name) == cfg.NodeName {
			return etcdPlan{}, fmt.Errorf("server: etcd member %s (%v) has this node's name %s: duplicate node name, use a unique node name or delete that node", m.Name, m.PeerURLs, cfg.NodeName)
		}
	}
	var added *clientv3.MemberAddResponse
	if err := retry(ctx, 2*time.Minute, func(ctx context.Context) error {
		added, err = cli.MemberAddAsLearner(ctx, []string{peer})
		return err
	}); err != nil {
		return etcdPlan{}, fmt.Errorf("server: add etcd learner %s: %w", peer, err)
	}
	s.logf("etcd: added learner %s (%x) at %s", name, added.Member.ID, peer)
	return etcdPlan{name: name, cluster: true, learner: true, state: embed.ClusterStateFlagExisting, initialCluster: initialClusterOf(added.Members, name)}, nil
}

// ensureVoter promotes the local member when it is a learner: through the
// other members (a learner serves no member API), retried while the leader
// says it is not in sync yet. A joining member (learner set, endpoints of
// the cluster it joined) is promoted before it serves; a restarted one is
// asked once it serves whether it still is a learner (it stopped between
// joining and being promoted).
func (s *Server) ensureVoter(ctx context.Context, e *embed.Etcd, learner bool, endpoints []string) error {
	id := uint64(e.Server.MemberID())
	if !learner {
		if !e.Server.IsLearner() {
			return nil
		}
		for _, m := range e.Server.Cluster().Members() {
			if uint64(m.ID) != id {
				endpoints = append(endpoints, m.ClientURLs...)
			}
		}
	}
	others, err := etcdClient(s.certs, endpoints)
	if err != nil {
		return err
	}
	defer others.Close()
	start := time.Now()
	err = retry(ctx, 10*time.Minute, func(ctx context.Context) error {
		_, err := others.MemberPromote(ctx, id)
		if errors.Is(err, rpctypes.ErrMemberNotLearner) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("server: promote etcd learner %x: %w", id, err)
	}
	s.logf("etcd: promoted learner %x to a voting member after %s", id, time.Since(start).Round(time.Millisecond))
	return nil
}

// reconcilePeerURL updates the local member's peer URL in the cluster when
// it changed (another node IP, or a member of an older stand-in that
// advertised loopback).
func (s *Server) reconcilePeerURL(ctx context.Context, e *embed.Etcd, cluster bool) {
	u := memberURLs(s.cfg, cluster)
	want := u.peer.String()
	cli, err := etcdClient(s.certs, []string{localEtcdEndpoint(s.cfg)})
	if err != nil {
		s.logf("etcd: %v", err)
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := cli.MemberList(ctx)
	if err != nil {
		s.logf("etcd: list members: %v", err)
		return
	}
	for _, m := range l.Members {
		if m.ID == uint64(e.Server.MemberID()) && !slices.Equal(m.PeerURLs, []string{want}) {
			if _, err := cli.MemberUpdate(ctx, m.ID, []string{want}); err != nil {
				s.logf("etcd: update peer URL of %s to %s: %v", m.Name, want, err)
			} else {
				s.logf("etcd: peer URL of %s is now %s (was %v)", m.Name, want, m.PeerURLs)
			}
		}
	}
}

// retry calls f every second until it succeeds, ctx ends or timeout passes.
func retry(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, 10*time.Second)
		last = f(callCtx)
		callCancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(time.Second):
		}
	}
}
