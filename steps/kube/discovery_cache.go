package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/disk"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
)

// Discovery is cached on disk between runs, as kubectl caches it
// (client-go's discovery/cached/disk, which cli-runtime's ConfigFlags
// use), so that a run does not ask each API for its groups and resources
// again: a no-op re-apply reads objects, not discovery. A kind the cache
// does not know (a CRD applied since) makes the mapper ask again
// (mapping, Reset after CRDs are Established); discoveryTTL bounds how
// long a kind deleted by someone else may still be believed served.
// The cache is per API server and per its CA, so a cluster rebuilt at
// the same address does not read the old one's; it holds what the API
// lists to anyone authenticated, no credentials.

// discoveryTTL is how long a cluster's cached discovery is used.
const discoveryTTL = 10 * time.Minute

// DefaultDiscoveryCache is the folder of discovery caches: the user's
// cache folder (os.UserCacheDir) under mcplan/discovery; "" when there
// is none (then discovery is kept in memory only).
func DefaultDiscoveryCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "mcplan", "discovery")
}

// unsafeInPath is what a folder name made of a server's address may not
// hold.
var unsafeInPath = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// discoveryCacheDir is cfg's API's folder under root: its host and port,
// and a digest of the CA it is trusted by.
func discoveryCacheDir(root string, cfg *rest.Config) string {
	sum := sha256.Sum256(cfg.CAData)
	host := unsafeInPath.ReplaceAllString(cfg.Host, "_")
	return filepath.Join(root, host+"-"+hex.EncodeToString(sum[:6]))
}

// discoveryClient is cfg's discovery, cached under root (in memory only
// when root is "").
func discoveryClient(cfg *rest.Config, root string) (discovery.CachedDiscoveryInterface, error) {
	if root == "" {
		disc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			return nil, err
		}
		return memory.NewMemCacheClient(disc), nil
	}
	return disk.NewCachedDiscoveryClientForConfig(cfg, discoveryCacheDir(root, cfg), "", discoveryTTL)
}
