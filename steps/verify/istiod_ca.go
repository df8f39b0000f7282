package verify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/pki"
	"mcplan.io/mcplan/steps/statedir"
	"mcplan.io/mcplan/steps/xds"
)

// istiodServerName is a name every istiod's certificate holds (Istio's
// getDNSNames always adds istiod.<namespace>.svc).
const istiodServerName = istiorender.IstiodName + "." + istiorender.Namespace + ".svc"

// IstiodCA checks, for every primary, that its istiod signs with the
// cluster's intermediate as mcplan last wrote it: the certificate istiod
// serves on its CA port (reached as dial reaches it) is verified against
// the mesh root for istiod's name, and the chain it sends must hold that
// intermediate. After `apply --replace cluster/<c>/ca/intermediate` this
// is what shows that istiod took the new one (it reloads plugged-in
// certificates without a restart).
//
// The primaries are asked at once; the findings are in their order.
func (s *Verifier) IstiodCA(ctx context.Context, stateDir string, dial xds.DialIstiod) []Finding {
	checks := make([]func() []Finding, len(s.topo.Readers))
	for i, p := range s.topo.Readers {
		checks[i] = func() []Finding { return []Finding{s.istiodCA(ctx, stateDir, dial, p)} }
	}
	return allAtOnce(checks)
}

func (s *Verifier) istiodCA(ctx context.Context, stateDir string, dial xds.DialIstiod, cluster string) Finding {
	f := Finding{Check: CheckIstiodCA, Cluster: cluster, Object: fmt.Sprintf("istiod %s port %d", istiodServerName, xds.IstiodCAPort)}
	root, err := s.meshRoot(stateDir)
	if err != nil {
		f.Detail = err.Error()
		return f
	}
	dir := statedir.CACluster(stateDir, s.mesh.Name, cluster)
	interPEM, _, err := statedir.ReadFile(dir, statedir.CACertFile)
	if err != nil {
		f.Detail = fmt.Sprintf("intermediate of %s: %v (the cluster's ca/intermediate step makes it)", cluster, err)
		return f
	}
	want, err := pki.DecodeCert(interPEM)
	if err != nil {
		f.Detail = fmt.Sprintf("intermediate of %s: %v", cluster, err)
		return f
	}
	// istiod reloads cacerts on its own (within seconds, once the
	// Secret's volume is updated): ask again while it serves another
	// intermediate, as the xDS check asks again.
	deadline := time.Now().Add(s.xdsTimeout())
	retry := xdsRetries()
	for {
		chain, err := s.servedChain(ctx, dial, cluster, root)
		switch {
		case err != nil:
			f.Detail = err.Error()
			return f
		case chain == nil:
			f.OK = true
			f.Detail = "not checked: istiod is reached at its xDS port only"
			return f
		}
		for _, c := range chain[1:] {
			if bytes.Equal(c.Raw, want.Raw) {
				f.OK = true
				f.Detail = fmt.Sprintf("istiod's certificate is signed through intermediate %q (sha256 %s), the one in %s",
					want.Subject.CommonName, digest.Short(pki.Fingerprint(want)), dir)
				return f
			}
		}
		pause := retry.Step()
		if ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			return s.otherIntermediate(f, chain, want)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// servedChain is the chain istiod serves on its CA port, the TLS
// verified against the mesh root; nil when only its xDS port is
// reachable.
func (s *Verifier) servedChain(ctx context.Context, dial xds.DialIstiod, cluster string, root []byte) ([]*x509.Certificate, error) {
	ist, err := dial(ctx, cluster)
	if err != nil {
		return nil, err
	}
	defer ist.Close()
	if ist.DialPort == nil {
		return nil, nil
	}
	conn, err := ist.DialPort(ctx, xds.IstiodCAPort)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: istiodServerName, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS with istiod, verified against the mesh root: %w", err)
	}
	defer tc.Close()
	return tc.ConnectionState().PeerCertificates, nil
}

// otherIntermediate is the finding of an istiod that signs through
// another intermediate than want.
func (s *Verifier) otherIntermediate(f Finding, chain []*x509.Certificate, want *x509.Certificate) Finding {
	var got []string
	for _, c := range chain[1:] {
		got = append(got, fmt.Sprintf("%q (sha256 %s)", c.Subject.CommonName, digest.Short(pki.Fingerprint(c))))
	}
	f.Detail = fmt.Sprintf("istiod's chain holds %v, not the intermediate %q (sha256 %s) mcplan wrote to cacerts: istiod has not taken the new intermediate yet "+
		"(it reloads cacerts within a minute; else restart it: kubectl -n %s rollout restart deployment/%s)",
		got, want.Subject.CommonName, digest.Short(pki.Fingerprint(want)), istiorender.Namespace, istiorender.IstiodDeployment(s.mesh.Istio.Revision))
	return f
}
