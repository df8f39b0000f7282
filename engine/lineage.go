package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// A state's lineage is a random ID made when the state is first written
// and kept by every later write, beside its serial: two state files of
// different lineages are different states, whatever their serials say.
// The Store never writes over a state file of another lineage than the
// one it read (two plans pointed at one state directory, a backup
// restored while mcplan ran).

// newLineage returns a random 128-bit ID written as a version 4 UUID.
func newLineage() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// LineageError is the refusal to write over a state file that is not the
// one the Store read: of another lineage, or there when there was none.
type LineageError struct {
	Path string
	// Read is the lineage the Store read ("" for a state of an older
	// mcplan, which had none); Found the one of the file now on disk.
	Read, Found string
	// Appeared is true when there was no state file when the Store was
	// opened.
	Appeared bool
}

func (e *LineageError) Error() string {
	const why = "another plan may use this state directory, or a backup was restored: nothing was written; " +
		"mcplan never writes over a state of another lineage (check which plan owns it, then run again)"
	if e.Appeared {
		return fmt.Sprintf("write state %s: a state of lineage %s appeared there since this mcplan found none; %s", e.Path, describeLineage(e.Found), why)
	}
	return fmt.Sprintf("write state %s: it now holds a state of lineage %s, not lineage %s, which this mcplan read; %s",
		e.Path, describeLineage(e.Found), describeLineage(e.Read), why)
}

func describeLineage(l string) string {
	if l == "" {
		return "(none: written by an older mcplan)"
	}
	return l
}

// onDisk is what the Store knows of the state file as it last read or
// wrote it.
type onDisk struct {
	found   bool   // a state file was there
	lineage string // its lineage
}

// checkOnDisk refuses to write over a state file other than the one the
// Store last read or wrote: one of another lineage, one that appeared
// where there was none, one that no longer parses, or one of the same
// lineage that another process wrote a newer serial into. A state file
// that disappeared is no state to protect.
func (s *Store) checkOnDisk() error {
	f, err := os.Open(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("write state: read it first: %w", err)
	}
	defer f.Close()
	head, err := readHead(f)
	if err != nil {
		return fmt.Errorf("write state %s: it was changed since this mcplan read it and is damaged now (%v): nothing was written", s.path, err)
	}
	switch {
	case !s.disk.found:
		return &LineageError{Path: s.path, Found: head.Lineage, Appeared: true}
	case head.Lineage != s.disk.lineage:
		return &LineageError{Path: s.path, Read: s.disk.lineage, Found: head.Lineage}
	case head.Serial > s.written:
		return fmt.Errorf("write state %s: another process wrote serial %d into it since this mcplan wrote serial %d: nothing was written (is a second mcplan running on this state without the lock?)",
			s.path, head.Serial, s.written)
	}
	return nil
}

// stateHead is what checkOnDisk reads of a state file.
type stateHead struct {
	Lineage string `json:"lineage"`
	Serial  int64  `json:"serial"`
}

// readHead reads a state file's lineage and serial. The Store writes them
// before its steps, so it stops there instead of reading every record
// (for a big mesh, megabytes on every write).
func readHead(r io.Reader) (stateHead, error) {
	var head stateHead
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return head, fmt.Errorf("not a JSON object")
	}
	seen := 0
	for seen < 2 && dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return head, err
		}
		var into any = new(json.RawMessage)
		switch tok {
		case "lineage":
			into, seen = &head.Lineage, seen+1
		case "serial":
			into, seen = &head.Serial, seen+1
		}
		if err := dec.Decode(into); err != nil {
			return head, err
		}
	}
	return head, nil
}
