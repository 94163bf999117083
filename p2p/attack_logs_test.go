package p2p_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/p2p/internal/pb"
)

// countingHandler counts log records at Info and above that name a peer.
type countingHandler struct {
	mu     sync.Mutex
	byPeer map[string]int
	total  int
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total++
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "peer" {
			h.byPeer[a.Value.String()]++
		}
		return true
	})
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) of(p string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byPeer[p]
}

// TestAttackActiveNodeCannotFloodLogs (finding 5, an active node gone bad):
// every refusal and failure of an active node's stream was logged at Info,
// one line each. A node opening push streams with a malformed header in a
// loop makes a holder refuse about a thousand a second (the trickle attack
// above saw 12,000 BUSY refusals in 13 s), each a log line: a way to fill the
// operator's disk (~1 GB an hour per holder). Strangers were already logged
// at Debug only. Now a holder logs at most one refusal or failure line per
// peer per refusalLogInterval at Info, with the count of those it kept
// quiet since; the rest go to Debug. Metrics count every one.
func TestAttackActiveNodeCannotFloodLogs(t *testing.T) {
	o, bad := newOwner(t), newClient(t)
	logs := &countingHandler{byPeer: map[string]int{}}
	m := newMembers(o.id, bad.id)
	hd := newHolder(t, m, p2p.WithLogger(slog.New(logs)))
	connect(t, bad.h, hd.h)
	hdr := frameOf((&pb.PushHeader{Owner: bad.id.PubKey(), Size: 0}).Marshal()) // an empty copy: malformed
	const streams = 300
	ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
	defer cancel()
	start := time.Now()
	for range streams {
		s, err := bad.h.NewStream(ctx, hd.h.ID(), p2p.PushProtocol)
		if err != nil {
			t.Fatal(err)
		}
		s.Write(hdr)
		buf := make([]byte, 1024)
		s.Read(buf) // the refusal
		s.Reset()
	}
	took := time.Since(start)
	if _, err := o.push(t, hd, m.place(t, o.id, hd, vaultA, 5000, 1)); err != nil {
		t.Fatalf("honest push: %v", err)
	}
	refused := counter(t, hd.reg, "ksb_p2p_refusals_total", map[string]string{"protocol": "push", "reason": "malformed"})
	lines := logs.of(bad.id.PeerID().String())
	t.Logf("%d malformed pushes by one active node in %v: %v refusals counted, %d log lines at Info about it", streams, took.Round(time.Millisecond), refused, lines)
	if refused != streams {
		t.Fatalf("%v refusals counted, want %d", refused, streams)
	}
	if lines > 3 {
		t.Fatalf("%d log lines at Info for one peer's %d refused streams in %v", lines, streams, took)
	}
}
