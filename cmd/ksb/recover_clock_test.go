package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/node"
	"github.com/ksb-project/ksb/recovery"
)

// TestWarnClock (issue 15): `ksb recover` warns when Run found this
// machine's clock beyond what nodes tolerate, naming the offset and what it
// was measured against, and says nothing otherwise.
func TestWarnClock(t *testing.T) {
	for _, c := range []struct {
		check *recovery.ClockCheck
		want  []string // empty: no warning
	}{
		{nil, nil},
		{&recovery.ClockCheck{Offset: 3 * time.Second, Against: recovery.ClockAgainstChain, Height: 9}, nil},
		{&recovery.ClockCheck{Offset: 10 * time.Minute, Against: recovery.ClockAgainstChain, Height: 9},
			[]string{"warning:", "10m0s ahead of the chain's latest block (block 9)", "NTP"}},
		{&recovery.ClockCheck{Offset: -10 * time.Minute, Against: recovery.ClockAgainstHolders, Samples: 3},
			[]string{"warning:", "10m0s behind the clocks of the 3 holder(s)", "NTP"}},
	} {
		var b bytes.Buffer
		warnClock(&b, c.check)
		if len(c.want) == 0 && b.Len() != 0 {
			t.Errorf("%+v: warned %q", c.check, b.String())
		}
		for _, w := range c.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%+v: warning %q lacks %q", c.check, b.String(), w)
			}
		}
	}
}

// TestStatusShowsClock (issue 15): `ksb status` prints the node's clock
// line from /status: OFF with the node's error (which names the offset)
// when it is beyond the tolerance, the offset and its reference otherwise.
func TestStatusShowsClock(t *testing.T) {
	off, right := 600.2, -0.4
	for _, c := range []struct {
		clock node.ClockStatus
		want  string
	}{
		{node.ClockStatus{}, "clock     offset not measured yet\n"},
		{node.ClockStatus{OffsetSeconds: &off, Against: "chain", ToleranceSeconds: 60, Error: "clock 10m0s ahead of the chain's latest block, beyond ±1m0s"},
			"clock     OFF: clock 10m0s ahead of the chain's latest block, beyond ±1m0s\n"},
		{node.ClockStatus{OffsetSeconds: &right, Against: "peers", ToleranceSeconds: 60, OK: true}, "clock     -0.4s from the peers (within ±60s)\n"},
	} {
		var b bytes.Buffer
		printStatus(&b, &node.Status{Clock: c.clock})
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("status lacks %q:\n%s", c.want, b.String())
		}
	}
}
