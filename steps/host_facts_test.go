package steps

import (
	"strings"
	"testing"

	"mcplan.io/mcplan/plans"
)

func TestHostFactsSupport(t *testing.T) {
	debian := "kernel=Linux\narch=x86_64\nhostname=vm1\nos=debian\nos_version=12\ninit=systemd\naddresses=192.168.60.113 fe80::1 \nk3s=v1.31.4+k3s1\n"
	tests := []struct {
		name, out, privateIP, want string
	}{
		{"debian vm", debian, "192.168.60.113", ""},
		{"privateIP not on host", debian, "10.0.0.5", "privateIP 10.0.0.5 is not an address of the host (it has 192.168.60.113, fe80::1)"},
		{"no systemd", strings.Replace(debian, "init=systemd", "init=sshd", 1), "192.168.60.113", `init system "sshd"`},
		{"mac", strings.Replace(debian, "kernel=Linux", "kernel=Darwin", 1), "192.168.60.113", `kernel "Darwin": k3s needs Linux`},
		{"arch", strings.Replace(debian, "arch=x86_64", "arch=mips", 1), "192.168.60.113", `architecture "mips"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parseFacts(tt.out)
			if f.K3sVersion != "v1.31.4+k3s1" && tt.name == "debian vm" {
				t.Errorf("k3s version %q", f.K3sVersion)
			}
			got := (&HostFacts{host: plans.Host{Name: "vm1", PrivateIP: tt.privateIP}}).unsupported(f)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("unsupported = %q, want %q", got, tt.want)
			}
		})
	}
}
