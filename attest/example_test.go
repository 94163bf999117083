package attest_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
)

// A single-validator chain with two nodes and a 2-of-2 vault, r = 1: each
// node commits its share, the chain assigns the other node as its holder,
// the holder attests, and the vault becomes safe.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home, _ := os.MkdirTemp("", "ksb-chain-")
	defer os.RemoveAll(home)

	// Published BIP39 test mnemonics, never real keys.
	alice, _ := identity.New("legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title")
	bob, _ := identity.New("letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless")
	authority, _ := identity.New("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote")
	const vault = "thorpub1addwnpepqexamplevault"

	chain, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{
		Home:    home,
		ChainID: "ksb-example",
		Genesis: attest.Genesis{
			Authority:   authority.PubKeyHex(),
			Replication: 1,
			Nodes: []attest.NodeSpec{
				{PubKey: alice.PubKeyHex(), Multiaddrs: []string{"/ip4/127.0.0.1/tcp/6540"}},
				{PubKey: bob.PubKeyHex(), Multiaddrs: []string{"/ip4/127.0.0.1/tcp/6550"}},
			},
			Vaults: []attest.VaultSpec{{PubKey: vault, Members: []string{alice.Address("thor"), bob.Address("thor")}, Threshold: 2}},
		},
		BlockInterval: 100 * time.Millisecond,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer chain.Stop()

	client, _ := attest.NewClient(chain.RPCURL())
	senders := map[string]*attest.Sender{
		alice.Address("thor"): attest.NewSender(client, alice),
		bob.Address("thor"):   attest.NewSender(client, bob),
	}
	for _, owner := range []*identity.Identity{alice, bob} {
		// The owner's sealed copy (here: random bytes) and its commitment.
		blob := make([]byte, 4096)
		rand.Read(blob)
		cm, _ := custody.NewCommitment([][]byte{blob})
		res, err := senders[owner.Address("thor")].Commit(ctx, attest.ShareCommit{Vault: 1, Size: cm.Size, Root: cm.Root})
		if err != nil {
			fmt.Println(err)
			return
		}
		// The chain chose the holder; it receives the copy and attests.
		a := res.Assignments()[0]
		if _, err := senders[a.Holder].Attest(ctx, a.Custody); err != nil {
			fmt.Println(err)
			return
		}
	}
	cov, _ := client.Coverage(ctx, vault)
	v := cov.Vaults[0]
	fmt.Printf("covered %d of %d members, threshold %d, safe: %v\n", v.Covered, len(v.Members), v.Threshold, v.Safe)
	// Output: covered 2 of 2 members, threshold 2, safe: true
}
