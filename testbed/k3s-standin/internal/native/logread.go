package native

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// LogOptions are the kubelet containerLogs options the stand-in honours.
type LogOptions struct {
	Follow     bool
	Timestamps bool
	TailLines  *int64
	SinceTime  *time.Time
	LimitBytes *int64
}

// logEntry is one parsed CRI log line.
type logEntry struct {
	time time.Time
	text []byte
	full bool
}

func parseEntry(line []byte) (logEntry, error) {
	ts, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return logEntry{}, errors.New("no timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return logEntry{}, fmt.Errorf("timestamp: %w", err)
	}
	_, rest, ok = bytes.Cut(rest, []byte(" ")) // stream
	if !ok {
		return logEntry{}, errors.New("no stream")
	}
	tag, text, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		// An empty line has no text after the tag's space in some writers.
		tag, text = rest, nil
	}
	return logEntry{time: t, text: text, full: string(tag) != criTagPart}, nil
}

// logPrinter turns entries into what kubectl logs prints: the text of each
// line, partial entries joined, optionally prefixed by the time of the
// line's first entry.
type logPrinter struct {
	w         io.Writer
	opts      LogOptions
	pending   []byte
	pendingAt time.Time
	remaining int64 // bytes left under LimitBytes; <0 means unlimited
	exhausted bool
}

func newLogPrinter(w io.Writer, opts LogOptions) *logPrinter {
	p := &logPrinter{w: w, opts: opts, remaining: -1}
	if opts.LimitBytes != nil {
		p.remaining = *opts.LimitBytes
	}
	return p
}

func (p *logPrinter) add(e logEntry) error {
	if len(p.pending) == 0 {
		p.pendingAt = e.time
	}
	p.pending = append(p.pending, e.text...)
	if !e.full {
		return nil
	}
	line := p.pending
	at := p.pendingAt
	p.pending = nil
	if p.opts.SinceTime != nil && at.Before(*p.opts.SinceTime) {
		return nil
	}
	var out []byte
	if p.opts.Timestamps {
		out = at.UTC().AppendFormat(out, time.RFC3339Nano)
		out = append(out, ' ')
	}
	out = append(out, line...)
	out = append(out, '\n')
	if p.remaining >= 0 {
		if int64(len(out)) >= p.remaining {
			out = out[:p.remaining]
			p.exhausted = true
		}
		p.remaining -= int64(len(out))
	}
	_, err := p.w.Write(out)
	if f, ok := p.w.(interface{ Flush() }); ok {
		f.Flush()
	}
	return err
}

// readLogs writes the log at path to w. With Follow it keeps reading
// while live reports that the container run still writes to it.
func readLogs(ctx context.Context, path string, opts LogOptions, live func() bool, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	p := newLogPrinter(w, opts)
	br := bufio.NewReaderSize(f, 64<<10)
	// The whole current file is read to apply tailLines; files are
	// bounded by rotation.
	var entries []logEntry
	var partial []byte
	readAvailable := func() error {
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] != '\n' {
				partial = append(partial, line...)
				return nil
			}
			if len(line) > 0 {
				line = append(partial, line[:len(line)-1]...)
				partial = nil
				if e, perr := parseEntry(line); perr == nil {
					entries = append(entries, e)
				}
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read log: %w", err)
			}
		}
	}
	if err := readAvailable(); err != nil {
		return err
	}
	start := 0
	if opts.TailLines != nil {
		start = tailStart(entries, *opts.TailLines)
	}
	flush := func() error {
		for _, e := range entries[start:] {
			if err := p.add(e); err != nil {
				return err
			}
			if p.exhausted {
				return nil
			}
		}
		entries, start = entries[:0], 0
		return nil
	}
	if err := flush(); err != nil || p.exhausted || !opts.Follow {
		return err
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		wasLive := live()
		if err := readAvailable(); err != nil {
			return err
		}
		if err := flush(); err != nil || p.exhausted {
			return err
		}
		if !wasLive {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// tailStart is the index of the first entry of the last n lines (a line
// may span several partial entries).
func tailStart(entries []logEntry, n int64) int {
	if n < 0 {
		return 0
	}
	lines := int64(0)
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].full {
			if lines == n {
				return i + 1
			}
			lines++
		}
	}
	return 0
}
