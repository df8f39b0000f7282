package server

import (
	"net/http/httptest"
	"testing"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/token"
)

// TestAgentTokenJoinsAgentsOnly: with agent-token set, its secret passes
// where a node may authenticate and nowhere else; the server token passes
// both.
func TestAgentTokenJoinsAgentsOnly(t *testing.T) {
	s := &Server{token: token.Token{Username: "server", Secret: "server-secret"}, agentToken: token.Token{Username: "node", Secret: "agent-secret"}}
	sv := &supervisor{s: s}
	for _, tc := range []struct {
		user, pass string
		roles      []string
		want       bool
	}{
		{"node", "agent-secret", []string{"server", "node"}, true},
		{"server", "agent-secret", []string{"server", "node"}, true}, // a bare token's user
		{"server", "agent-secret", []string{"server"}, false},        // server join
		{"server", "server-secret", []string{"server"}, true},
		{"node", "server-secret", []string{"server", "node"}, true},
		{"node", "wrong", []string{"server", "node"}, false},
	} {
		r := httptest.NewRequest("POST", "/v1-k3s/client-kubelet.crt", nil)
		r.SetBasicAuth(tc.user, tc.pass)
		if got := sv.authenticate(r, tc.roles...); got != tc.want {
			t.Errorf("%s:%s for %v: %v, want %v", tc.user, tc.pass, tc.roles, got, tc.want)
		}
	}
	s.agentToken = token.Token{}
	r := httptest.NewRequest("POST", "/", nil)
	r.SetBasicAuth("node", "")
	if sv.authenticate(r, "node") {
		t.Error("an empty password passed with no agent token set")
	}
}
