package simulate

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestRouteFor(t *testing.T) {
	route := func(port int64, host string, target int64, sniHosts ...any) map[string]any {
		return map[string]any{
			"match": []any{map[string]any{"port": port, "sniHosts": sniHosts}},
			"route": []any{map[string]any{"destination": map[string]any{"host": host, "port": map[string]any{"number": target}}}},
		}
	}
	vs := func(gateways []any, routes ...any) unstructured.Unstructured {
		spec := map[string]any{"hosts": []any{"*"}, "tls": routes}
		if gateways != nil {
			spec["gateways"] = gateways
		}
		return unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	}
	gw := []any{"istiod-gateway"}
	vss := []unstructured.Unstructured{
		// As mcplan's istio/expose: everything to the plan's revision.
		vs(gw, route(15012, "istiod-r2.istio-system.svc.cluster.local", 15012, "*"), route(15017, "istiod-r2.istio-system.svc.cluster.local", 443, "*")),
		// A revision's own route, by the name its clients ask for.
		vs(gw, route(15012, "istiod.istio-system.svc.cluster.local", 15012, "istiod.istio-system.svc"), route(15017, "istiod.istio-system.svc.cluster.local", 443, "istiod.istio-system.svc")),
		// Not bound to a gateway: a mesh-internal route, ignored.
		vs(nil, route(15012, "elsewhere.example.svc.cluster.local", 15012, "istiod-r3.istio-system.svc")),
	}
	for _, tt := range []struct {
		name       string
		port       int32
		serverName string
		want       destination
		ok         bool
	}{
		{"exact wins over the wildcard", 15012, "istiod.istio-system.svc", destination{"istiod.istio-system.svc.cluster.local", 15012}, true},
		{"webhook port maps to 443", 15017, "istiod.istio-system.svc", destination{"istiod.istio-system.svc.cluster.local", 443}, true},
		{"other names take the wildcard", 15012, "istiod-r2.istio-system.svc", destination{"istiod-r2.istio-system.svc.cluster.local", 15012}, true},
		{"no SNI takes the wildcard", 15017, "", destination{"istiod-r2.istio-system.svc.cluster.local", 443}, true},
		{"unbound VirtualService ignored", 15012, "istiod-r3.istio-system.svc", destination{"istiod-r2.istio-system.svc.cluster.local", 15012}, true},
		{"no route at the port", 15443, "istiod.istio-system.svc", destination{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := routeFor(vss, tt.port, tt.serverName)
			if got != tt.want || ok != tt.ok {
				t.Errorf("routeFor(%d, %q) = %v, %v; want %v, %v", tt.port, tt.serverName, got, ok, tt.want, tt.ok)
			}
		})
	}
	if _, ok := routeFor(vss[2:], 15012, "istiod-r3.istio-system.svc"); ok {
		t.Error("a VirtualService bound to no gateway routed the gateway's connection")
	}
}

// TestPeekServerName reads a real TLS client's ClientHello and hands back
// every byte read, so that the upstream sees the whole handshake.
func TestPeekServerName(t *testing.T) {
	for _, name := range []string{"istiod-r2.istio-system.svc", ""} {
		client, server := net.Pipe()
		go func() {
			_ = tls.Client(client, &tls.Config{ServerName: name, InsecureSkipVerify: true}).HandshakeContext(context.Background())
		}()
		got, hello, err := peekServerName(server)
		if err != nil {
			t.Fatal(err)
		}
		if got != name {
			t.Errorf("server name %q, want %q", got, name)
		}
		// A TLS record of type handshake (22) holding a ClientHello (1).
		if len(hello) < 6 || hello[0] != 22 || hello[5] != 1 {
			t.Errorf("the bytes read are not a ClientHello record: % x", hello[:min(len(hello), 8)])
		}
		client.Close()
		server.Close()
	}
}
