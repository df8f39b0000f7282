package statebackend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Labels and keys of the Secrets that hold a state.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "mcplan"
	StateLabel     = "mcplan.io/state"
	// GenerationLabel is the write a chunk Secret belongs to.
	GenerationLabel = "mcplan.io/state-generation"

	indexGeneration = "generation"
	indexChunks     = "chunks"
	indexSHA256     = "sha256"
	chunkData       = "data"
)

// ChunkSize is the most bytes one Secret holds: an object is limited to
// 1 MiB (etcd's request limit), and the rest of the Secret needs room.
const ChunkSize = 768 << 10

// Secrets keeps an encoded state in Secrets of one namespace: the index
// Secret <name> says which generation of chunk Secrets
// (<name>-<generation>-<i>) holds it, with their count and digest. A
// write creates the new generation's chunks, then updates the index with
// the resourceVersion it read (so a concurrent writer fails loudly instead
// of losing an update), then deletes the older generations.
type Secrets struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string

	// read is the generation the last Read or Write saw, whose chunks
	// the next Write deletes once its index took.
	read generationRead
}

type generationRead struct {
	generation string
	chunks     int
}

// Version is the index Secret's resourceVersion a read saw ("" when
// there was none).
type Version string

// ErrConflict is the error of a write whose state was written by another
// run since it was read.
var ErrConflict = errors.New("the state was written by another run since this one read it")

func (s *Secrets) where() string { return fmt.Sprintf("Secret %s/%s", s.Namespace, s.Name) }

func (s *Secrets) labels(generation string) map[string]string {
	l := map[string]string{ManagedByLabel: ManagedBy, StateLabel: s.Name}
	if generation != "" {
		l[GenerationLabel] = generation
	}
	return l
}

func chunkName(name, generation string, i int) string {
	return name + "-" + generation + "-" + strconv.Itoa(i)
}

// Read returns the encoded state and the version it read; no state is
// nil data and version "".
func (s *Secrets) Read(ctx context.Context) ([]byte, Version, error) {
	idx, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the state from %s: %w", s.where(), err)
	}
	if idx.Labels[StateLabel] != s.Name {
		return nil, "", fmt.Errorf("read the state from %s: it is not labelled %s=%s: not a state mcplan wrote", s.where(), StateLabel, s.Name)
	}
	gen := string(idx.Data[indexGeneration])
	n, err := strconv.Atoi(string(idx.Data[indexChunks]))
	if err != nil || n < 0 || gen == "" {
		return nil, "", fmt.Errorf("read the state from %s: its index is damaged (generation %q, chunks %q)", s.where(), gen, idx.Data[indexChunks])
	}
	var data []byte
	for i := range n {
		name := chunkName(s.Name, gen, i)
		c, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, "", fmt.Errorf("read the state from %s: chunk %s: %w", s.where(), name, err)
		}
		data = append(data, c.Data[chunkData]...)
	}
	if got, want := Digest(data), string(idx.Data[indexSHA256]); got != want {
		return nil, "", fmt.Errorf("read the state from %s: its chunks hold sha256 %s, the index says %s", s.where(), got, want)
	}
	s.read = generationRead{generation: gen, chunks: n}
	return data, Version(idx.ResourceVersion), nil
}

// Write stores data over the state read at version prev ("" when there
// was none) and returns the new version. When another run wrote in
// between it returns an error wrapping ErrConflict and leaves that run's
// state as it is.
func (s *Secrets) Write(ctx context.Context, data []byte, prev Version) (Version, error) {
	gen, err := newGeneration()
	if err != nil {
		return "", err
	}
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	n := 0
	for off := 0; off < len(data) || n == 0; off += ChunkSize {
		end := min(off+ChunkSize, len(data))
		c := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: chunkName(s.Name, gen, n), Labels: s.labels(gen)},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{chunkData: data[off:end]},
		}
		if _, err := secrets.Create(ctx, c, metav1.CreateOptions{FieldManager: ManagedBy}); err != nil {
			s.deleteChunks(ctx, gen, n)
			return "", fmt.Errorf("write the state to %s: chunk %s: %w", s.where(), c.Name, err)
		}
		n++
		if end == len(data) {
			break
		}
	}
	idx := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: s.labels(""), ResourceVersion: string(prev)},
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			indexGeneration: []byte(gen),
			indexChunks:     []byte(strconv.Itoa(n)),
			indexSHA256:     []byte(Digest(data)),
		},
	}
	var written *corev1.Secret
	if prev == "" {
		written, err = secrets.Create(ctx, idx, metav1.CreateOptions{FieldManager: ManagedBy})
	} else {
		written, err = secrets.Update(ctx, idx, metav1.UpdateOptions{FieldManager: ManagedBy})
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || (prev != "" && apierrors.IsNotFound(err)) {
		s.deleteChunks(ctx, gen, n)
		return "", fmt.Errorf("write the state to %s: %w (read at resourceVersion %q); this run's changes since are only in the local cache: run again", s.where(), ErrConflict, prev)
	}
	if err != nil {
		s.deleteChunks(ctx, gen, n)
		return "", fmt.Errorf("write the state to %s: %w", s.where(), err)
	}
	if s.read.generation != "" {
		s.deleteChunks(ctx, s.read.generation, s.read.chunks)
	}
	s.read = generationRead{generation: gen, chunks: n}
	return Version(written.ResourceVersion), nil
}

// deleteChunks removes n chunks of a generation, by name (the Role of
// `mcplan state rbac` grants no list): those of a write that did not take,
// or of the generation a write replaced. Chunks left by a run killed
// between its chunks and its index stay behind: they are unreferenced.
func (s *Secrets) deleteChunks(ctx context.Context, gen string, n int) {
	for i := range n {
		_ = s.Client.CoreV1().Secrets(s.Namespace).Delete(ctx, chunkName(s.Name, gen, i), metav1.DeleteOptions{})
	}
}

func newGeneration() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("state generation: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (s *Secrets) String() string { return "the state in " + s.where() }
