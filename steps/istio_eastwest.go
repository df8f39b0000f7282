package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// EastWestOutputAddress is the output of istio/eastwest with the
// gateway's address (the plan's eastWest.address or the LoadBalancer's).
const EastWestOutputAddress = "address"

// IstioEastWest installs a cluster's east-west gateway: the walkthrough's
// `gen-eastwest-gateway.sh --network networkN | istioctl install -f -`,
// rendered in-process as the same gateway-only IstioOperator. It records
// the gateway's address (EastWestOutputAddress): the plan's
// clusters[].eastWest.address when set, else the Service's LoadBalancer
// ingress (k3s's servicelb gives the node IP).
type IstioEastWest struct {
	cluster string
	ew      istiorender.EastWest
	// Timeout bounds the wait for the gateway Deployment.
	Timeout time.Duration
	// AddressTimeout bounds the wait for the LoadBalancer address.
	AddressTimeout time.Duration
	rt             *Runtime
}

// NewIstioEastWest returns the istio/eastwest step of spec.Cluster in
// spec.Mesh.
func NewIstioEastWest(p *plans.Plan, spec plans.StepSpec, rt *Runtime) *IstioEastWest {
	mesh, cluster := *p.Mesh(spec.Mesh), spec.Cluster
	s := &IstioEastWest{cluster: cluster, Timeout: istioReadyTimeout, AddressTimeout: eastWestAddrTimeout, rt: rt}
	s.ew = istiorender.EastWest{Cluster: istioCluster(p, mesh, cluster)}
	if c := p.Cluster(cluster); c != nil && c.EastWest != nil {
		s.ew.Address = c.EastWest.Address
	}
	return s
}

func (s *IstioEastWest) inventory(env *engine.Env) *kube.Inventory {
	return &kube.Inventory{
		Path: statedir.Inventory(env.Dir, s.cluster, "eastwest"),
		Key:  inputsKey("istio/eastwest", s.ew.IstioOperator()),
	}
}

func (s *IstioEastWest) render(ctx context.Context) (*istiorender.Manifest, error) {
	return s.rt.render(ctx, s.ew.IstioOperator())
}

// Check compares the live gateway with what it is to be (checkInstall)
// and checks that it has an address.
func (s *IstioEastWest) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	c, err := reachableClient(ctx, env, s.cluster)
	if err != nil {
		return engine.Drift{}, err
	}
	d, err := checkInstall(ctx, c, s.inventory(env), func() ([]*unstructured.Unstructured, error) {
		m, err := s.render(ctx)
		if err != nil {
			return nil, err
		}
		return m.Objects, nil
	})
	if err != nil || !d.InSync {
		return d, err
	}
	addr, err := s.liveAddress(ctx, c)
	if err != nil {
		return engine.Drift{}, err
	}
	if addr == "" {
		return engine.Drifted("Service " + istiorender.EastWestGatewayName + " has no LoadBalancer address"), nil
	}
	if prev, ok := env.Previous(EastWestOutputAddress); ok && prev != addr {
		return engine.Drifted(fmt.Sprintf("gateway address changed from %s to %s", prev, addr)), nil
	}
	return engine.InSync(), nil
}

// liveAddress is the plan's address, or the Service's LoadBalancer
// ingress ("" while it has none).
func (s *IstioEastWest) liveAddress(ctx context.Context, c *kube.Client) (string, error) {
	if s.ew.Address != "" {
		return s.ew.Address, nil
	}
	svc, err := c.Typed.CoreV1().Services(istiorender.Namespace).Get(ctx, istiorender.EastWestGatewayName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return kube.LoadBalancerAddress(svc), nil
}

// Apply installs the gateway, waits for it and for its address.
func (s *IstioEastWest) Apply(ctx context.Context, env *engine.Env) error {
	m, c, err := wantedOn(ctx, env, s.cluster, func() (*istiorender.Manifest, error) {
		start := time.Now()
		m, err := s.render(ctx)
		if err == nil {
			env.Logf("rendered %d objects in %s", len(m.Objects), time.Since(start).Round(time.Millisecond))
		}
		return m, err
	})
	if err != nil {
		return err
	}
	if err := applyInstall(ctx, env, c, m.Objects, s.inventory(env), s.Timeout); err != nil {
		return err
	}
	addr, source := s.ew.Address, "plan (clusters[].eastWest.address, as the Service's externalIPs)"
	if addr == "" {
		source = "the Service's LoadBalancer ingress"
		err = env.Wait("Service "+istiorender.Namespace+"/"+istiorender.EastWestGatewayName+" LoadBalancer address", func() error {
			var err error
			addr, err = c.WaitLoadBalancer(ctx, istiorender.Namespace, istiorender.EastWestGatewayName, s.AddressTimeout)
			return err
		})
		var timeout *kube.TimeoutError
		if errors.As(err, &timeout) && ctx.Err() == nil {
			return fmt.Errorf("Service %s/%s got no LoadBalancer address within %s. k3s's servicelb gives LoadBalancer Services the node's IP; "+
				"it may be disabled (--disable=servicelb), or another LoadBalancer Service may hold a port of this one on every node "+
				"(istio-ingressgateway also uses 15021). Fix: set clusters[].eastWest.address of %s in the plan to an address of one of its nodes "+
				"that the other clusters reach; mcplan then puts it in the Service's spec.externalIPs and uses it as the gateway address.%s",
				istiorender.Namespace, istiorender.EastWestGatewayName, s.AddressTimeout, s.cluster, c.Diagnose(ctx, istiorender.Namespace))
		}
		if err != nil {
			return fmt.Errorf("Service %s: %w", istiorender.EastWestGatewayName, err)
		}
	}
	env.SetOutput(EastWestOutputAddress, addr)
	env.SetOutput("network", s.ew.Network)
	env.Logf("east-west gateway address %s, from %s", addr, source)
	return nil
}
