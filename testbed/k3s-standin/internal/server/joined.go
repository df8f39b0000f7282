package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"

	"k8s.io/client-go/kubernetes"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/agent"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/join"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/kubecfg"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
)

// runJoined runs a server that joins an existing server (server: + token).
//
// LIMITATION: the stand-in does not form an etcd cluster. A joined server
// reuses the first server's etcd and control plane: it registers its own Node
// (with the control-plane/master role labels), writes k3s.yaml with the
// cluster's admin credential, and forwards its :6443 at the TCP level to the
// first server, so clients of either address reach the same API.
func (s *Server) runJoined(ctx context.Context) error {
	cfg := s.cfg
	jc, err := join.New(ctx, cfg.Server, cfg.Token, s.logf)
	if err != nil {
		return err
	}
	boot, err := jc.ServerBootstrap(ctx)
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := jc.NodeCert(ctx, cfg.NodeName)
	if err != nil {
		return err
	}
	tok := jc.Token
	tok.CAHash = pki.Hash(jc.CAPEM)
	for _, name := range []string{"token", "node-token"} {
		if err := pki.WriteFile(filepath.Join(cfg.DataDir, "server", name), []byte(tok.String()+"\n"), 0o600); err != nil {
			return err
		}
	}
	if err := pki.WriteFile(filepath.Join(cfg.DataDir, "server", "tls", "server-ca.crt"), jc.CAPEM, 0o644); err != nil {
		return err
	}
	upstream := kubecfg.Creds{Server: jc.URL.String(), CAPEM: jc.CAPEM}
	adminCreds := upstream
	adminCreds.CertPEM, adminCreds.KeyPEM = []byte(boot.AdminCertPEM), []byte(boot.AdminKeyPEM)
	admin, err := kubernetes.NewForConfig(adminCreds.REST())
	if err != nil {
		return fmt.Errorf("server: joined admin client: %w", err)
	}
	nodeCreds := upstream
	nodeCreds.CertPEM, nodeCreds.KeyPEM = certPEM, keyPEM
	nodeClient, err := kubernetes.NewForConfig(nodeCreds.REST())
	if err != nil {
		return fmt.Errorf("server: joined node client: %w", err)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(cfg.HTTPSListenPort)))
	if err != nil {
		return fmt.Errorf("server: listen :%d: %w", cfg.HTTPSListenPort, err)
	}
	s.certs = &certs{serverCA: &pki.CA{CertPEM: jc.CAPEM}}
	if err := s.writeAdminKubeconfig([]byte(boot.AdminCertPEM), []byte(boot.AdminKeyPEM)); err != nil {
		ln.Close()
		return err
	}
	s.logf("joined %s; forwarding :%d to it", jc.URL, cfg.HTTPSListenPort)
	node, err := agent.JoinedNode(ctx, jc, cfg, nodeClient, s.logf)
	if err != nil {
		ln.Close()
		return fmt.Errorf("server: %w", err)
	}
	node.Labels = nodeLabels(cfg)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil {
				cancel(fmt.Errorf("server: %s: %w", name, err))
			}
		})
	}
	run("forwarder", func(ctx context.Context) error { return forward(ctx, ln, jc.URL.Host) })
	run("simulated kubelet", node.Run)
	run("node labeler", func(ctx context.Context) error { return labelServerNode(ctx, admin, cfg) })
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// forward copies TCP connections from ln to target until ctx ends (TLS is
// end to end, so client certificates keep working).
func forward(ctx context.Context, ln net.Listener, target string) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var d net.Dialer
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		go func() {
			defer c.Close()
			u, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			cp := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go cp(u, c)
			go cp(c, u)
			select {
			case <-done:
				<-done
			case <-ctx.Done():
			}
		}()
	}
}
