package xds

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func lbEndpoint(addr string, port uint32, weight uint32, metadata map[string]*structpb.Struct) *endpoint.LbEndpoint {
	return &endpoint.LbEndpoint{
		HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: &core.Address{
			Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: addr, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port}}},
		}}},
		LoadBalancingWeight: wrapperspb.UInt32(weight),
		Metadata:            &core.Metadata{FilterMetadata: metadata},
	}
}

func str(kv ...string) *structpb.Struct {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Fields[kv[i]] = structpb.NewStringValue(kv[i+1])
	}
	return s
}

func TestEndpointsOf(t *testing.T) {
	// As istiod sends them to a sidecar of network1: a local pod with its
	// workload metadata, and network2's gateway standing for two pods.
	cla := &endpoint.ClusterLoadAssignment{
		ClusterName: "outbound|5000||helloworld.sample.svc.cluster.local",
		Endpoints: []*endpoint.LocalityLbEndpoints{
			{
				Locality: &core.Locality{Region: "eu", Zone: "eu-1"},
				LbEndpoints: []*endpoint.LbEndpoint{lbEndpoint("10.42.0.9", 5000, 1, map[string]*structpb.Struct{
					"envoy.transport_socket_match": str("tlsMode", "istio"),
					"istio":                        str("workload", "helloworld-v1;sample;helloworld;v1;cluster1"),
				})},
			},
			{
				LbEndpoints: []*endpoint.LbEndpoint{lbEndpoint("10.213.24.12", 15443, 2, map[string]*structpb.Struct{
					"envoy.transport_socket_match": str("tlsMode", "istio"),
					"istio":                        str("workload", ";;;;cluster2"),
				})},
			},
		},
	}
	got := endpointsOf(cla)
	want := []Endpoint{
		{Address: "10.42.0.9", Port: 5000, Locality: "eu/eu-1", Weight: 1, TLSMode: "istio", Cluster: "cluster1", Workload: "helloworld-v1"},
		{Address: "10.213.24.12", Port: 15443, Weight: 2, TLSMode: "istio", Cluster: "cluster2"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("endpoint %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if hp := got[1].HostPort(); hp != "10.213.24.12:15443" {
		t.Errorf("HostPort() = %q", hp)
	}
}

// TestFetchPortClosed: nothing answers xDS, as when istiod listens
// elsewhere; Fetch says so with ReasonPortClosed, quickly.
func TestFetchPortClosed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ist, err := Direct(map[string]string{"cluster1": addr})(context.Background(), "cluster1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = Fetch(ctx, ist, sleepProxy(), "outbound|5000||helloworld.sample.svc.cluster.local")
	if ReasonOf(err) != ReasonPortClosed || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "cluster cluster1: istiod") {
		t.Errorf("err %v, want %s with connection refused", err, ReasonPortClosed)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	if _, err := Direct(nil)(context.Background(), "cluster9"); ReasonOf(err) != ReasonNoPod {
		t.Errorf("Direct without address: %v", err)
	}
}

// TestFetchNotXDS: something accepts connections but speaks no gRPC.
func TestFetchNotXDS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	ist, _ := Direct(map[string]string{"cluster1": l.Addr().String()})(context.Background(), "cluster1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Fetch(ctx, ist, sleepProxy(), "outbound|5000||helloworld.sample.svc.cluster.local")
	if ReasonOf(err) != ReasonPortClosed {
		t.Errorf("err %v, want %s", err, ReasonPortClosed)
	}
	t.Logf("%v", err)
}
