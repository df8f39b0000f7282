// Package server runs "k3s server": embedded etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler in one process, the :6443
// supervisor, and the simulated kubelet of the server's own node.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/version"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/config"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/kubecfg"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/native"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/sdnotify"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/simulate"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/token"
)

// Server is one running k3s server.
type Server struct {
	cfg          *config.Config
	logger       *log.Logger
	certs        *certs
	token        token.Token
	agentToken   token.Token // zero without agent-token
	adminCertPEM []byte
	adminKeyPEM  []byte
	// etcdCluster: the local etcd member serves peers on the node IP
	// (cluster-init or joined); etcdClient talks to it on 127.0.0.1.
	etcdCluster bool
	etcdClient  *clientv3.Client
	etcdID      uint64
}

func (s *Server) logf(format string, args ...any) { s.logger.Printf(format, args...) }

func (s *Server) apiPort() int { return s.cfg.HTTPSListenPort + 1 }

func (s *Server) credPath(name string) string {
	return filepath.Join(s.cfg.DataDir, "server", "cred", name)
}

// Run runs the server until ctx ends or a component fails. A server with
// server: (and no etcd data yet) joins that server's cluster first: it
// gets the cluster's CAs, adds itself as an etcd learner and is promoted;
// then every server runs the same: its own etcd member, kube-apiserver
// (against the local member), controller-manager and scheduler (leader
// elected), supervisor and node.
func Run(ctx context.Context, cfg *config.Config, logw io.Writer) error {
	s := &Server{cfg: cfg, logger: log.New(logw, "k3s-standin server: ", log.LstdFlags)}
	joining := cfg.Server != "" && !hasEtcdData(cfg.DataDir) && !cfg.ClusterReset
	var joinEndpoints []string
	if joining {
		var err error
		if joinEndpoints, err = s.bootstrapFrom(ctx); err != nil {
			return err
		}
	}
	var err error
	if s.certs, err = loadCerts(cfg); err != nil {
		return err
	}
	if err := s.writeToken(); err != nil {
		return err
	}
	if err := s.writeCreds(); err != nil {
		return err
	}
	if cfg.ClusterReset {
		return s.clusterReset(ctx)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var plan etcdPlan
	switch {
	case hasEtcdData(cfg.DataDir):
		// A restart: the member rejoins its cluster from its own data.
		plan = etcdPlan{name: readMemberName(cfg.DataDir), cluster: cfg.ClusterInit || cfg.Server != "" || wasClusterMember(cfg.DataDir),
			state: embed.ClusterStateFlagExisting}
		if plan.name == "" {
			plan.name = legacyMemberName
		}
	case joining:
		if plan, err = s.joinEtcd(ctx, joinEndpoints); err != nil {
			return err
		}
	default:
		name, err := newMemberName(cfg.NodeName)
		if err != nil {
			return err
		}
		plan = etcdPlan{name: name, cluster: cfg.ClusterInit, state: embed.ClusterStateFlagNew}
	}
	s.etcdCluster = plan.cluster
	etcd, err := startEtcd(cfg, plan, s.certs)
	if err != nil {
		return err
	}
	defer etcd.Close()
	go func() {
		select {
		case err := <-etcd.Err():
			cancel(fmt.Errorf("server: etcd: %w", err))
		case <-etcd.Server.StopNotify():
			cancel(errors.New("server: etcd member stopped (removed from the cluster?)"))
		case <-ctx.Done():
		}
	}()
	if plan.learner {
		if err := s.ensureVoter(ctx, etcd, true, joinEndpoints); err != nil {
			return err
		}
	}
	if err := waitEtcdReady(ctx, etcd, s.logf); err != nil {
		return err
	}
	if err := s.ensureVoter(ctx, etcd, false, nil); err != nil {
		return err
	}
	s.etcdID = uint64(etcd.Server.MemberID())
	if s.etcdClient, err = etcdClient(s.certs, []string{localEtcdEndpoint(cfg)}); err != nil {
		return err
	}
	defer s.etcdClient.Close()
	if plan.cluster {
		s.reconcilePeerURL(ctx, etcd, true)
	}
	u := memberURLs(cfg, plan.cluster)
	s.logf("etcd member %s (%x) ready: clients %s, peers %s", plan.name, s.etcdID, urlList(u.listenClient), urlList(u.listenPeer))

	done := make(chan struct{})
	components := 0
	start := func(name string, run func(context.Context) error) {
		components++
		go func() {
			defer func() { done <- struct{}{} }()
			err := run(ctx)
			if err == nil && ctx.Err() == nil {
				err = fmt.Errorf("server: %s exited", name)
			}
			if err != nil {
				cancel(err)
			}
		}()
	}
	sv, err := s.newSupervisor()
	if err != nil {
		return err
	}
	start("kube-apiserver", s.runAPIServer)
	start("supervisor", sv.serve)

	adminREST := s.directCreds(s.adminCertPEM, s.adminKeyPEM).REST()
	admin, err := kubernetes.NewForConfig(adminREST)
	if err != nil {
		return fmt.Errorf("server: admin client: %w", err)
	}
	adminDynamic, err := dynamic.NewForConfig(adminREST)
	if err != nil {
		return fmt.Errorf("server: admin dynamic client: %w", err)
	}
	if err := waitReady(ctx, admin); err != nil {
		cancel(err)
	} else {
		s.logf("kube-apiserver ready on 127.0.0.1:%d", s.apiPort())
		start("kube-controller-manager", func(ctx context.Context) error {
			return s.runElected(ctx, admin, "kube-controller-manager", s.runControllerManager)
		})
		start("kube-scheduler", func(ctx context.Context) error {
			return s.runElected(ctx, admin, "kube-scheduler", s.runScheduler)
		})
		if err := s.writeAdminKubeconfig(s.adminCertPEM, s.adminKeyPEM); err != nil {
			cancel(err)
		}
		nodeClient, err := s.nodeClient()
		if err != nil {
			cancel(err)
		} else {
			node := &simulate.Node{Client: nodeClient, NodesClient: admin, Routes: adminDynamic, Name: cfg.NodeName, IP: cfg.NodeIP, KubeletVersion: version.Get().GitVersion, Labels: nodeLabels(cfg), Logf: s.logf,
				// The supervisor's certificate holds the node IP.
				Native: simulate.NewNative(cfg.NativeImages, cfg.DataDir, cfg.PodLogDir, cfg.CNIBinDir, cfg.CNIBridge, native.APIEndpoint{Host: cfg.NodeIP, Port: cfg.HTTPSListenPort})}
			if node.KubeletAPI, err = s.kubeletAPI(); err != nil {
				cancel(err)
			}
			start("simulated kubelet", node.Run)
			start("node labeler", func(ctx context.Context) error { return s.labelServerNode(ctx, admin, plan.name) })
			lb := &simulate.ServiceLB{Client: admin, Logf: s.logf}
			start("simulated servicelb", lb.Run)
			if s.etcdCluster {
				start("etcd member controller", func(ctx context.Context) error { return s.runMemberController(ctx, admin) })
			}
		}
		if ctx.Err() == nil {
			// As k3s: once the apiserver and etcd are ready.
			s.logf("k3s is up and running")
			sdnotify.Ready(s.logf)
		}
	}
	<-ctx.Done()
	// Bounded: without etcd quorum the apiserver's shutdown hooks (its
	// identity lease) wait for etcd forever.
	deadline := time.After(shutdownTimeout)
	for left := components; left > 0; left-- {
		select {
		case <-done:
		case <-deadline:
			s.logf("shutdown: %d of %d components still stopping after %s (no etcd quorum?); exiting", left, components, shutdownTimeout)
			left = 1
		}
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func urlList(us []url.URL) string {
	var out []string
	for _, u := range us {
		out = append(out, u.String())
	}
	return strings.Join(out, ",")
}

// shutdownTimeout bounds how long the server waits for its components
// when it stops (native pods get at most 10 s of grace).
const shutdownTimeout = 30 * time.Second

// waitReady polls the apiserver's /readyz.
func waitReady(ctx context.Context, c kubernetes.Interface) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = c.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("server: wait for kube-apiserver /readyz (last: %v): %w", last, err)
	}
	return nil
}

// writeToken keeps k3s's token files: <data-dir>/server/token and
// node-token, both "K10<sha256 of the server CA PEM>::server:<secret>".
func (s *Server) writeToken() error {
	path := filepath.Join(s.cfg.DataDir, "server", "token")
	var secret string
	if s.cfg.Token != "" {
		t, err := token.Parse(s.cfg.Token)
		if err != nil {
			return fmt.Errorf("server: configured token: %w", err)
		}
		secret = t.Secret
	} else if b, err := os.ReadFile(path); err == nil {
		t, err := token.Parse(string(b))
		if err != nil {
			return fmt.Errorf("server: %s: %w", path, err)
		}
		secret = t.Secret
	} else {
		if secret, err = token.NewSecret(); err != nil {
			return err
		}
	}
	s.token = token.Token{CAHash: pki.Hash(s.certs.serverCA.CertPEM), Username: "server", Secret: secret}
	line := []byte(s.token.String() + "\n")
	for _, name := range []string{"token", "node-token"} {
		if err := pki.WriteFile(filepath.Join(s.cfg.DataDir, "server", name), line, 0o600); err != nil {
			return err
		}
	}
	// As k3s: with agent-token, agents join with it (user "node") and
	// server/agent-token holds it; without, they use the server token.
	agentPath := filepath.Join(s.cfg.DataDir, "server", "agent-token")
	if s.cfg.AgentToken == "" {
		s.agentToken = token.Token{}
		if err := os.Remove(agentPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("server: %w", err)
		}
		return nil
	}
	t, err := token.Parse(s.cfg.AgentToken)
	if err != nil {
		return fmt.Errorf("server: configured agent-token: %w", err)
	}
	s.agentToken = token.Token{CAHash: s.token.CAHash, Username: "node", Secret: t.Secret}
	return pki.WriteFile(agentPath, []byte(s.agentToken.String()+"\n"), 0o600)
}

// writeCreds issues the admin and component client certificates and the
// component kubeconfigs (straight to the apiserver on 127.0.0.1).
func (s *Server) writeCreds() error {
	var err error
	s.adminCertPEM, err = os.ReadFile(s.certs.path("client-admin.crt"))
	if err != nil {
		return fmt.Errorf("server: read admin cert: %w", err)
	}
	s.adminKeyPEM, err = os.ReadFile(s.certs.path("client-admin.key"))
	if err != nil {
		return fmt.Errorf("server: read admin key: %w", err)
	}
	for _, c := range []struct{ file, cert string }{
		{"admin.kubeconfig", "client-admin"},
		{"controller.kubeconfig", "client-controller"},
		{"scheduler.kubeconfig", "client-scheduler"},
	} {
		certPEM, err := os.ReadFile(s.certs.path(c.cert + ".crt"))
		if err != nil {
			return fmt.Errorf("server: read %s: %w", c.cert, err)
		}
		keyPEM, err := os.ReadFile(s.certs.path(c.cert + ".key"))
		if err != nil {
			return fmt.Errorf("server: read %s key: %w", c.cert, err)
		}
		if err := s.directCreds(certPEM, keyPEM).Write(s.credPath(c.file), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) directCreds(certPEM, keyPEM []byte) kubecfg.Creds {
	return kubecfg.Creds{Server: "https://127.0.0.1:" + strconv.Itoa(s.apiPort()), CAPEM: s.certs.serverCA.CertPEM, CertPEM: certPEM, KeyPEM: keyPEM}
}

// writeAdminKubeconfig writes k3s.yaml as k3s does: server
// https://127.0.0.1:<https-listen-port>, names "default", embedded admin
// client certificate followed by the client CA, mode 0600 unless
// write-kubeconfig-mode.
func (s *Server) writeAdminKubeconfig(certPEM, keyPEM []byte) error {
	mode := os.FileMode(0o600)
	if s.cfg.WriteKubeconfigMode != "" {
		m, err := strconv.ParseUint(s.cfg.WriteKubeconfigMode, 8, 32)
		if err != nil {
			return fmt.Errorf("server: write-kubeconfig-mode %q: %w", s.cfg.WriteKubeconfigMode, err)
		}
		mode = os.FileMode(m)
	}
	// k3s's client-admin.crt carries the client CA after the certificate.
	chain := append(append([]byte{}, certPEM...), s.certs.clientCA.CertPEM...)
	c := kubecfg.Creds{Server: "https://127.0.0.1:" + strconv.Itoa(s.cfg.HTTPSListenPort), CAPEM: s.caPEM(), CertPEM: chain, KeyPEM: keyPEM}
	if err := c.Write(s.cfg.WriteKubeconfig, mode); err != nil {
		return err
	}
	s.logf("wrote kubeconfig %s", s.cfg.WriteKubeconfig)
	return nil
}

func (s *Server) caPEM() []byte { return s.certs.serverCA.CertPEM }

// nodeClient issues this server's own node credential (as an agent would
// get from the supervisor) and returns a client acting as that node.
func (s *Server) nodeClient() (kubernetes.Interface, error) {
	dir := filepath.Join(s.cfg.DataDir, "agent")
	certPEM, keyPEM, err := s.certs.clientCA.IssueFiles(dir, "client-kubelet", nodeLeaf(s.cfg.NodeName))
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(s.directCreds(certPEM, keyPEM).REST())
	if err != nil {
		return nil, fmt.Errorf("server: node client: %w", err)
	}
	return c, nil
}

// kubeletAPI issues this server's kubelet serving certificate under the
// server CA (as an agent gets it from the supervisor) and names the client
// CA that the apiserver's kubelet client certificate is signed by.
func (s *Server) kubeletAPI() (*simulate.KubeletAPI, error) {
	dir := filepath.Join(s.cfg.DataDir, "agent")
	certPEM, keyPEM, err := s.certs.serverCA.IssueFiles(dir, "serving-kubelet", kubeletServingLeaf(s.cfg.NodeName, []net.IP{net.ParseIP(s.cfg.NodeIP)}))
	if err != nil {
		return nil, err
	}
	if err := pki.WriteFile(filepath.Join(dir, "client-ca.crt"), s.certs.clientCA.CertPEM, 0o644); err != nil {
		return nil, err
	}
	return &simulate.KubeletAPI{Port: s.cfg.KubeletPort, ServingCertPEM: certPEM, ServingKeyPEM: keyPEM, ClientCAPEM: s.certs.clientCA.CertPEM}, nil
}

func nodeLabels(cfg *config.Config) map[string]string {
	m := map[string]string{}
	for _, l := range cfg.NodeLabels {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

// serverRoleLabels are the labels k3s puts on server nodes. Kubelets may not
// set node-role.kubernetes.io/* themselves (NodeRestriction), so the server
// sets them with its own credential, as k3s does.
func serverRoleLabels(etcdMember bool) map[string]string {
	m := map[string]string{
		"node-role.kubernetes.io/control-plane": "true",
		"node-role.kubernetes.io/master":        "true",
	}
	if etcdMember {
		m["node-role.kubernetes.io/etcd"] = "true"
	}
	return m
}

// labelServerNode waits for the node to register, then adds the role
// labels; on an etcd cluster member also k3s's etcd annotations (member
// name and address) and the finalizer through which the servers remove
// the member when the Node is deleted.
func (s *Server) labelServerNode(ctx context.Context, admin kubernetes.Interface, memberName string) error {
	cfg := s.cfg
	meta := map[string]any{"labels": serverRoleLabels(s.etcdCluster)}
	if s.etcdCluster {
		meta["annotations"] = map[string]string{annoEtcdNodeName: memberName, annoEtcdNodeAddress: cfg.NodeIP}
		meta["finalizers"] = []string{etcdFinalizer}
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("server: node patch: %w", err)
	}
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		// Strategic merge: the finalizer is added to the node's list.
		_, err := admin.CoreV1().Nodes().Patch(ctx, cfg.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("server: label node %s: %w", cfg.NodeName, err)
	}
	<-ctx.Done()
	return nil
}
