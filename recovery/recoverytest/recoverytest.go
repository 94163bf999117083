// Package recoverytest runs, inside one test process, what a recovering node
// talks to: an embedded attestation chain and holder nodes, each with a
// libp2p host on 127.0.0.1, a Badger store, a p2p.Service (push and fetch)
// and gossip that answers recovery requests. Holders attest what they keep
// with attest.Sender, as the daemon does. It is for tests of package
// recovery and of `ksb recover`; every helper fails the test on error.
package recoverytest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

const (
	// ChainID is the test chain's ID.
	ChainID = "ksb-recovery-test"
	// HRP is the test chain's address prefix.
	HRP = identity.DefaultHRP
	// BlockInterval keeps the embedded chain fast: an attestation commits in
	// a few hundred milliseconds.
	BlockInterval = 100 * time.Millisecond
	// WorkFactor is the scrypt work factor Seal uses: 2^10 makes opening a
	// blob take about a millisecond.
	WorkFactor = 10
	// startTimeout bounds starting the chain and each transaction.
	startTimeout = time.Minute
)

// listen is where holders listen: TCP on loopback, a free port.
var listen = []string{"/ip4/127.0.0.1/tcp/0"}

// Config describes a network.
type Config struct {
	// Owners are nodes whose blobs holders keep. They are active nodes and
	// the members of every vault (their own machines are gone: the chain
	// lists a dead address for them).
	Owners []*identity.Identity
	// Holders is the number of holders to start.
	Holders int
	// Vaults are the vault keys created at genesis.
	Vaults []string
	// WrapStore, if set, gives holder i the store it returns instead of its
	// Badger store (to make a holder lie); the Badger store is still
	// Holder.Store.
	WrapStore func(i int, st p2p.Store) p2p.Store
	// Silent are holders that accept fetch streams, read the request and
	// never answer. They run no Service and no gossip.
	Silent []int
	// ServiceOptions are added to every holder's p2p.Service options.
	ServiceOptions []p2p.Option
}

// Network is a running chain and its holders.
type Network struct {
	Chain   *attest.Embedded
	Client  *attest.Client
	Holders []*Holder
}

// Holder is one holder node.
type Holder struct {
	ID      *identity.Identity
	Host    host.Host
	Store   *store.Store
	Service *p2p.Service // nil for a silent holder
	Gossip  *p2p.Gossip  // nil for a silent holder
	// Metrics has the Service's Prometheus metrics (ksb_p2p_*).
	Metrics *prometheus.Registry

	sender *attest.Sender
	stop   chan struct{}
	once   sync.Once
}

// members is the static active set: owners and holders.
type members map[string]bool

func (m members) IsActive(pub []byte) bool { return m[string(pub)] }

// LiveVault: the genesis vaults are live, and the owners are their members.
func (m members) LiveVault(v string, pub []byte) (bool, bool) {
	return m["vault/"+v], m["owner/"+string(pub)]
}

// Quiet is a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// NewIdentity returns a fresh identity.
func NewIdentity(t testing.TB) *identity.Identity {
	t.Helper()
	m, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Start starts the holders, then a chain whose genesis registers the owners
// and holders (with the holders' real addresses) and the vaults, and
// connects every holder to every other. Everything stops when the test
// ends.
func Start(t testing.TB, cfg Config) *Network {
	t.Helper()
	n := &Network{}
	mem := members{}
	for _, o := range cfg.Owners {
		mem[string(o.PubKey())] = true
		mem["owner/"+string(o.PubKey())] = true
	}
	for _, v := range cfg.Vaults {
		mem["vault/"+v] = true
	}
	ids := make([]*identity.Identity, cfg.Holders)
	for i := range ids {
		ids[i] = NewIdentity(t)
		mem[string(ids[i].PubKey())] = true
	}
	for i, id := range ids {
		n.Holders = append(n.Holders, startHolder(t, i, id, mem, cfg))
	}

	authority := NewIdentity(t)
	g := attest.Genesis{Authority: authority.PubKeyHex(), HRP: HRP}
	var owners []string
	for _, o := range cfg.Owners {
		g.Nodes = append(g.Nodes, attest.NodeSpec{PubKey: o.PubKeyHex(), Multiaddrs: []string{"/ip4/127.0.0.1/tcp/1"}})
		owners = append(owners, o.Address(HRP))
	}
	for _, hd := range n.Holders {
		var addrs []string
		for _, a := range hd.Host.Addrs() {
			addrs = append(addrs, a.String())
		}
		g.Nodes = append(g.Nodes, attest.NodeSpec{PubKey: hd.ID.PubKeyHex(), Multiaddrs: addrs})
	}
	for _, v := range cfg.Vaults {
		g.Vaults = append(g.Vaults, attest.VaultSpec{PubKey: v, Members: owners, Threshold: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	chain, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{
		Home: t.TempDir(), ChainID: ChainID, Genesis: g, BlockInterval: BlockInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Stop() })
	n.Chain = chain
	if n.Client, err = attest.NewClient(chain.RPCURL()); err != nil {
		t.Fatal(err)
	}
	for _, hd := range n.Holders {
		hd.sender = attest.NewSender(n.Client, hd.ID)
		var peers []peer.AddrInfo
		for _, o := range n.Holders {
			peers = append(peers, peer.AddrInfo{ID: o.Host.ID(), Addrs: o.Host.Addrs()})
		}
		if err := p2p.ConnectPeers(ctx, hd.Host, peers); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func startHolder(t testing.TB, i int, id *identity.Identity, mem members, cfg Config) *Holder {
	t.Helper()
	h, err := p2p.NewHost(p2p.HostConfig{Identity: id, Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.DefaultOptions(t.TempDir()))
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	hd := &Holder{ID: id, Host: h, Store: st, Metrics: prometheus.NewRegistry(), stop: make(chan struct{})}
	t.Cleanup(hd.close)
	if slices.Contains(cfg.Silent, i) {
		h.SetStreamHandler(p2p.FetchProtocol, hd.silent)
		return hd
	}
	var ps p2p.Store = st
	if cfg.WrapStore != nil {
		ps = cfg.WrapStore(i, st)
	}
	opts := append([]p2p.Option{p2p.WithLogger(Quiet()), p2p.WithRegisterer(hd.Metrics)}, cfg.ServiceOptions...)
	hd.Service, err = p2p.NewService(h, id, ps, mem, opts...)
	if err != nil {
		t.Fatal(err)
	}
	hd.Gossip, err = p2p.NewGossip(h, id, mem, p2p.ServeRecovery(hd.Service), p2p.WithGossipLogger(Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	return hd
}

// silent reads a fetch request and then holds the stream open, answering
// nothing, until the holder stops.
func (hd *Holder) silent(s network.Stream) {
	io.Copy(io.Discard, s)
	<-hd.stop
	s.Reset()
}

func (hd *Holder) close() {
	hd.once.Do(func() {
		close(hd.stop)
		if hd.Gossip != nil {
			hd.Gossip.Close()
		}
		if hd.Service != nil {
			hd.Service.Close()
		}
		hd.Host.Close()
		hd.Store.Close()
	})
}

// Stop stops the holder: gossip, service, host and store.
func (hd *Holder) Stop() { hd.close() }

// Bootstrap returns the holder's address as a bootstrap multiaddr
// (/ip4/127.0.0.1/tcp/<port>/p2p/<peer ID>).
func (hd *Holder) Bootstrap() string {
	return fmt.Sprintf("%s/p2p/%s", hd.Host.Addrs()[0], hd.Host.ID())
}

// Address returns the holder's node address.
func (hd *Holder) Address() string { return hd.ID.Address(HRP) }

// Entry returns the attestation entry of blob, owned by owner, for vault.
func Entry(owner *identity.Identity, vault string, blob []byte) attest.Entry {
	return attest.Entry{Owner: owner.Address(HRP), Vault: vault, Digest: sha256.Sum256(blob), Size: uint64(len(blob))}
}

// Put stores blob in the holder's store as owner's blob of vault, received
// at received (zero: now). It does not attest.
func (hd *Holder) Put(t testing.TB, owner *identity.Identity, vault string, blob []byte, received time.Time) {
	t.Helper()
	e := store.Entry{Owner: owner.PubKey(), Vault: vault, Digest: sha256.Sum256(blob), Size: int64(len(blob)), Received: received}
	if _, err := hd.Store.Put(e, blob); err != nil {
		t.Fatal(err)
	}
}

// Attest posts an Attest of entries signed by the holder and waits for its
// block.
func (hd *Holder) Attest(t testing.TB, entries ...attest.Entry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := hd.sender.Send(ctx, &attest.Attest{Entries: entries}); err != nil {
		t.Fatalf("holder %s attesting: %v", hd.Address(), err)
	}
}

// Hold puts blob in the holder's store and attests it.
func (hd *Holder) Hold(t testing.TB, owner *identity.Identity, vault string, blob []byte) {
	t.Helper()
	hd.Put(t, owner, vault, blob, time.Time{})
	hd.Attest(t, Entry(owner, vault, blob))
}

// Seal seals plaintext with mnemonic at WorkFactor.
func Seal(t testing.TB, plaintext []byte, mnemonic string) []byte {
	t.Helper()
	return SealAt(t, plaintext, mnemonic, WorkFactor)
}

// SealAt seals plaintext with mnemonic at scrypt work factor wf.
func SealAt(t testing.TB, plaintext []byte, mnemonic string, wf int) []byte {
	t.Helper()
	blob, err := envelope.Seal(plaintext, mnemonic, &envelope.SealOptions{WorkFactor: wf, AllowLowWorkFactor: wf < envelope.MinWorkFactor})
	if err != nil {
		t.Fatal(err)
	}
	return blob
}
