package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/node"
)

// TestSkewedClockIsReported (issue 15): a node whose clock is 10 minutes
// ahead of the chain and of its peers says so: /healthz answers 503 naming
// the offset, /status (what `ksb status` prints) carries it, and the log has
// an error naming it. Its peers, their clocks right, report nothing.
func TestSkewedClockIsReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n := startNet(t, ctx, 4)
	waitFor(t, ctx, "nodes healthy", func() error { return allHealthy(ctx, n) })

	// Member 0 runs again with a clock 10 minutes fast.
	m := n.Members[0]
	if err := n.StopMember(0); err != nil {
		t.Fatal(err)
	}
	mn, err := identity.Read(identity.Source{File: filepath.Join(m.Home, "mnemonic")})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	nd, err := node.New(ctx, node.Options{
		Home: m.Home, Config: m.Config, Mnemonic: mn, Logger: logs.logger(),
		Clock: func() time.Time { return time.Now().Add(10 * time.Minute) },
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(rctx) }()
	defer func() { rcancel(); <-done }()

	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	waitFor(t, wctx, "/healthz reports the clock", func() error {
		body, code, err := get(nd.AdminAddr(), "/healthz")
		if err != nil {
			return err
		}
		if code != 503 || !strings.Contains(string(body), "clock") || !strings.Contains(string(body), "10m") {
			return fmt.Errorf("/healthz: %d %q", code, body)
		}
		return nil
	})
	raw, code, err := get(nd.AdminAddr(), "/status")
	if err != nil || code != 200 {
		t.Fatalf("/status: %d %v", code, err)
	}
	var st node.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("/status: %v %s", err, raw)
	}
	c := st.Clock
	if c.OK || c.OffsetSeconds == nil || *c.OffsetSeconds < 590 || *c.OffsetSeconds > 610 || c.Against == "" || !strings.Contains(c.Error, "10m") {
		t.Fatalf("/status clock %+v, want about +600 s and not ok", c)
	}
	if !logs.has(func(r logRecord) bool { return r.level == "ERROR" && strings.Contains(r.attrs["offset"], "10m") }) {
		t.Fatalf("no error naming the offset logged")
	}
	for _, p := range n.Members[1:] {
		if c := status(t, ctx, p).Clock; !c.OK {
			t.Errorf("member %d, its clock right, reports %+v", p.Index, c)
		}
	}
}

// logRecorder is a slog.Handler that keeps every record's level, message
// and attributes.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level, msg string
	attrs      map[string]string
}

func (r *logRecorder) logger() *slog.Logger { return slog.New(r) }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	lr := logRecord{level: rec.Level.String(), msg: rec.Message, attrs: map[string]string{}}
	rec.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, lr)
	return nil
}

func (r *logRecorder) has(match func(logRecord) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.records, match)
}
