package kube

import (
	"slices"
	"testing"
)

func TestFieldChanges(t *testing.T) {
	tests := []struct {
		name          string
		kind          string
		live, desired map[string]any
		want          []string
	}{
		{
			name:    "text of a ConfigMap",
			kind:    "ConfigMap",
			live:    map[string]any{"data": map[string]any{"mesh": "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n"}},
			desired: map[string]any{"data": map[string]any{"mesh": "accessLogFile: /dev/stdout\naccessLogEncoding: TEXT\n"}},
			want:    []string{`~ data.mesh: text: "accessLogEncoding: JSON" → "accessLogEncoding: TEXT"`},
		},
		{
			name:    "fields added, removed, changed",
			kind:    "Deployment",
			live:    map[string]any{"spec": map[string]any{"replicas": 1.0, "paused": true}},
			desired: map[string]any{"spec": map[string]any{"replicas": 2.0, "minReadySeconds": 5.0}},
			want:    []string{"+ spec.minReadySeconds: 5", "- spec.paused: true", "~ spec.replicas: 1 → 2"},
		},
		{
			name:    "secret values are never shown",
			kind:    "Secret",
			live:    map[string]any{"data": map[string]any{"token": "b2xk"}},
			desired: map[string]any{"data": map[string]any{"token": "bmV3", "ca.crt": "Y2E="}},
			want:    []string{"+ data.ca.crt: (value redacted)", "~ data.token: (value redacted)"},
		},
		{
			name:    "a secret whose live data is missing: the whole node is redacted",
			kind:    "Secret",
			live:    map[string]any{"type": "Opaque"},
			desired: map[string]any{"type": "Opaque", "data": map[string]any{"token": "c2VjcmV0"}, "stringData": map[string]any{"k": "plain"}},
			want:    []string{"+ data: (value redacted)", "+ stringData: (value redacted)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fieldChanges(tt.kind, tt.live, tt.desired); !slices.Equal(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
