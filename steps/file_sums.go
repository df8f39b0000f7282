package steps

import (
	"strings"
	"sync"

	"mcplan.io/mcplan/internal/digest"
)

// fileSums are the sha256 sums of the local files a run uploads (a k3s
// binary of 100+ MB), each read once per run and per version of the file
// (digest.FileStamp), however many hosts it goes to.
type fileSums struct {
	mu   sync.Mutex
	byID map[string]*fileSum
}

type fileSum struct {
	once sync.Once
	sum  string
	err  error
}

// fileSHA256 is the sha256 of a local file, read once per run and file
// version; a nil Runtime reads it every time.
func (r *Runtime) fileSHA256(path string) (string, error) {
	stamp, err := digest.FileStamp(path)
	if err != nil {
		return "", err
	}
	if r == nil {
		return digest.FileSHA256(path)
	}
	id := path + "\x00" + stamp
	r.sums.mu.Lock()
	if r.sums.byID == nil {
		r.sums.byID = map[string]*fileSum{}
	}
	fs := r.sums.byID[id]
	if fs == nil {
		fs = &fileSum{}
		r.sums.byID[id] = fs
	}
	r.sums.mu.Unlock()
	fs.once.Do(func() { fs.sum, fs.err = digest.FileSHA256(path) })
	return fs.sum, fs.err
}

// stampedSum is a file's sum as a step records it between runs: "<sum>
// <stamp>", so that a later run whose file has the same stamp takes the
// sum without reading the file.
func stampedSum(sum, stamp string) string { return sum + " " + stamp }

// sumIfStamped is the sum of a stampedSum record whose stamp is stamp.
func sumIfStamped(record, stamp string) (string, bool) {
	sum, recorded, ok := strings.Cut(record, " ")
	if !ok || recorded != stamp || stamp == "" {
		return "", false
	}
	return sum, true
}
