package recovery

import (
	"fmt"
	"io"
	"sync"
)

// progress writes human-readable lines to a writer, one whole line at a time
// from any goroutine. A nil writer discards them.
type progress struct {
	mu sync.Mutex
	w  io.Writer
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	line := fmt.Sprintf(format, args...) + "\n"
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, line)
}
