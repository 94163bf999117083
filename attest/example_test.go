package attest_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
)

// A single-validator chain with two nodes and a 2-of-2 vault: each node
// attests that it holds the other's share, and the vault becomes safe.
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
	for _, holder := range []struct{ id, owner *identity.Identity }{{alice, bob}, {bob, alice}} {
		_, err := attest.NewSender(client, holder.id).Send(ctx, &attest.Attest{Entries: []attest.Entry{{
			Owner: holder.owner.Address("thor"), Vault: vault, Digest: [32]byte{1}, Size: 60_000,
		}}})
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	cov, _ := client.Coverage(ctx, vault)
	v := cov.Vaults[0]
	fmt.Printf("covered %d of %d members, threshold %d, safe: %v\n", v.Covered, len(v.Members), v.Threshold, v.Safe)
	// Output: covered 2 of 2 members, threshold 2, safe: true
}
