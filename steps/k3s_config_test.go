package steps

import (
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

func TestK3sConfigRendersArgsAsKeys(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"server", []string{"--disable=traefik", "--disable", "servicelb", "--secrets-encryption", "--kube-apiserver-arg=audit-log-maxage=30"}, ""},
		{"bare-word", []string{"traefik"}, `k3s argument "traefik": expected a flag`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newK3sConfig()
			c.set("node-name", "vm1")
			c.set("node-ip", "192.168.60.113")
			c.setList("tls-san", []string{"192.168.60.113"})
			err := c.addArgs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.render()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "k3s-config-"+tt.name+".yaml"), string(out))
		})
	}
}
