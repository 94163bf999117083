package p2p_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/p2p"
)

func peers(n int) []peer.ID {
	out := make([]peer.ID, n)
	for i := range out {
		out[i] = peer.ID(fmt.Sprintf("peer-%02d", i))
	}
	return out
}

func setOf(ps []peer.ID) map[peer.ID]bool {
	m := map[peer.ID]bool{}
	for _, p := range ps {
		m[p] = true
	}
	return m
}

func TestSelectRandom(t *testing.T) {
	all := peers(20)
	self := all[0]
	recent := setOf(all[1:6]) // 5 recent nodes
	pool := p2p.Pool{Self: self, Active: append(all, all[3]), Recent: func(p peer.ID) bool { return recent[p] }}
	seen := map[peer.ID]int{}
	for i := 0; i < 200; i++ {
		got, err := p2p.SelectHolders(p2p.StrategyRandom, 3, pool)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || len(setOf(got)) != 3 {
			t.Fatalf("got %v, want 3 distinct", got)
		}
		for _, p := range got {
			if p == self {
				t.Fatal("self selected")
			}
			if !recent[p] {
				t.Fatalf("%s chosen while 5 recent nodes were available", p)
			}
			seen[p]++
		}
	}
	// 600 draws over 5 recent nodes: each is drawn about 120 times; that one
	// is never drawn has probability (2/5)^200 per node.
	if len(seen) != 5 {
		t.Fatalf("draws covered %d of the 5 recent nodes: %v", len(seen), seen)
	}
}

func TestSelectFallsBackAndReplaces(t *testing.T) {
	all := peers(6)
	recent := setOf(all[1:2]) // only one recent node
	pool := p2p.Pool{Self: all[0], Active: all, Recent: func(p peer.ID) bool { return recent[p] }}
	got, err := p2p.SelectHolders(p2p.StrategyRandom, 3, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != all[1] {
		t.Fatalf("got %v: want 3 holders, the recent one first", got)
	}
	// got[1] failed: draw one replacement, excluding everything chosen.
	more, err := p2p.SelectHolders(p2p.StrategyRandom, 1, pool, got...)
	if err != nil {
		t.Fatal(err)
	}
	if len(more) != 1 || setOf(got)[more[0]] || more[0] == all[0] {
		t.Fatalf("replacement %v overlaps %v or is self", more, got)
	}
	// Fewer candidates than asked: all of them, no error.
	few, err := p2p.SelectHolders(p2p.StrategyRandom, 10, pool)
	if err != nil || len(few) != 5 {
		t.Fatalf("asked 10 of 5 candidates: %v, %v", few, err)
	}
	if _, err := p2p.SelectHolders(p2p.StrategyRandom, 1, p2p.Pool{Self: all[0], Active: all[:1]}); !errors.Is(err, p2p.ErrNoCandidates) {
		t.Fatalf("only self: err = %v", err)
	}
}

func TestSelectVault(t *testing.T) {
	all := peers(10)
	members := all[:4]
	pool := p2p.Pool{Self: all[0], Active: all, VaultMembers: members}
	got, err := p2p.SelectHolders(p2p.StrategyVault, 3, pool)
	if err != nil {
		t.Fatal(err)
	}
	want := setOf(members[1:])
	if len(got) != 3 {
		t.Fatalf("got %v, want the 3 fellow members", got)
	}
	for _, p := range got {
		if !want[p] {
			t.Fatalf("%s is not a fellow member", p)
		}
	}
	if _, err := p2p.ParseStrategy("nearest"); !errors.Is(err, p2p.ErrBadConfig) {
		t.Fatalf("unknown strategy: err = %v", err)
	}
}
