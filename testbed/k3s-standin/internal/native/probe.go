package native

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeUserAgent is what kubelet sends (kube-probe/<major>.<minor>).
const probeUserAgent = "kube-probe/1.37"

// prober runs one container's probes against the pod IP (the node IP for
// hostNetwork pods), from the node, as kubelet. exec probes run the
// command in a fresh mount namespace with the container's mounts and
// environment, in the pod's network namespace (runExec); gRPC
// probes are not evaluated and count as succeeding.
type prober struct {
	host      string
	container *corev1.Container
	runExec   func(ctx context.Context, command []string) error
}

// check runs probe once.
func (p *prober) check(ctx context.Context, probe *corev1.Probe) error {
	timeout := time.Duration(probe.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h := probe.ProbeHandler
	switch {
	case h.HTTPGet != nil:
		return p.httpGet(ctx, h.HTTPGet)
	case h.TCPSocket != nil:
		port, err := p.port(h.TCPSocket.Port)
		if err != nil {
			return err
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = p.host
		}
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return c.Close()
	case h.Exec != nil:
		return p.runExec(ctx, h.Exec.Command)
	case h.GRPC != nil:
		return nil
	}
	return errors.New("probe has no handler")
}

func (p *prober) httpGet(ctx context.Context, g *corev1.HTTPGetAction) error {
	port, err := p.port(g.Port)
	if err != nil {
		return err
	}
	host := g.Host
	if host == "" {
		host = p.host
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	u, err = u.Parse(path)
	if err != nil {
		return fmt.Errorf("probe URL: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("probe request: %w", err)
	}
	req.Header.Set("User-Agent", probeUserAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as kubelet: probes do not verify
		DisableKeepAlives: true,
		Proxy:             nil,
	}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.CopyN(io.Discard, resp.Body, 10<<10)
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// port resolves a probe port: a number, or the name of a container port.
func (p *prober) port(port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, cp := range p.container.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("container has no port named %q", port.StrVal)
}

// probeWorker applies a probe's timing and thresholds, as kubelet's
// prober worker: the first result after initialDelaySeconds, then every
// periodSeconds; the result flips after successThreshold consecutive
// successes or failureThreshold consecutive failures. report is called
// with every change of the result, starting from initial.
func probeWorker(ctx context.Context, p *prober, probe *corev1.Probe, initial bool, report func(ok bool, detail string)) {
	period := time.Duration(probe.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	successes, failures := int32(0), int32(0)
	successThreshold, failureThreshold := max(probe.SuccessThreshold, 1), max(probe.FailureThreshold, 1)
	result := initial
	wait := time.Duration(probe.InitialDelaySeconds) * time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = period
		err := p.check(ctx, probe)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			successes, failures = successes+1, 0
			if !result && successes >= successThreshold {
				result = true
				report(true, "")
			}
			continue
		}
		successes, failures = 0, failures+1
		if (result || failures == failureThreshold) && failures >= failureThreshold {
			result = false
			report(false, err.Error())
		}
	}
}
