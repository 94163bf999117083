package custody_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ksb-project/ksb/custody"
)

// The whole cycle: an owner commits to three copies, a holder checks the
// copy it receives, the chain challenges it, the holder proves, the chain
// verifies; another holder's copy does not answer.
func Example() {
	// Owner: three copies of one share version, as envelope.SealCopies
	// makes them (here stand-in bytes of equal size).
	copies := [][]byte{
		bytes.Repeat([]byte("copy zero "), 300),
		bytes.Repeat([]byte("copy one  "), 300),
		bytes.Repeat([]byte("copy two  "), 300),
	}
	c, err := custody.NewCommitment(copies)
	if err != nil {
		panic(err)
	}
	// The owner posts {vault, c.Size, c.Root}; the chain assigns holders.
	// It pushes copy 1 with its commit path to the holder of slot 1.
	path, _ := custody.CommitPath(c.CopyRoots, 1)

	// Holder: checks the copy against the committed root before keeping it.
	fmt.Println("copy accepted:", custody.VerifyCopy(c.Root, c.Size, 3, 1, path, copies[1]))

	// Chain, at the first block of epoch 7: the challenged segment.
	seed := custody.EpochSeed("ksb-devnet", 7, []byte("hash of the epoch's first block"))
	id := custody.CustodyID{Commitment: 12, Slot: 1}
	seg := custody.SegmentIndex(seed, id, c.Size)

	// Holder: proves from what it stores.
	p, _ := custody.ProveHeld(copies[1], 1, 3, path, seg)
	fmt.Println("proof verifies:", custody.Verify(c.Root, c.Size, 3, 1, seg, p))

	// A holder that lost copy 1 and answers with copy 2's segment.
	other, _ := custody.Prove(copies[2], c.CopyRoots, 2, seg)
	p.Data, p.CopyPath = other.Data, other.CopyPath
	err = custody.Verify(c.Root, c.Size, 3, 1, seg, p)
	fmt.Println("another copy refused:", errors.Is(err, custody.ErrPathMismatch))
	// Output:
	// copy accepted: <nil>
	// proof verifies: <nil>
	// another copy refused: true
}

func ExampleAssign() {
	active := []string{"thor1a", "thor1b", "thor1c", "thor1d", "thor1e", "thor1f"}
	owner := "thor1c"
	seed := custody.AssignSeed("ksb-devnet", []byte("hash of the block with the Commit"), 12)
	holders := custody.Assign(seed, active, func(a string) bool { return a == owner }, 3)
	fmt.Println(len(holders), holders[0] != owner && holders[1] != owner && holders[2] != owner)
	// The same seed and set give the same holders on every replica.
	again := custody.Assign(seed, []string{"thor1f", "thor1e", "thor1d", "thor1c", "thor1b", "thor1a"}, func(a string) bool { return a == owner }, 3)
	fmt.Println(fmt.Sprint(again) == fmt.Sprint(holders))
	// Output:
	// 3 true
	// true
}

func ExampleChallenges() {
	held := []custody.Held{
		{ID: custody.CustodyID{Commitment: 1, Slot: 0}, Size: 27142},
		{ID: custody.CustodyID{Commitment: 2, Slot: 2}, Size: 2162, Pending: true},
		{ID: custody.CustodyID{Commitment: 3, Slot: 1}, Size: 27142},
		{ID: custody.CustodyID{Commitment: 4, Slot: 0}, Size: 2162},
	}
	seed := custody.EpochSeed("ksb-devnet", 8, []byte("hash of the epoch's first block"))
	// Epoch 8 is position 0 of a round of 4 epochs: ceil(4/4) = 1 is due,
	// and the pending custody is challenged anyway (and counts).
	cs, _ := custody.Challenges(seed, "thor1holder", held, 0, 4)
	for _, c := range cs {
		fmt.Printf("commitment %d slot %d, segment below %d: %v\n", c.Custody.Commitment, c.Custody.Slot,
			custody.Leaves(2162), c.Segment < custody.Leaves(2162))
	}
	// Output:
	// commitment 2 slot 2, segment below 34: true
}

func ExampleCoverage() {
	cov, _ := custody.Coverage(custody.CoverageInput{
		Members:   []string{"thor1m1", "thor1m2"},
		Threshold: 1,
		Copies:    2,
		Active:    []string{"thor1m1", "thor1m2", "thor1a", "thor1b"},
		Commitments: []custody.CommitmentRecord{{
			ID: 7, Owner: "thor1m1", Height: 40,
			Custodies: []custody.CustodyRecord{
				{Slot: 0, Holder: "thor1a", Status: custody.StatusFresh, Attested: true, LastProofHeight: 95},
				{Slot: 1, CopyIndex: 1, Holder: "thor1b", Status: custody.StatusStale, Attested: true, LastProofHeight: 60},
			},
		}},
	})
	for _, m := range cov.Members {
		fmt.Println(m.Member, m.Holders, m.Covered)
	}
	fmt.Println("safe:", cov.Safe)
	// Output:
	// thor1m1 [thor1a thor1b] true
	// thor1m2 [] false
	// safe: true
}
