package p2p

import (
	"testing"
	"time"
)

// TestPauseWatch: a gap in the watch's ticks (the process stopped) is seen
// both before the ticker catches up and after, and only by streams that
// were open across it.
func TestPauseWatch(t *testing.T) {
	w := newPauseWatch()
	defer w.close()
	before := time.Now()
	if w.pausedSince(before.Add(-time.Minute)) {
		t.Fatal("a running process reported paused")
	}
	// As if SIGSTOPped for 3 s just now: the ticker has not run since.
	w.mu.Lock()
	w.lastTick = time.Now().Add(-3 * time.Second)
	w.mu.Unlock()
	if !w.pausedSince(before) {
		t.Fatal("a pause not yet caught up by the ticker was not reported")
	}
	// The ticker catches up and records the gap.
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		seen := !w.lastPause.IsZero()
		w.mu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ticker did not record the gap")
		}
		time.Sleep(pauseTick)
	}
	if !w.pausedSince(before) {
		t.Fatal("a stream open across the pause was not told of it")
	}
	if w.pausedSince(time.Now()) {
		t.Fatal("a stream opened after the pause was told of it")
	}
}
