package custody_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ksb-project/ksb/custody"
)

func TestStatusTransitions(t *testing.T) {
	for _, c := range []struct {
		from           custody.Status
		proved, missed custody.Status
	}{
		{custody.StatusPending, custody.StatusFresh, custody.StatusStale},
		{custody.StatusFresh, custody.StatusFresh, custody.StatusStale},
		{custody.StatusStale, custody.StatusFresh, custody.StatusFailed},
		{custody.StatusFailed, custody.StatusFailed, custody.StatusFailed},
		{0, 0, 0},
	} {
		if got := c.from.Proved(); got != c.proved {
			t.Errorf("%v proved: %v, want %v", c.from, got, c.proved)
		}
		if got := c.from.Missed(); got != c.missed {
			t.Errorf("%v missed: %v, want %v", c.from, got, c.missed)
		}
	}
}

func TestStatusText(t *testing.T) {
	for s, name := range map[custody.Status]string{
		custody.StatusPending: "pending", custody.StatusFresh: "fresh", custody.StatusStale: "stale", custody.StatusFailed: "failed",
	} {
		if s.String() != name || !s.Valid() {
			t.Errorf("%d: %q", s, s)
		}
		b, err := json.Marshal(s)
		if err != nil || string(b) != `"`+name+`"` {
			t.Errorf("JSON %s, %v", b, err)
		}
		var back custody.Status
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("round trip %v, %v", back, err)
		}
	}
	for _, bad := range []custody.Status{0, 5, 255} {
		if bad.Valid() || bad.String() != "unknown" {
			t.Errorf("%d valid", bad)
		}
		if _, err := json.Marshal(bad); err == nil {
			t.Errorf("status %d marshals", bad)
		}
	}
	for _, bad := range []string{"", "Fresh", "unknown", "ok"} {
		if _, err := custody.ParseStatus(bad); !errors.Is(err, custody.ErrInvalidArgument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestHolderFails(t *testing.T) {
	miss := custody.EpochTally{Challenged: 3}
	some := custody.EpochTally{Challenged: 3, Answered: 1}
	none := custody.EpochTally{}
	for _, c := range []struct {
		prev, cur custody.EpochTally
		fails     bool
	}{
		{miss, miss, true},
		{some, miss, false},
		{miss, some, false},
		{none, miss, false}, // not challenged last epoch: one miss so far
		{miss, none, false},
	} {
		if got := custody.HolderFails(c.prev, c.cur); got != c.fails {
			t.Errorf("%+v then %+v: %v", c.prev, c.cur, got)
		}
	}
}
