package native

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Container logs are kept as kubelet keeps them with a CRI runtime:
// /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restartCount>.log, one
// line per write in the CRI format "<RFC3339Nano time> <stream> <F|P>
// <text>" (P: a partial line, continued by the next entry).
const (
	logMaxLine   = 16 << 10 // longer lines are split into P entries, as containerd does
	logMaxSize   = 10 << 20 // rotated to <n>.log.1 above this size
	criTagFull   = "F"
	criTagPart   = "P"
	streamStdout = "stdout"
	streamStderr = "stderr"
)

// podLogDir is kubelet's log directory of a pod.
func podLogDir(root, namespace, name, uid string) string {
	return filepath.Join(root, namespace+"_"+name+"_"+uid)
}

// containerLogPath is the log file of one run of a container.
func containerLogPath(podDir, container string, restartCount int32) string {
	return filepath.Join(podDir, container, fmt.Sprintf("%d.log", restartCount))
}

// logFile appends CRI-format entries for one container run.
type logFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
	size int64
}

func openLog(path string) (*logFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log: %w", err)
	}
	return &logFile{path: path, f: f, size: fi.Size()}, nil
}

// pump copies r into the log as entries of stream until r ends.
func (l *logFile) pump(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, logMaxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			tag := criTagPart
			if line[len(line)-1] == '\n' {
				tag = criTagFull
				line = line[:len(line)-1]
			}
			l.write(stream, tag, line)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return
		}
	}
}

// Note writes a line of the stand-in's own into the log (as a runtime
// would not; used for the reason a process could not start).
func (l *logFile) note(stream, text string) { l.write(stream, criTagFull, []byte(text)) }

func (l *logFile) write(stream, tag string, text []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	entry := make([]byte, 0, len(text)+64)
	entry = time.Now().UTC().AppendFormat(entry, time.RFC3339Nano)
	entry = append(entry, ' ')
	entry = append(entry, stream...)
	entry = append(entry, ' ')
	entry = append(entry, tag...)
	entry = append(entry, ' ')
	entry = append(entry, text...)
	entry = append(entry, '\n')
	n, _ := l.f.Write(entry)
	l.size += int64(n)
	if l.size > logMaxSize {
		l.rotate()
	}
}

// rotate keeps one rotated file, as kubelet keeps a bounded number.
func (l *logFile) rotate() {
	l.f.Close()
	_ = os.Rename(l.path, l.path+".1")
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		l.f = nil
		return
	}
	l.f, l.size = f, 0
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
