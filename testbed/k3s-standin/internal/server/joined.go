package server

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/join"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
)

// bootstrapFrom makes this server a member of the cluster of the server it
// joins (server: + a server token), as k3s does: it verifies the server's
// CA against the token, gets the bootstrap data (every CA with its key and
// the service-account key) from /v1-k3s/server-bootstrap and writes it
// under <data-dir>/server/tls, so this server issues its own certificates
// from the same CAs. It returns the etcd client URLs of the cluster's
// members (/db/info), through which the server adds itself.
func (s *Server) bootstrapFrom(ctx context.Context) ([]string, error) {
	cfg := s.cfg
	jc, err := join.New(ctx, cfg.Server, cfg.Token, s.logf)
	if err != nil {
		return nil, err
	}
	boot, err := jc.ServerBootstrap(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.DataDir, "server", "tls")
	for _, name := range caFiles {
		data, ok := boot.Files[name]
		if !ok {
			return nil, fmt.Errorf("server: the bootstrap data of %s has no %s", jc.URL, name)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		if err := pki.WriteFile(filepath.Join(dir, filepath.FromSlash(path.Clean(name))), []byte(data), mode); err != nil {
			return nil, err
		}
	}
	if got := pki.Hash([]byte(boot.Files["server-ca.crt"])); got != pki.Hash(jc.CAPEM) {
		return nil, fmt.Errorf("server: the bootstrap data's server CA is not the one %s serves at %s", jc.URL, join.PathCACerts)
	}
	info, err := jc.DBInfo(ctx)
	if err != nil {
		return nil, err
	}
	var endpoints []string
	for _, m := range info.Members {
		for _, u := range m.ClientURLs {
			if !slices.Contains(endpoints, u) {
				endpoints = append(endpoints, u)
			}
		}
	}
	s.logf("got the bootstrap data of %s; etcd members %v", jc.URL, endpoints)
	return endpoints, nil
}
