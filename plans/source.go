package plans

import (
	"strconv"
	"strings"
)

// position is a 1-based line and column in the plan file.
type position struct {
	Line, Column int
}

// source remembers where a plan came from, so that validation can point at
// the YAML node behind a field path.
type source struct {
	file string // file name as given, used in messages
	dir  string // absolute directory of the file
	// pos maps a field path (clusters[1].network) to the position of its
	// value node; keyPos to the position of the mapping key naming it.
	pos    map[string]position
	keyPos map[string]position
}

func newSource(file, dir string) *source {
	return &source{file: file, dir: dir, pos: map[string]position{}, keyPos: map[string]position{}}
}

// lookup returns the position of path's value, or of its nearest ancestor
// present in the file; the zero position when there is none.
func (s *source) lookup(path string) position {
	if s == nil {
		return position{}
	}
	for {
		if p, ok := s.pos[path]; ok {
			return p
		}
		if path == "" {
			return position{}
		}
		path = parentPath(path)
	}
}

// has reports whether path was written in the file.
func (s *source) has(path string) bool {
	if s == nil {
		return false
	}
	_, ok := s.pos[path]
	return ok
}

// parentPath strips the last ".field" or "[i]" from path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// fieldPath joins a field name to a path.
func fieldPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// indexPath appends an index to a path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// errAt builds an Error positioned at path's node in p's file.
// ErrorAt is an error about the plan's field at path (clusters[0].k3s.version),
// positioned at it when the plan was parsed from a file: for checks of the
// plan against what its last apply recorded.
func (p *Plan) ErrorAt(path, msg, hint string) *Error { return p.errAt(path, msg, hint) }

func (p *Plan) errAt(path, msg, hint string) *Error {
	e := &Error{Path: path, Message: msg, Hint: hint}
	if path == "" {
		e.Path = RootPath
	}
	if p.src != nil {
		e.File = p.src.file
		pos := p.src.lookup(path)
		e.Line, e.Column = pos.Line, pos.Column
	}
	return e
}
