package store_test

import (
	"crypto/sha256"
	"fmt"
	"log"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/ksb-project/ksb/store"
)

func Example() {
	s, err := store.Open(store.DefaultOptions("").WithInMemory(true))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	owner := secp256k1.PrivKeyFromBytes([]byte{42}).PubKey().SerializeCompressed()
	vault := "thorpub1addwnpepqexamplevault"

	first := []byte("sealed keyshare, first churn")
	if _, err := s.Put(store.Entry{Owner: owner, Vault: vault, Digest: sha256.Sum256(first), Size: int64(len(first))}, first); err != nil {
		log.Fatal(err)
	}
	second := []byte("sealed keyshare, after a re-seal")
	old, err := s.Put(store.Entry{Owner: owner, Vault: vault, Digest: sha256.Sum256(second), Size: int64(len(second))}, second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("replaced a %d-byte blob\n", old.Size)

	_, blob, err := s.Get(owner, vault)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", blob)
	n, size, _ := s.Usage(owner)
	fmt.Println(n, "blob,", size, "bytes")
	// Output:
	// replaced a 28-byte blob
	// sealed keyshare, after a re-seal
	// 1 blob, 32 bytes
}
