package xds

import (
	"errors"
	"fmt"
)

// Reason says why an istiod could not be asked.
type Reason string

// Reasons of an IstiodError.
const (
	// ReasonNoPod: no istiod pod (or, for Direct, no address) for the cluster.
	ReasonNoPod Reason = "no istiod pod"
	// ReasonNotReady: istiod pods exist, none is Running and Ready.
	ReasonNotReady Reason = "istiod not ready"
	// ReasonForwardFailed: the API refused or failed the port-forward
	// (RBAC, the kubelet unreachable, ...).
	ReasonForwardFailed Reason = "port-forward failed"
	// ReasonPortClosed: the forward reached the pod, but nothing accepts
	// connections on the xDS port (refused, reset, or no xDS answer).
	ReasonPortClosed Reason = "xDS port closed"
)

// IstiodError is why the istiod of a cluster could not be asked.
type IstiodError struct {
	Cluster string
	// Pod is the istiod pod, when one was chosen.
	Pod    string
	Reason Reason
	Err    error
}

func (e *IstiodError) Error() string {
	where := "cluster " + e.Cluster + ": istiod"
	if e.Pod != "" {
		where += " pod " + e.Pod
	}
	return fmt.Sprintf("%s: %s: %v", where, e.Reason, e.Err)
}

func (e *IstiodError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of an IstiodError in err's chain, "" if none.
func ReasonOf(err error) Reason {
	var ie *IstiodError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

var errNoDirectAddress = errors.New("no address given for this cluster")
