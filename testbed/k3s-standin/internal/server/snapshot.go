package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	clientsnapshot "go.etcd.io/etcd/client/v3/snapshot"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/config"
)

// snapshotDir is where snapshots go: --etcd-snapshot-dir, else k3s's
// default <data-dir>/server/db/snapshots.
func snapshotDir(cfg *config.Config) string {
	if cfg.EtcdSnapshotDir != "" {
		return cfg.EtcdSnapshotDir
	}
	return filepath.Join(dbDir(cfg.DataDir), "snapshots")
}

// snapshotName is k3s's on-demand snapshot file name:
// <name>-<node name>-<unix time>.
func snapshotName(base, nodeName string, t time.Time) string {
	return base + "-" + nodeName + "-" + strconv.FormatInt(t.Unix(), 10)
}

// EtcdSnapshot runs "k3s etcd-snapshot <sub>": save (through the etcd
// Snapshot API of the local member, as k3s does) and ls/list.
func EtcdSnapshot(ctx context.Context, cfg *config.Config, sub string, stdout, logw io.Writer) error {
	logger := log.New(logw, "k3s-standin etcd-snapshot: ", log.LstdFlags)
	switch sub {
	case "save":
		path, err := saveSnapshot(ctx, cfg, time.Now())
		if err != nil {
			return err
		}
		logger.Printf("Snapshot %s saved.", filepath.Base(path))
		return nil
	case "ls", "list":
		return listSnapshots(snapshotDir(cfg), stdout)
	default:
		return fmt.Errorf("etcd-snapshot: unknown subcommand %q (the stand-in knows save, ls, list)", sub)
	}
}

func saveSnapshot(ctx context.Context, cfg *config.Config, now time.Time) (string, error) {
	tlsDir := filepath.Join(cfg.DataDir, "server", "tls", "etcd")
	tlsCfg, err := (transport.TLSInfo{
		CertFile:      filepath.Join(tlsDir, "client.crt"),
		KeyFile:       filepath.Join(tlsDir, "client.key"),
		TrustedCAFile: filepath.Join(tlsDir, "server-ca.crt"),
	}).ClientConfig()
	if err != nil {
		return "", fmt.Errorf("etcd-snapshot: etcd client TLS (is %s a server's data dir?): %w", cfg.DataDir, err)
	}
	dir := snapshotDir(cfg)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("etcd-snapshot: %w", err)
	}
	path := filepath.Join(dir, snapshotName(cfg.EtcdSnapshotName, cfg.NodeName, now))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	_, err = clientsnapshot.SaveWithVersion(ctx, zap.NewNop(), clientv3.Config{
		Endpoints:   []string{localEtcdEndpoint(cfg)},
		TLS:         tlsCfg,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	}, path)
	if err != nil {
		return "", fmt.Errorf("etcd-snapshot: save from %s: %w", localEtcdEndpoint(cfg), err)
	}
	return path, nil
}

// listSnapshots prints k3s's table: Name Location Size Created.
func listSnapshots(dir string, w io.Writer) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("etcd-snapshot: %w", err)
	}
	type row struct {
		name, location string
		size           int64
		created        time.Time
	}
	var rows []row
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		abs, _ := filepath.Abs(filepath.Join(dir, e.Name()))
		rows = append(rows, row{e.Name(), "file://" + abs, fi.Size(), fi.ModTime().UTC()})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprint(tw, "Name\tLocation\tSize\tCreated\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.name, r.location, r.size, r.created.Format(time.RFC3339))
	}
	return tw.Flush()
}

// Messages k3s logs when a cluster reset is done.
const (
	msgResetDone   = "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes."
	msgRestoreDone = "Etcd snapshot restored and cluster membership reset, restart without --cluster-reset flag now. Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes."
)

// clusterReset is "k3s server --cluster-reset": with a restore path, the
// etcd data dir is moved aside (db/etcd-old-<unix time>) and the snapshot
// restored into a fresh single-member data dir (etcdutl's restore, with the
// revision bumped and marked compacted so that watchers see no going back);
// without, the member's own data is kept and the member started as a new
// single-member cluster (ForceNewCluster). Either way the member is
// started until it serves, then the process exits, as k3s does.
func (s *Server) clusterReset(ctx context.Context) error {
	cfg := s.cfg
	name := readMemberName(cfg.DataDir)
	if name == "" {
		if hasEtcdData(cfg.DataDir) {
			name = legacyMemberName
		} else {
			var err error
			if name, err = newMemberName(cfg.NodeName); err != nil {
				return err
			}
		}
	}
	u := memberURLs(cfg, true)
	plan := etcdPlan{name: name, cluster: true, forceNew: true}
	msg := msgResetDone
	if restore := cfg.ClusterResetRestorePath; restore != "" {
		if _, err := os.Stat(restore); err != nil {
			return fmt.Errorf("server: cluster-reset-restore-path: %w", err)
		}
		dataDir := etcdDataDir(cfg.DataDir)
		if _, err := os.Stat(dataDir); err == nil {
			old := filepath.Join(dbDir(cfg.DataDir), "etcd-old-"+strconv.FormatInt(time.Now().Unix(), 10))
			if err := os.Rename(dataDir, old); err != nil {
				return fmt.Errorf("server: move the etcd data aside: %w", err)
			}
			s.logf("moved the etcd data dir to %s", old)
		}
		s.logf("restoring etcd snapshot %s as member %s", restore, name)
		err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
			SnapshotPath:        restore,
			Name:                name,
			OutputDataDir:       dataDir,
			PeerURLs:            []string{u.peer.String()},
			InitialCluster:      name + "=" + u.peer.String(),
			InitialClusterToken: "etcd-cluster",
			RevisionBump:        1_000_000,
			MarkCompacted:       true,
		})
		if err != nil {
			return fmt.Errorf("server: restore etcd snapshot %s: %w", restore, err)
		}
		plan.forceNew = false // already a fresh single-member cluster
		msg = msgRestoreDone
	} else if !hasEtcdData(cfg.DataDir) {
		return errors.New("server: cluster-reset: no etcd data in " + etcdDataDir(cfg.DataDir))
	}
	e, err := startEtcd(cfg, plan, s.certs)
	if err != nil {
		return err
	}
	defer e.Close()
	if err := waitEtcdReady(ctx, e, s.logf); err != nil {
		return err
	}
	s.reconcilePeerURL(ctx, e, true)
	s.logf("%s", msg)
	return nil
}
