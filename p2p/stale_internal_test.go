package p2p

import (
	"context"
	"testing"
)

// TestDeadConnNeedsAnAnsweringNewConn: an older connection of a reconnected
// peer is closed only when it does not answer and the new one does; when
// neither answers (a loaded machine, a slow peer) both are kept.
func TestDeadConnNeedsAnAnsweringNewConn(t *testing.T) {
	timeout := context.DeadlineExceeded
	for _, c := range []struct {
		older, new error
		dead       bool
	}{
		{nil, nil, false},
		{timeout, nil, true},
		{nil, timeout, false},
		{timeout, timeout, false},
	} {
		if got := deadConn(c.older, c.new); got != c.dead {
			t.Errorf("older %v, new %v: dead = %v, want %v", c.older, c.new, got, c.dead)
		}
	}
}
