package kubeletapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/native"
)

// serveContainerLogs serves /containerLogs/{namespace}/{pod}/{container}
// with follow, previous, timestamps, tailLines, sinceSeconds, sinceTime
// and limitBytes.
func (s *Server) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	pod, ok := s.podFor(w, r)
	if !ok {
		return
	}
	name := r.PathValue("container")
	if !hasContainer(pod, name) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %q", name, pod.Name), http.StatusNotFound)
		return
	}
	if !s.native(pod) {
		http.Error(w, fmt.Sprintf("pod %s/%s is simulated by the k3s stand-in; container %q has no process and no logs", pod.Namespace, pod.Name, name), http.StatusBadRequest)
		return
	}
	opts, previous, err := logOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fw := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok {
		fw.f = f
	}
	w.Header().Set("Content-Type", "text/plain")
	// The status line is sent with the first write, so a missing log can
	// still be reported as an error.
	err = s.Native.ReadLogs(r.Context(), pod.UID, name, previous, opts, fw)
	if err != nil && !fw.wrote {
		code := http.StatusInternalServerError
		if errors.Is(err, native.ErrNoLog) {
			code = http.StatusBadRequest
		}
		http.Error(w, err.Error(), code)
	}
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return true
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

func logOptions(r *http.Request) (native.LogOptions, bool, error) {
	q := r.URL.Query()
	var o native.LogOptions
	boolean := func(key string) (bool, error) {
		v := q.Get(key)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("query parameter %s: %w", key, err)
		}
		return b, nil
	}
	integer := func(key string) (*int64, error) {
		v := q.Get(key)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("query parameter %s: %w", key, err)
		}
		return &n, nil
	}
	var err error
	if o.Follow, err = boolean("follow"); err != nil {
		return o, false, err
	}
	if o.Timestamps, err = boolean("timestamps"); err != nil {
		return o, false, err
	}
	previous, err := boolean("previous")
	if err != nil {
		return o, false, err
	}
	if o.TailLines, err = integer("tailLines"); err != nil {
		return o, false, err
	}
	if o.LimitBytes, err = integer("limitBytes"); err != nil {
		return o, false, err
	}
	since, err := integer("sinceSeconds")
	if err != nil {
		return o, false, err
	}
	if since != nil {
		t := time.Now().Add(-time.Duration(*since) * time.Second)
		o.SinceTime = &t
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return o, false, fmt.Errorf("query parameter sinceTime: %w", err)
		}
		o.SinceTime = &t
	}
	return o, previous, nil
}

// flushWriter flushes after every write, so followed logs stream.
type flushWriter struct {
	w     http.ResponseWriter
	f     http.Flusher
	wrote bool
}

func (f *flushWriter) Write(b []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(b)
	if f.f != nil {
		f.f.Flush()
	}
	return n, err
}
