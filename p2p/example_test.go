package p2p_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// Example pushes a blob from an owner to a holder, checks the receipt, and
// fetches the blob back.
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
	svc, err := p2p.NewService(holderHost, holderID, st, newMembers(ownerID), p2p.WithLogger(quietLogger()))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()

	ctx := context.Background()
	if err := p2p.ConnectPeers(ctx, ownerHost, []peer.AddrInfo{{ID: holderHost.ID(), Addrs: holderHost.Addrs()}}); err != nil {
		log.Fatal(err)
	}
	sealed := []byte("age-encrypted keyshare bytes")
	r, err := p2p.Push(ctx, ownerHost, holderHost.ID(), ownerID, "thorpub1addwnpepqexample", sealed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("receipt verifies:", identity.Verify(holderID.PubKey(), r.SignedMessage(), r.Signature) == nil)

	got, err := p2p.Fetch(ctx, ownerHost, holderHost.ID(), "", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("fetched %d blob: %s\n", len(got), got[0].Blob)
	// Output:
	// receipt verifies: true
	// fetched 1 blob: age-encrypted keyshare bytes
}
