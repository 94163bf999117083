package statestore_test

import (
	"fmt"
	"os"

	"github.com/ksb-project/ksb/attest/internal/statestore"
)

// A block writes the working tree, Commit saves it as the next version, and
// a Snapshot of that version proves a key against its hash — which a client
// checks knowing nothing but the hash.
func Example() {
	dir, _ := os.MkdirTemp("", "statestore-example")
	defer os.RemoveAll(dir)
	st, err := statestore.Open(statestore.DefaultOptions(dir))
	if err != nil {
		panic(err)
	}
	defer st.Close()

	st.Set([]byte("s/node/a"), []byte(`{"height":1}`))
	st.Set([]byte("s/node/c"), []byte(`{"height":1}`))
	snap, err := st.Commit()
	if err != nil {
		panic(err)
	}
	appHash := snap.Hash()

	value, proof, _ := snap.Prove([]byte("s/node/a"))
	op, _ := statestore.NewProofOp([]byte("s/node/a"), proof)
	fmt.Println(snap.Version(), string(value), op.Type, statestore.VerifyProofOp(op, appHash, []byte("s/node/a"), value))

	_, absent, _ := snap.Prove([]byte("s/node/b"))
	op, _ = statestore.NewProofOp([]byte("s/node/b"), absent)
	fmt.Println(statestore.VerifyProofOp(op, appHash, []byte("s/node/b"), nil))
	// Output:
	// 1 {"height":1} ics23:iavl <nil>
	// <nil>
}
