package native

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	podresource "k8s.io/kubernetes/pkg/api/v1/resource"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/pkg/volume/configmap"
	"k8s.io/kubernetes/pkg/volume/secret"
	volumeutil "k8s.io/kubernetes/pkg/volume/util"
)

// defaultVolumeMode is the API default of defaultMode (0644).
const defaultVolumeMode int32 = 0o644

// Token refresh as kubelet's token manager: a token is renewed once 80% of
// its lifetime has passed, or after a day.
const (
	tokenRefreshFraction = 0.8
	tokenMaxAge          = 24 * time.Hour
	defaultTokenSeconds  = 3600
)

// volumes materialises a pod's volumes under dir/<volume name>, with
// kubelet's atomic-writer layout (files are links to ..data/<file>, and
// ..data is swapped atomically to a new timestamped directory), so a
// process sees ConfigMap, Secret, downward API and token updates as a
// kubelet's would. Not safe for concurrent use.
type volumes struct {
	dir         string
	client      kubernetes.Interface
	allocatable corev1.ResourceList
	tokens      map[string]issuedToken // by volume/path
}

type issuedToken struct {
	token   string
	issued  time.Time
	expires time.Time
}

func newVolumes(dir string, client kubernetes.Interface, allocatable corev1.ResourceList) *volumes {
	return &volumes{dir: dir, client: client, allocatable: allocatable, tokens: map[string]issuedToken{}}
}

// path is where volume name is materialised (for a hostPath volume, the
// host path itself).
func (v *volumes) path(pod *corev1.Pod, name string) (string, error) {
	for _, vol := range pod.Spec.Volumes {
		if vol.Name == name {
			if vol.HostPath != nil {
				return vol.HostPath.Path, nil
			}
			return filepath.Join(v.dir, name), nil
		}
	}
	return "", fmt.Errorf("volume %q is not in the pod spec", name)
}

// refresh writes every volume of pod; it returns all failures joined.
func (v *volumes) refresh(ctx context.Context, pod *corev1.Pod) error {
	var errs []error
	for i := range pod.Spec.Volumes {
		if err := v.refreshOne(ctx, pod, &pod.Spec.Volumes[i]); err != nil {
			errs = append(errs, fmt.Errorf("volume %q: %w", pod.Spec.Volumes[i].Name, err))
		}
	}
	return errors.Join(errs...)
}

func (v *volumes) refreshOne(ctx context.Context, pod *corev1.Pod, vol *corev1.Volume) error {
	dir := filepath.Join(v.dir, vol.Name)
	src := vol.VolumeSource
	switch {
	case src.EmptyDir != nil:
		// medium Memory is a plain directory too.
		return mkdir(dir)
	case src.HostPath != nil:
		return hostPath(src.HostPath)
	case src.ConfigMap != nil:
		payload, err := v.configMapPayload(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, modeOr(src.ConfigMap.DefaultMode), src.ConfigMap.Optional)
		if err != nil {
			return err
		}
		return writeAtomic(dir, payload)
	case src.Secret != nil:
		payload, err := v.secretPayload(ctx, pod.Namespace, src.Secret.SecretName, src.Secret.Items, modeOr(src.Secret.DefaultMode), src.Secret.Optional)
		if err != nil {
			return err
		}
		return writeAtomic(dir, payload)
	case src.DownwardAPI != nil:
		payload, err := v.downwardAPIPayload(pod, src.DownwardAPI.Items, modeOr(src.DownwardAPI.DefaultMode))
		if err != nil {
			return err
		}
		return writeAtomic(dir, payload)
	case src.Projected != nil:
		payload, err := v.projectedPayload(ctx, pod, vol.Name, src.Projected)
		if err != nil {
			return err
		}
		return writeAtomic(dir, payload)
	}
	return errors.New("volume type not supported by the stand-in's native pods (emptyDir, hostPath, configMap, secret, downwardAPI and projected are)")
}

func modeOr(m *int32) int32 {
	if m == nil {
		return defaultVolumeMode
	}
	return *m
}

func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return nil
}

// hostPath checks (and for the *OrCreate types makes) a hostPath volume's
// path.
func hostPath(h *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		return mkdir(h.Path)
	case corev1.HostPathFileOrCreate:
		if err := mkdir(filepath.Dir(h.Path)); err != nil {
			return err
		}
		f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return fmt.Errorf("create %s: %w", h.Path, err)
		}
		return f.Close()
	case corev1.HostPathUnset:
		return nil
	}
	if _, err := os.Stat(h.Path); err != nil {
		return fmt.Errorf("hostPath %s (%s): %w", h.Path, t, err)
	}
	return nil
}

func writeAtomic(dir string, payload map[string]volumeutil.FileProjection) error {
	if err := mkdir(dir); err != nil {
		return err
	}
	w, err := volumeutil.NewAtomicWriter(dir, "k3s-standin")
	if err != nil {
		return fmt.Errorf("atomic writer %s: %w", dir, err)
	}
	if err := w.Write(payload, nil); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	return nil
}

func (v *volumes) configMapPayload(ctx context.Context, ns, name string, items []corev1.KeyToPath, mode int32, optional *bool) (map[string]volumeutil.FileProjection, error) {
	cm, err := v.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && isTrue(optional) {
		cm = &corev1.ConfigMap{}
	} else if err != nil {
		return nil, fmt.Errorf("get ConfigMap %s/%s: %w", ns, name, err)
	}
	payload, err := configmap.MakePayload(items, cm, &mode, nil, isTrue(optional))
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", ns, name, err)
	}
	return payload, nil
}

func (v *volumes) secretPayload(ctx context.Context, ns, name string, items []corev1.KeyToPath, mode int32, optional *bool) (map[string]volumeutil.FileProjection, error) {
	s, err := v.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && isTrue(optional) {
		s = &corev1.Secret{}
	} else if err != nil {
		return nil, fmt.Errorf("get Secret %s/%s: %w", ns, name, err)
	}
	payload, err := secret.MakePayload(items, s, &mode, nil, isTrue(optional))
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", ns, name, err)
	}
	return payload, nil
}

// downwardAPIPayload is downwardapi.CollectData with the node's allocatable
// for unset limits.
func (v *volumes) downwardAPIPayload(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode int32) (map[string]volumeutil.FileProjection, error) {
	payload := map[string]volumeutil.FileProjection{}
	for _, item := range items {
		fp := volumeutil.FileProjection{Mode: mode}
		if item.Mode != nil {
			fp.Mode = *item.Mode
		}
		switch {
		case item.FieldRef != nil:
			s, err := fieldpath.ExtractFieldPathAsString(pod, item.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("downward API %s: %w", item.Path, err)
			}
			fp.Data = []byte(s)
		case item.ResourceFieldRef != nil:
			s, err := podresource.ExtractResourceValueByContainerNameAndNodeAllocatable(item.ResourceFieldRef, pod, item.ResourceFieldRef.ContainerName, v.allocatable)
			if err != nil {
				return nil, fmt.Errorf("downward API %s: %w", item.Path, err)
			}
			fp.Data = []byte(s)
		}
		payload[filepath.Clean(item.Path)] = fp
	}
	return payload, nil
}

// projectedPayload merges a projected volume's sources. ClusterTrustBundle
// and PodCertificate sources are not supported.
func (v *volumes) projectedPayload(ctx context.Context, pod *corev1.Pod, volName string, p *corev1.ProjectedVolumeSource) (map[string]volumeutil.FileProjection, error) {
	mode := modeOr(p.DefaultMode)
	payload := map[string]volumeutil.FileProjection{}
	merge := func(m map[string]volumeutil.FileProjection) {
		for k, fp := range m {
			payload[k] = fp
		}
	}
	for _, src := range p.Sources {
		switch {
		case src.ConfigMap != nil:
			m, err := v.configMapPayload(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, mode, src.ConfigMap.Optional)
			if err != nil {
				return nil, err
			}
			merge(m)
		case src.Secret != nil:
			m, err := v.secretPayload(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, mode, src.Secret.Optional)
			if err != nil {
				return nil, err
			}
			merge(m)
		case src.DownwardAPI != nil:
			m, err := v.downwardAPIPayload(pod, src.DownwardAPI.Items, mode)
			if err != nil {
				return nil, err
			}
			merge(m)
		case src.ServiceAccountToken != nil:
			tok, err := v.token(ctx, pod, volName, src.ServiceAccountToken)
			if err != nil {
				return nil, err
			}
			// kubelet writes tokens 0600 unless fsGroup is set.
			tokenMode := mode
			if pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.FSGroup == nil {
				tokenMode = 0o600
			}
			payload[src.ServiceAccountToken.Path] = volumeutil.FileProjection{Data: []byte(tok), Mode: tokenMode}
		case src.ClusterTrustBundle != nil:
			if !isTrue(src.ClusterTrustBundle.Optional) {
				return nil, errors.New("clusterTrustBundle sources are not supported by the stand-in")
			}
		default:
			return nil, errors.New("projected source not supported by the stand-in (configMap, secret, downwardAPI and serviceAccountToken are)")
		}
	}
	return payload, nil
}

// token returns a service account token bound to the pod (TokenRequest,
// which the Node authorizer allows a node for pods bound to it), renewed
// as kubelet's token manager renews it.
func (v *volumes) token(ctx context.Context, pod *corev1.Pod, volName string, p *corev1.ServiceAccountTokenProjection) (string, error) {
	key := volName + "/" + p.Path
	now := time.Now()
	if t, ok := v.tokens[key]; ok {
		refreshAt := t.issued.Add(time.Duration(float64(t.expires.Sub(t.issued)) * tokenRefreshFraction))
		if now.Before(refreshAt) && now.Sub(t.issued) < tokenMaxAge {
			return t.token, nil
		}
	}
	seconds := int64(defaultTokenSeconds)
	if p.ExpirationSeconds != nil {
		seconds = *p.ExpirationSeconds
	}
	var audiences []string
	if p.Audience != "" {
		audiences = []string{p.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr, err := v.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         audiences,
			ExpirationSeconds: &seconds,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s (audience %q): %w", pod.Namespace, sa, p.Audience, err)
	}
	v.tokens[key] = issuedToken{token: tr.Status.Token, issued: now, expires: tr.Status.ExpirationTimestamp.Time}
	return tr.Status.Token, nil
}

// mountSource resolves a volume mount to the path to bind: the volume's
// directory, or the file or directory its subPath names (links resolved,
// as kubelet does, so a subPath of a ConfigMap volume is a snapshot and not
// updated). It must stay inside the volume.
func (v *volumes) mountSource(pod *corev1.Pod, m *corev1.VolumeMount, expand func(string) string) (string, error) {
	base, err := v.path(pod, m.Name)
	if err != nil {
		return "", err
	}
	sub := m.SubPath
	if m.SubPathExpr != "" {
		sub = expand(m.SubPathExpr)
	}
	if sub == "" {
		return base, nil
	}
	if filepath.IsAbs(sub) || strings.HasPrefix(filepath.Clean(sub), "..") {
		return "", fmt.Errorf("subPath %q must be a relative path inside the volume", sub)
	}
	p := filepath.Join(base, sub)
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		// kubelet creates a missing subPath as a directory.
		if err := mkdir(p); err != nil {
			return "", err
		}
	}
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", m.Name, err)
	}
	if resolved != realBase && !strings.HasPrefix(resolved, realBase+string(filepath.Separator)) {
		return "", fmt.Errorf("subPath %q leaves volume %q", sub, m.Name)
	}
	return resolved, nil
}
