package internet

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve starts a server on loopback with two releases and returns it with
// a client that sends every name of Names to it and trusts only its CA.
func serve(t *testing.T) (*Server, *http.Client, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "install.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho stand-in\n"), 0o755)
	bins := map[string][]byte{"v1.37.2+k3s1": []byte("binary one"), "v1.37.3+k3s1": []byte("binary two")}
	var rels []Release
	for v, data := range bins {
		p := filepath.Join(dir, v)
		os.WriteFile(p, data, 0o755)
		rels = append(rels, Release{Version: v, Binary: p})
	}
	s, err := Start("127.0.0.1:0", filepath.Join(dir, "internet"), Config{
		InstallScript: script, Releases: rels,
		Channels: map[string]string{"stable": "v1.37.2+k3s1", "latest": "v1.37.3+k3s1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACert) {
		t.Fatal("CA certificate does not parse")
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.Addr)
		},
	}}
	return s, client, bins
}

func get(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Request.URL.String()
}

func TestServesTheInstallProtocol(t *testing.T) {
	s, c, bins := serve(t)
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	cases := []struct {
		url, body, final string
		status           int
	}{
		{url: "https://get.k3s.io", body: "#!/bin/sh\necho stand-in\n", status: 200},
		{url: "https://rancher-mirror.rancher.cn/k3s/k3s-install.sh", body: "#!/bin/sh\necho stand-in\n", status: 200},
		// The channel redirects to the release's tag page; the script
		// takes the version from the final URL.
		{url: "https://update.k3s.io/v1-release/channels/stable", final: "https://github.com/k3s-io/k3s/releases/tag/v1.37.2+k3s1", status: 200},
		{url: "https://update.k3s.io/v1-release/channels/latest", final: "https://github.com/k3s-io/k3s/releases/tag/v1.37.3+k3s1", status: 200},
		{url: "https://update.k3s.io/v1-release/channels/testing", status: 404},
		{url: "https://github.com/k3s-io/k3s/releases/download/v1.37.3+k3s1/k3s", body: "binary two", status: 200,
			final: "https://objects.githubusercontent.com/github-production-release-asset/k3s-io/k3s/v1.37.3+k3s1/k3s"},
		{url: "https://github.com/k3s-io/k3s/releases/download/v1.37.2+k3s1/sha256sum-amd64.txt", body: sum(bins["v1.37.2+k3s1"]) + "  k3s\n", status: 200},
		{url: "https://github.com/k3s-io/k3s/releases/download/v1.30.0+k3s1/k3s", status: 404},
		{url: "https://github.com/k3s-io/k3s/releases/download/v1.37.2+k3s1/k3s-arm64", status: 404},
		{url: "https://rancher-mirror.rancher.cn/k3s/channels/stable", body: "v1.37.2+k3s1", status: 200},
		{url: "https://rancher-mirror.rancher.cn/k3s/v1.37.3-k3s1/k3s", body: "binary two", status: 200},
		{url: "https://rancher-mirror.rancher.cn/k3s/v1.37.3-k3s1/sha256sum-amd64.txt", body: sum(bins["v1.37.3+k3s1"]) + "  k3s\n", status: 200},
		{url: "https://rancher-mirror.rancher.cn/k3s/v1.37.3+k3s1/k3s", status: 404},
	}
	for _, tc := range cases {
		status, body, final := get(t, c, tc.url)
		if status != tc.status || (tc.body != "" && body != tc.body) || (tc.final != "" && final != tc.final) {
			t.Errorf("GET %s: %d %q at %s, want %d %q at %s", tc.url, status, body, final, tc.status, tc.body, tc.final)
		}
	}
	reqs, err := s.Requests()
	if err != nil {
		t.Fatal(err)
	}
	// Every request is logged, redirects as their own lines.
	if len(reqs) < len(cases)+4 {
		t.Errorf("%d requests logged for %d gets and their redirects", len(reqs), len(cases))
	}
	var found bool
	for _, r := range reqs {
		if r.Host == HostAssets && r.Path == assetPrefix+"v1.37.3+k3s1/k3s" && r.Status == 200 && r.Bytes == int64(len("binary two")) && r.SNI == HostAssets {
			found = true
		}
		if r.Remote == "" || r.Time.IsZero() {
			t.Errorf("log line without remote or time: %+v", r)
		}
	}
	if !found {
		t.Errorf("the asset download is not in the log: %+v", reqs)
	}
}

func TestRefusesOtherNamesAndUntrustingClients(t *testing.T) {
	s, c, _ := serve(t)
	// A client asking for a name the certificate does not hold fails TLS.
	if _, err := c.Get("https://example.com/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("GET example.com: %v, want a certificate error", err)
	}
	// A client that does not trust the test CA fails too.
	plain := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr)
	}}}
	if _, err := plain.Get("https://get.k3s.io/"); err == nil {
		t.Error("a client without the test CA got an answer")
	}
	// A Host header other than the TLS name: refused.
	req, _ := http.NewRequest("GET", "https://get.k3s.io/", nil)
	req.Host = "github.com"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host differing from SNI: %d", resp.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "install.sh")
	bin := filepath.Join(dir, "k3s")
	os.WriteFile(script, nil, 0o644)
	os.WriteFile(bin, nil, 0o755)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Releases: []Release{{"v1.37.2+k3s1", bin}}}, "no install script"},
		{Config{InstallScript: script}, "no release"},
		{Config{InstallScript: script, Releases: []Release{{"1.37.2", bin}}}, "not a k3s version"},
		{Config{InstallScript: script, Releases: []Release{{"v1.37.2+k3s1", bin}, {"v1.37.2+k3s1", bin}}}, "twice"},
		{Config{InstallScript: script, Releases: []Release{{"v1.37.2+k3s1", filepath.Join(dir, "none")}}}, "no such file"},
		{Config{InstallScript: script, Releases: []Release{{"v1.37.2+k3s1", bin}}, Channels: map[string]string{"stable": "v1.36.0+k3s1"}}, "not a release"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	ok := Config{InstallScript: script, Releases: []Release{{"v1.37.2+k3s1", bin}}, Channels: map[string]string{"stable": "v1.37.2+k3s1"}}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}
