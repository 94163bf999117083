package custody_test

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/internal/fixtures"
)

// testMnemonic is a published BIP39 test vector.
const testMnemonic = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"

// randomBlob returns n deterministic pseudo-random bytes.
func randomBlob(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}).Read(b)
	return b
}

// owner is what an owner has after sealing r copies and committing.
type owner struct {
	copies [][]byte
	c      custody.Commitment
}

func newOwner(t testing.TB, copies [][]byte) owner {
	t.Helper()
	c, err := custody.NewCommitment(copies)
	if err != nil {
		t.Fatal(err)
	}
	return owner{copies: copies, c: c}
}

func (o owner) path(t testing.TB, i int) [][]byte {
	t.Helper()
	p, err := custody.CommitPath(o.c.CopyRoots, i)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (o owner) prove(t testing.TB, i int, seg uint64) custody.Proof {
	t.Helper()
	p, err := custody.Prove(o.copies[i], o.c.CopyRoots, i, seg)
	if err != nil {
		t.Fatalf("Prove(copy %d, segment %d): %v", i, seg, err)
	}
	return p
}

var (
	sealedOnce sync.Once
	sealed     map[string][][]byte
	sealedErr  error
)

// sealedCopies returns three copies of party 0's share of the ECDSA and
// EdDSA fixtures ("ecdsa", "eddsa"), sealed once per test binary at work
// factor 1 (the size does not depend on the work factor's value, only on
// its digits). Callers must not modify them.
func sealedCopies(t testing.TB, alg string) [][]byte {
	t.Helper()
	sealedOnce.Do(func() {
		sealed = map[string][][]byte{}
		for name, get := range map[string]func(int) ([]byte, error){"ecdsa": fixtures.ECDSA, "eddsa": fixtures.EdDSA} {
			plain, err := get(0)
			if err != nil {
				sealedErr = err
				return
			}
			c, err := envelope.SealCopies(plain, testMnemonic, 3, &envelope.SealOptions{WorkFactor: 1, AllowLowWorkFactor: true})
			if err != nil {
				sealedErr = err
				return
			}
			sealed[name] = c
		}
	})
	if sealedErr != nil {
		t.Fatal(sealedErr)
	}
	return sealed[alg]
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func clonePath(p [][]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = bytes.Clone(p[i])
	}
	return out
}

func cloneProof(p custody.Proof) custody.Proof {
	p.Data = bytes.Clone(p.Data)
	p.CopyPath = clonePath(p.CopyPath)
	p.CommitPath = clonePath(p.CommitPath)
	return p
}
