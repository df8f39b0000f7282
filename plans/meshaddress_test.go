package plans

import "testing"

func TestCheckMeshAddress(t *testing.T) {
	for addr, ok := range map[string]bool{
		"192.168.60.113": true, "10.0.0.1": true, "api.example.com": true, "127.0.0.2": true, "2001:db8::1": true,
		"": false, "127.0.0.1": false, "localhost": false, "LOCALHOST": false, "::1": false, "[::1]": false,
		"0.0.0.0": false, "::": false, "::ffff:127.0.0.1": false, "127.0.0.1:6443": false,
	} {
		if err := CheckMeshAddress(addr); (err == nil) != ok {
			t.Errorf("CheckMeshAddress(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}
