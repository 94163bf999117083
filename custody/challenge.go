package custody

import (
	"slices"
)

// Held is one of a holder's counted custodies as the chain records it when
// an epoch starts.
type Held struct {
	// ID names the custody.
	ID CustodyID
	// Size is the committed size of the copy, 1 to MaxSize bytes.
	Size uint64
	// Pending: attested, never proven. It is challenged this epoch, so a new
	// custody is tested in the first epoch after its attestation.
	Pending bool
	// Stale: it missed its last challenge. It is challenged again this
	// epoch; a second miss fails it.
	Stale bool
	// Challenged: it was already challenged in the current round.
	Challenged bool
}

// Challenge is one challenged custody and the segment its holder must prove.
type Challenge struct {
	Custody CustodyID
	Segment uint64
}

// Challenges picks which of holder's counted custodies held are challenged
// in an epoch, and the segment of each, from the epoch's seed (EpochSeed).
// position is the epoch's place in its round of round epochs (epoch mod
// round, 0 ≤ position < round). The rules, from the custody design:
//
//   - every Pending and every Stale custody is challenged;
//   - of the custodies not yet Challenged this round, U, at least
//     k = ceil(|U| / (round − position)) are challenged (the Pending and
//     Stale ones among them count), the others chosen uniformly by a
//     partial Fisher–Yates shuffle over U in ID order, driven by the stream
//     of sha256("ksb/challenge/v1", seed, holder); so each custody is
//     challenged exactly once per round, at an epoch nobody knows in
//     advance (the caller marks the chosen ones Challenged and clears the
//     marks when a round starts);
//   - a holder with custodies gets at least one challenge every epoch (one
//     drawn from all of held once its round's share is done), so a holder
//     that lost everything misses in every epoch and fails in two.
//
// So a custody whose copy is lost is challenged again within 2R−1 epochs
// (R − position if it was not yet challenged this round), is stale then and
// failed one epoch later: within 2R epochs of the loss at worst, R + 1 if
// lost as a round starts (TestLostCopyFailsWithinTwoRounds checks both).
//
// The segment of each is SegmentIndex(seed, custody, size). The result is in
// custody ID order and depends only on seed, holder, position, round and the
// set held, not its order. It refuses (ErrInvalidArgument) round = 0,
// position ≥ round, a size outside 1..MaxSize and a custody listed twice.
func Challenges(seed [HashSize]byte, holder string, held []Held, position, round uint64) ([]Challenge, error) {
	if round == 0 || position >= round {
		return nil, badArg("epoch position %d in a round of %d epochs", position, round)
	}
	hs := slices.Clone(held)
	slices.SortFunc(hs, func(a, b Held) int { return a.ID.Compare(b.ID) })
	for i, h := range hs {
		if err := checkSize(h.Size); err != nil {
			return nil, badArg("custody %d/%d: %v", h.ID.Commitment, h.ID.Slot, err)
		}
		if i > 0 && hs[i-1].ID == h.ID {
			return nil, badArg("custody %d/%d listed twice", h.ID.Commitment, h.ID.Slot)
		}
	}
	if len(hs) == 0 {
		return nil, nil
	}

	chosen := make([]bool, len(hs))
	var open []int // not yet challenged this round and not already chosen
	unchallenged, counted := 0, 0
	for i, h := range hs {
		chosen[i] = h.Pending || h.Stale
		if h.Challenged {
			continue
		}
		unchallenged++
		if chosen[i] {
			counted++
		} else {
			open = append(open, i)
		}
	}
	left := round - position
	k := (uint64(unchallenged) + left - 1) / left
	st := NewStream(challengeSeed(seed, holder))
	need := int(k) - counted // k ≤ unchallenged, so need ≤ len(open)
	for i := 0; i < need; i++ {
		j := i + int(st.Uint64n(uint64(len(open)-i)))
		open[i], open[j] = open[j], open[i]
		chosen[open[i]] = true
	}
	if !slices.Contains(chosen, true) {
		chosen[st.Uint64n(uint64(len(hs)))] = true
	}

	var out []Challenge
	for i, h := range hs {
		if chosen[i] {
			out = append(out, Challenge{Custody: h.ID, Segment: SegmentIndex(seed, h.ID, h.Size)})
		}
	}
	return out, nil
}

// challengeSeed is the seed of holder's draws in the epoch of seed.
func challengeSeed(seed [HashSize]byte, holder string) [HashSize]byte {
	s := newSeedHash(tagChallenge)
	s.bytes(seed[:])
	s.bytes([]byte(holder))
	return s.sum()
}
