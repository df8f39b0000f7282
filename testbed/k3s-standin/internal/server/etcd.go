package server

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd runs an embedded single-member etcd that listens only on
// 127.0.0.1 (TLS with client-cert auth on the client port).
func startEtcd(ctx context.Context, dataDir string, port int, c *certs) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "default"
	cfg.Dir = filepath.Join(dataDir, "server", "db", "etcd")
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	client := url.URL{Scheme: "https", Host: "127.0.0.1:" + strconv.Itoa(port)}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(port+1)}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile:       c.path("etcd/server-client.crt"),
		KeyFile:        c.path("etcd/server-client.key"),
		TrustedCAFile:  c.path("etcd/server-ca.crt"),
		ClientCertAuth: true,
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("server: start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("server: etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("server: etcd not ready after 60s")
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("server: waiting for etcd: %w", ctx.Err())
	}
}
