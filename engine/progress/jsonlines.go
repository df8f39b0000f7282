package progress

import (
	"encoding/json"
	"io"
	"sync"

	"mcplan.io/mcplan/engine"
)

// JSONLines writes every event as one JSON object per line (-o json).
type JSONLines struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSONLines returns a JSONLines writer.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{enc: json.NewEncoder(w)} }

// Sink is the engine.Sink of this writer.
func (j *JSONLines) Sink(ev engine.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(ev)
}
