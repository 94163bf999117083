package verify_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"log"

	"github.com/ksb-project/ksb/verify"
)

// Example verifies a coverage answer against two RPC nodes from a trusted
// height and header hash. (Compiled, not run: it needs a chain.)
func Example() {
	ctx := context.Background()
	hash, _ := hex.DecodeString("425C8ED7791DDC99D3D1BCAD8C85BA967E5C7D01043DC81086CCB115BF14361C") // header 1, from a node you run
	c, err := verify.New(ctx, verify.Config{
		ChainID:   "ksb-devnet",
		Primary:   "http://rpc-a.example:26657",
		Witnesses: []string{"http://rpc-b.example:26657"},
		Anchor:    verify.Anchor{Height: 1, Hash: hash},
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, verify.ErrHeaderVerification), verify.ErrWitnessConflict, …
	}
	s, err := c.Latest(ctx) // header L verified; the state of L-1
	if err != nil {
		log.Fatal(err)
	}
	cov, err := s.Coverage(ctx, "") // every live vault, from proven reads only
	if err != nil {
		log.Fatal(err) // verify.ErrProofInvalid, ErrValueMismatch, ErrMissingProof, …
	}
	for _, v := range cov.Vaults {
		fmt.Printf("%s safe=%v (proven at height %d, app hash %X)\n", v.PubKey, v.Safe, s.Height, s.AppHash)
	}
}
