package custody_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ksb-project/ksb/custody"
)

func heldN(n int) []custody.Held {
	out := make([]custody.Held, n)
	for i := range out {
		out[i] = custody.Held{ID: custody.CustodyID{Commitment: uint64(i / 3), Slot: uint64(i % 3)}, Size: 27142 + uint64(i)}
	}
	return out
}

func epochSeed(e uint64) [32]byte {
	return custody.EpochSeed("ksb-test", e, []byte(fmt.Sprint("block", e)))
}

func challenges(t testing.TB, seed [32]byte, holder string, held []custody.Held, j, r uint64) []custody.Challenge {
	t.Helper()
	cs, err := custody.Challenges(seed, holder, held, j, r)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// With no pending or stale custody, a round of R epochs challenges every
// custody exactly once, ceil(left / epochs left) per epoch.
func TestChallengesEachCustodyOncePerRound(t *testing.T) {
	const n, round = 30, 4
	held := heldN(n)
	for r := uint64(0); r < 3; r++ {
		for i := range held {
			held[i].Challenged = false
		}
		count := map[custody.CustodyID]int{}
		for j := uint64(0); j < round; j++ {
			left := 0
			for _, h := range held {
				if !h.Challenged {
					left++
				}
			}
			cs := challenges(t, epochSeed(r*round+j), "thor1h", held, j, round)
			if want := (left + int(round-j) - 1) / int(round-j); len(cs) != want {
				t.Fatalf("round %d epoch %d: %d challenges, want %d", r, j, len(cs), want)
			}
			for _, c := range cs {
				count[c.Custody]++
				i := slices.IndexFunc(held, func(h custody.Held) bool { return h.ID == c.Custody })
				if held[i].Challenged {
					t.Fatalf("custody %v challenged twice in a round", c.Custody)
				}
				held[i].Challenged = true
				if c.Segment >= custody.Leaves(held[i].Size) || c.Segment != custody.SegmentIndex(epochSeed(r*round+j), c.Custody, held[i].Size) {
					t.Fatalf("segment %d", c.Segment)
				}
			}
		}
		if len(count) != n {
			t.Fatalf("round %d: %d of %d custodies challenged", r, len(count), n)
		}
	}
}

func TestChallengesPendingStaleAndMinimum(t *testing.T) {
	held := heldN(10)
	for i := range held {
		held[i].Challenged = true
	}
	held[2].Pending = true
	held[7].Stale = true
	cs := challenges(t, epochSeed(1), "thor1h", held, 1, 4)
	if len(cs) != 2 || cs[0].Custody != held[2].ID || cs[1].Custody != held[7].ID {
		t.Fatalf("%v: want exactly the pending and the stale custody", cs)
	}
	// Everything done this round, nothing pending or stale: still one.
	held[2].Pending, held[7].Stale = false, false
	if cs := challenges(t, epochSeed(2), "thor1h", held, 2, 4); len(cs) != 1 {
		t.Fatalf("%v: want one challenge", cs)
	}
	// Pending and stale count towards the round's share: 10 left, 2 epochs
	// left ⇒ 5, of which 2 are the pending and stale ones.
	for i := range held {
		held[i].Challenged = false
	}
	held[2].Pending, held[7].Stale = true, true
	cs = challenges(t, epochSeed(3), "thor1h", held, 2, 4)
	if len(cs) != 5 || !slices.ContainsFunc(cs, func(c custody.Challenge) bool { return c.Custody == held[2].ID }) ||
		!slices.ContainsFunc(cs, func(c custody.Challenge) bool { return c.Custody == held[7].ID }) {
		t.Fatalf("%v", cs)
	}
	// The last epoch of a round takes all that are left.
	if cs := challenges(t, epochSeed(4), "thor1h", held, 3, 4); len(cs) != 10 {
		t.Fatalf("last epoch: %d challenges, want 10", len(cs))
	}
	if cs := challenges(t, epochSeed(4), "thor1h", nil, 0, 4); cs != nil {
		t.Fatalf("no custodies: %v", cs)
	}
}

func TestChallengesDeterministicAndOrderFree(t *testing.T) {
	held := heldN(50)
	want := challenges(t, epochSeed(7), "thor1h", held, 1, 6)
	rev := slices.Clone(held)
	slices.Reverse(rev)
	if got := challenges(t, epochSeed(7), "thor1h", rev, 1, 6); !slices.Equal(got, want) {
		t.Fatalf("order changed the result: %v vs %v", got, want)
	}
	if !slices.IsSortedFunc(want, func(a, b custody.Challenge) int { return a.Custody.Compare(b.Custody) }) {
		t.Fatal("not in custody order")
	}
	// Holders and epochs draw independently.
	differ := 0
	for i := range 20 {
		a := challenges(t, epochSeed(7), fmt.Sprint("thor1h", i), held, 1, 6)
		b := challenges(t, epochSeed(8), fmt.Sprint("thor1h", i), held, 1, 6)
		if !slices.Equal(a, want) {
			differ++
		}
		if !slices.Equal(a, b) {
			differ++
		}
	}
	if differ < 35 {
		t.Fatalf("only %d of 40 draws differ", differ)
	}
}

func TestChallengesRefuses(t *testing.T) {
	held := heldN(3)
	dup := append(heldN(3), heldN(1)...)
	zero := heldN(3)
	zero[1].Size = 0
	huge := heldN(3)
	huge[2].Size = custody.MaxSize + 1
	for name, c := range map[string]struct {
		held     []custody.Held
		j, round uint64
	}{
		"round 0":      {held, 0, 0},
		"j = round":    {held, 4, 4},
		"duplicate":    {dup, 0, 4},
		"size 0":       {zero, 0, 4},
		"over MaxSize": {huge, 0, 4},
	} {
		if _, err := custody.Challenges(epochSeed(1), "h", c.held, c.j, c.round); !errors.Is(err, custody.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

// holderSim runs the chain's side of the challenge rules for one holder:
// flags, statuses, rounds.
type holderSim struct {
	held   []custody.Held
	status map[custody.CustodyID]custody.Status
	lost   map[custody.CustodyID]bool
	prev   custody.EpochTally
	failed bool
}

func newHolderSim(n int) *holderSim {
	s := &holderSim{held: heldN(n), status: map[custody.CustodyID]custody.Status{}, lost: map[custody.CustodyID]bool{}}
	for _, h := range s.held {
		s.status[h.ID] = custody.StatusFresh
	}
	return s
}

// epoch runs epoch e; it returns the custodies that failed in it.
func (s *holderSim) epoch(t testing.TB, e, round uint64, seed [32]byte) (failed []custody.CustodyID) {
	j := e % round
	var counted []custody.Held
	for i := range s.held {
		if j == 0 { // a round starts: nothing challenged yet
			s.held[i].Challenged = false
		}
		h := s.held[i]
		st := s.status[h.ID]
		if st == custody.StatusFailed {
			continue
		}
		h.Pending, h.Stale = st == custody.StatusPending, st == custody.StatusStale
		counted = append(counted, h)
	}
	cs := challenges(t, seed, "thor1h", counted, j, round)
	tally := custody.EpochTally{Challenged: len(cs)}
	for _, c := range cs {
		i := slices.IndexFunc(s.held, func(h custody.Held) bool { return h.ID == c.Custody })
		s.held[i].Challenged = true
		if s.lost[c.Custody] {
			s.status[c.Custody] = s.status[c.Custody].Missed()
			if s.status[c.Custody] == custody.StatusFailed {
				failed = append(failed, c.Custody)
			}
		} else {
			tally.Answered++
			s.status[c.Custody] = s.status[c.Custody].Proved()
		}
	}
	if custody.HolderFails(s.prev, tally) {
		s.failed = true
	}
	s.prev = tally
	return failed
}

// One lost copy: stale at its next challenge, which comes at most 2R−1
// epochs after the loss (R − position if it was not yet challenged this
// round), failed one epoch later. Checked for every epoch position of the
// loss and 40 seed sequences.
func TestLostCopyFailsWithinTwoRounds(t *testing.T) {
	const n, round = 24, 6
	worst, fromRoundStart := uint64(0), uint64(0)
	for trial := uint64(0); trial < 40; trial++ {
		for lossAt := uint64(0); lossAt < round; lossAt++ {
			s := newHolderSim(n)
			victim := s.held[int(trial)%n].ID
			e := uint64(0)
			for ; e < round+lossAt; e++ { // a full round first, then the loss
				s.epoch(t, e, round, epochSeed(trial*1000+e))
			}
			s.lost[victim] = true
			start := e
			for ; ; e++ {
				if e-start > 2*round {
					t.Fatalf("trial %d: custody not failed %d epochs after its loss", trial, e-start)
				}
				if f := s.epoch(t, e, round, epochSeed(trial*1000+e)); slices.Contains(f, victim) {
					break
				}
			}
			took := e - start + 1 // epochs from the loss to the failing one, inclusive
			worst = max(worst, took)
			if lossAt == 0 {
				fromRoundStart = max(fromRoundStart, took)
			}
			if s.failed {
				t.Fatal("holder failed as a whole for one lost copy")
			}
		}
	}
	if worst > 2*round || fromRoundStart > round+1 {
		t.Fatalf("worst %d epochs (bound %d), from a round's start %d (bound %d)", worst, 2*round, fromRoundStart, round+1)
	}
	t.Logf("one lost copy failed within %d epochs at worst (R = %d); lost at a round's start, within %d", worst, round, fromRoundStart)
}

// A holder that lost everything misses every challenge of the next two
// epochs and fails as a whole, whatever the position in the round.
func TestHolderThatLostEverythingFailsInTwoEpochs(t *testing.T) {
	const round = 8
	for lossAt := uint64(0); lossAt < 2*round; lossAt++ {
		s := newHolderSim(30)
		for e := uint64(0); e < lossAt; e++ {
			s.epoch(t, e, round, epochSeed(e))
		}
		for _, h := range s.held {
			s.lost[h.ID] = true
		}
		s.epoch(t, lossAt, round, epochSeed(lossAt))
		if s.failed {
			t.Fatal("failed after one epoch")
		}
		s.epoch(t, lossAt+1, round, epochSeed(lossAt+1))
		if !s.failed {
			t.Fatalf("lost at epoch %d: not failed two epochs later", lossAt)
		}
	}
}
