package istiorender

// Names of the objects mcplan's steps make or look for. The rendered
// objects' names come from Istio's charts; these are the ones the steps
// and verify name themselves.
const (
	Namespace           = "istio-system"
	IstiodName          = "istiod"
	EastWestGatewayName = "istio-eastwestgateway"
	NetworkLabel        = "topology.istio.io/network"
)

// CACertsSecret is the Secret istiod reads its plugged-in CA from.
const CACertsSecret = "cacerts"

// Names of the objects istio/expose applies, as in Istio's
// samples/multicluster/expose-services.yaml and expose-istiod.yaml.
const (
	CrossNetworkGateway = "cross-network-gateway"
	IstiodGateway       = "istiod-gateway"
	IstiodVirtualSvc    = "istiod-vs"
)

// Names and markers of remote secrets, as `istioctl create-remote-secret`
// makes them.
const (
	ReaderServiceAccount = "istio-reader-service-account"
	// ReaderTokenSecret is the name istioctl gives the one long-lived token
	// of the reader account; mcplan makes one per reader instead
	// (ReaderTokenSecretFor), so that removing a pair revokes its token.
	ReaderTokenSecret = ReaderServiceAccount + "-istio-remote-secret-token"
	// ReaderTokenTargetAnnotation names the cluster a token Secret serves.
	ReaderTokenTargetAnnotation = "mcplan.io/remote-secret-reader"
	RemoteSecretPrefix          = "istio-remote-secret-"
	MultiClusterLabel           = "istio/multiCluster"
	RemoteClusterAnnotation     = "networking.istio.io/cluster"
)

// ReaderTokenSecretFor is the token Secret in a source cluster through
// which the target cluster's istiod reads it. Deleting it revokes the
// token.
func ReaderTokenSecretFor(target string) string { return ReaderTokenSecret + "-" + target }

// RemoteSecretName is the name of the Secret through which other clusters'
// istiod read cluster's API.
func RemoteSecretName(cluster string) string { return RemoteSecretPrefix + cluster }
