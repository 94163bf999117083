package store_test

import (
	"crypto/sha256"
	"fmt"
	"log"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/store"
)

func Example() {
	s, err := store.Open(store.DefaultOptions("").WithInMemory(true))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	owner := secp256k1.PrivKeyFromBytes([]byte{42}).PubKey().SerializeCompressed()
	copy0 := []byte("copy 0 of a sealed keyshare")
	// r = 1: the copy root is the commitment root, and the path is empty.
	e := store.Entry{
		Custody: custody.CustodyID{Commitment: 17, Slot: 0},
		Owner:   owner, Vault: "thorpub1addwnpepqexamplevault",
		CopyIndex: 0, Copies: 1,
		Digest: sha256.Sum256(copy0), Size: int64(len(copy0)),
	}
	if _, err := s.Put(e, copy0); err != nil {
		log.Fatal(err)
	}
	added, err := s.Put(e, copy0) // the owner's retry
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added again:", added)

	got, blob, err := s.Get(custody.CustodyID{Commitment: 17, Slot: 0})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (copy %d of %d)\n", blob, got.CopyIndex, got.Copies)
	n, size, _ := s.Usage(owner)
	fmt.Println(n, "copy,", size, "bytes")
	// Output:
	// added again: false
	// copy 0 of a sealed keyshare (copy 0 of 1)
	// 1 copy, 27 bytes
}
