package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/ksb-project/ksb/recovery"
)

// Recover a node's keyshares into ./restored from its mnemonic alone: through
// the chain, or over gossip from a known peer if the chain does not answer.
func ExampleRun() {
	rep, err := recovery.Run(context.Background(), recovery.Options{
		Mnemonic:  os.Getenv("KSB_MNEMONIC"),
		OutDir:    "restored",
		RPC:       "http://127.0.0.1:26657",
		Bootstrap: []string{"/ip4/192.0.2.7/tcp/6540/p2p/16Uiu2HAmLnNJ25GGPQmX5eA9bpZgNjpDg22HRa13TF1ZL84LGhYp"},
		Progress:  os.Stderr,
	})
	var inc *recovery.IncompleteError
	switch {
	case errors.As(err, &inc):
		log.Printf("not recovered: %v", inc.Vaults())
	case err != nil:
		log.Fatal(err)
	}
	for _, v := range rep.Recovered() {
		fmt.Printf("%s from %s: %d bytes\n", v.File, v.Holder, v.Bytes)
	}
}

func ExampleFileName() {
	name, err := recovery.FileName("thorpub1addwnpepqgudlwpmp78qk5q3xhm4nhvys2y0h8grq5vqw654jpetg98x4w7ycf0rzzr")
	fmt.Println(name, err)
	_, err = recovery.FileName("../../etc/cron.d/x")
	fmt.Println(err)
	// Output:
	// localstate-thorpub1addwnpepqgudlwpmp78qk5q3xhm4nhvys2y0h8grq5vqw654jpetg98x4w7ycf0rzzr.json <nil>
	// vault key is not a safe file name: byte 0x2f at 2
}
