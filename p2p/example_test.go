package p2p_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// Example commits a share version of one copy, pushes the copy from its
// owner to the holder the chain assigned it to, checks the receipt, and
// fetches the copy back.
func Example() {
	newNode := func() (*identity.Identity, error) {
		m, err := identity.Generate()
		if err != nil {
			return nil, err
		}
		return identity.New(m)
	}
	ownerID, err := newNode()
	if err != nil {
		log.Fatal(err)
	}
	holderID, err := newNode()
	if err != nil {
		log.Fatal(err)
	}
	listen := []string{"/ip4/127.0.0.1/tcp/0"}
	ownerHost, err := p2p.NewHost(p2p.HostConfig{Identity: ownerID, Listen: listen})
	if err != nil {
		log.Fatal(err)
	}
	defer ownerHost.Close()
	holderHost, err := p2p.NewHost(p2p.HostConfig{Identity: holderID, Listen: listen})
	if err != nil {
		log.Fatal(err)
	}
	defer holderHost.Close()

	dir, err := os.MkdirTemp("", "ksb-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(store.DefaultOptions(dir).WithLogger(quietLogger()))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	// The chain's view: the owner committed one copy (r = 1) and the chain
	// assigned custody 1/0 to the holder. (A daemon's view comes from the
	// chain; members is this package's test stand-in.)
	sealed := []byte("age-encrypted keyshare bytes")
	cm, err := custody.NewCommitment([][]byte{sealed})
	if err != nil {
		log.Fatal(err)
	}
	id := custody.CustodyID{Commitment: 1, Slot: 0}
	chain := newMembers(ownerID)
	chain.custodies[id] = p2p.Custody{
		ID: id, Holder: holderID.Address(identity.DefaultHRP), Owner: ownerID.Address(identity.DefaultHRP),
		Vault: "thorpub1addwnpepqexample", Size: cm.Size, Root: cm.Root, Copies: 1, Live: true,
	}
	svc, err := p2p.NewService(holderHost, holderID, st, chain, p2p.WithLogger(quietLogger()))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()

	ctx := context.Background()
	if err := p2p.ConnectPeers(ctx, ownerHost, []peer.AddrInfo{{ID: holderHost.ID(), Addrs: holderHost.Addrs()}}); err != nil {
		log.Fatal(err)
	}
	path, err := custody.CommitPath(cm.CopyRoots, 0) // empty for r = 1
	if err != nil {
		log.Fatal(err)
	}
	c := p2p.Copy{Custody: id, CopyIndex: 0, CommitPath: path, Owner: ownerID.PubKey(), Blob: sealed}
	r, err := p2p.Push(ctx, ownerHost, holderHost.ID(), ownerID, c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("receipt verifies:", identity.Verify(holderID.PubKey(), r.SignedMessage(), r.Signature) == nil)

	got, err := p2p.Fetch(ctx, ownerHost, holderHost.ID(), "", 0)
	if err != nil {
		log.Fatal(err)
	}
	f := got[0]
	fmt.Printf("fetched %d copy of custody %d/%d: %s\n", len(got), f.Custody.Commitment, f.Custody.Slot, f.Blob)
	fmt.Println("matches the commitment:", custody.VerifyCopy(cm.Root, cm.Size, f.Copies, f.CopyIndex, f.CommitPath, f.Blob) == nil)
	// Output:
	// receipt verifies: true
	// fetched 1 copy of custody 1/0: age-encrypted keyshare bytes
	// matches the commitment: true
}
