package custody_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/ksb-project/ksb/custody"
)

func custodies(holders ...string) []custody.CustodyRecord {
	out := make([]custody.CustodyRecord, len(holders))
	for i, h := range holders {
		out[i] = custody.CustodyRecord{Slot: uint64(i), CopyIndex: i, Holder: h, Status: custody.StatusFresh, Attested: true, LastProofHeight: 90}
	}
	return out
}

func TestCoverage(t *testing.T) {
	in := custody.CoverageInput{
		Members:   []string{"m1", "m2", "m3"},
		Threshold: 2,
		Copies:    3,
		Active:    []string{"m1", "m2", "m3", "a", "b", "c", "d"},
		Commitments: []custody.CommitmentRecord{
			// m1: an old version superseded by a newer one, fully held.
			{ID: 1, Owner: "m1", Height: 10, Superseded: true, Custodies: custodies("x", "y", "z")},
			{ID: 4, Owner: "m1", Height: 40, Custodies: custodies("a", "b", "c")},
			// m2: one failed, one stale (counts), one not attested, a repair.
			{ID: 2, Owner: "m2", Height: 20, Custodies: append(custodies("a", "b", "c"), custody.CustodyRecord{Slot: 3, CopyIndex: 0, Holder: "d", Status: custody.StatusPending, Attested: true})},
			// m3: holders that left the active set, itself, the same holder twice.
			{ID: 3, Owner: "m3", Height: 30, Custodies: custodies("gone", "m3", "a", "a")},
			// A non-member's commitment is ignored.
			{ID: 5, Owner: "stranger", Height: 50, Custodies: custodies("a", "b", "c")},
		},
	}
	in.Commitments[2].Custodies[0].Status = custody.StatusFailed
	in.Commitments[2].Custodies[1].Status = custody.StatusStale
	in.Commitments[2].Custodies[2].Attested = false

	got, err := custody.Coverage(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		holders []string
		covered bool
		id      uint64
	}{
		{[]string{"a", "b", "c"}, true, 4},
		{[]string{"b", "d"}, false, 2},
		{[]string{"a"}, false, 3},
	}
	for i, w := range want {
		m := got.Members[i]
		if m.Member != in.Members[i] || !slices.Equal(m.Holders, w.holders) || m.Covered != w.covered || m.Commitment != w.id || !m.HasCommitment {
			t.Errorf("member %d: %+v, want holders %v covered %v commitment %d", i, m, w.holders, w.covered, w.id)
		}
	}
	if got.Covered != 1 || got.Safe {
		t.Fatalf("covered %d safe %v, want 1 and not safe", got.Covered, got.Safe)
	}
	m2 := got.Members[1].Custody
	if len(m2) != 4 || m2[0].Counted || !m2[1].Counted || m2[2].Counted || !m2[3].Counted || m2[3].Slot != 3 || m2[0].CommitHeight != 20 || m2[1].LastProofHeight != 90 {
		t.Fatalf("m2 custody %+v", m2)
	}
	if m2[0].Status != custody.StatusFailed || m2[1].Status != custody.StatusStale {
		t.Fatalf("statuses %v %v", m2[0].Status, m2[1].Status)
	}

	// A fourth counted holder for m2 (d's repair proves, c attests): safe.
	in.Commitments[2].Custodies[2].Attested = true
	got, err = custody.Coverage(in)
	if err != nil || !got.Safe || got.Covered != 2 || !slices.Equal(got.Members[1].Holders, []string{"b", "c", "d"}) {
		t.Fatalf("%+v, %v", got, err)
	}
	// A holder leaves the active set: not counted any more.
	in.Active = slices.DeleteFunc(slices.Clone(in.Active), func(a string) bool { return a == "b" })
	got, _ = custody.Coverage(in)
	if got.Safe || got.Members[0].Covered || got.Members[1].Covered {
		t.Fatalf("after b left: %+v", got)
	}
}

func TestCoverageNoCommitment(t *testing.T) {
	got, err := custody.Coverage(custody.CoverageInput{Members: []string{"m1", "m2"}, Threshold: 1, Copies: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got.Safe || got.Covered != 0 || got.Members[0].HasCommitment || got.Members[0].Holders == nil || got.Members[0].Custody == nil {
		t.Fatalf("%+v", got)
	}
	// Only superseded versions: nothing live.
	got, _ = custody.Coverage(custody.CoverageInput{Members: []string{"m1"}, Threshold: 1, Copies: 1, Active: []string{"a"},
		Commitments: []custody.CommitmentRecord{{ID: 1, Owner: "m1", Superseded: true, Custodies: custodies("a")}}})
	if got.Safe || got.Members[0].HasCommitment {
		t.Fatalf("superseded counted: %+v", got)
	}
}

func TestCoverageRefuses(t *testing.T) {
	for name, in := range map[string]custody.CoverageInput{
		"threshold 0":         {Members: []string{"a"}, Threshold: 0, Copies: 3},
		"threshold > members": {Members: []string{"a"}, Threshold: 2, Copies: 3},
		"r = 0":               {Members: []string{"a"}, Threshold: 1, Copies: 0},
		"r too large":         {Members: []string{"a"}, Threshold: 1, Copies: custody.MaxCopies + 1},
		"duplicate member":    {Members: []string{"a", "a"}, Threshold: 1, Copies: 3},
	} {
		if _, err := custody.Coverage(in); !errors.Is(err, custody.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
