// Package recoverytest runs, inside one test process, what a recovering node
// talks to: an embedded attestation chain and holder nodes, each with a
// libp2p host on 127.0.0.1, a Badger store, a p2p.Service (push and fetch)
// and gossip that answers recovery requests. Owners commit share versions
// on the chain, which assigns their copies to holders; holders store the
// copies the chain gave them and attest them with attest.Sender, as the
// daemon does. It is for tests of package recovery and of `ksb recover`;
// every helper fails the test on error.
package recoverytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
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
	// Replication is the chain's r; 0 means every candidate holder of an
	// owner's commitment (the other owners and every holder), so that each
	// holder is assigned a copy of each commitment.
	Replication int
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

	senders map[string]*attest.Sender // owners', by address
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

// members is the static active set (owners and holders), and the chain's
// custodies once the chain runs: what a holder's Service checks pushes
// against (tests place copies directly, so pushes only come from tests of
// the protocol itself).
type members struct {
	active map[string]bool
	client atomic.Pointer[attest.Client]
}

func (m *members) IsActive(pub []byte) bool { return m.active[string(pub)] }

func (m *members) Cached(custody.CustodyID) (p2p.Custody, bool) { return p2p.Custody{}, false }

func (m *members) Lookup(ctx context.Context, id custody.CustodyID) (p2p.Custody, error) {
	c := m.client.Load()
	if c == nil {
		return p2p.Custody{}, errors.New("chain not started")
	}
	hc, err := c.Custody(ctx, id)
	if errors.Is(err, attest.ErrNotFound) {
		return p2p.Custody{}, fmt.Errorf("%w: %v", p2p.ErrUnknownCustody, err)
	}
	if err != nil {
		return p2p.Custody{}, err
	}
	root, err := hex.DecodeString(hc.Root)
	if err != nil || len(root) != custody.HashSize {
		return p2p.Custody{}, fmt.Errorf("custody %d/%d: root %q", id.Commitment, id.Slot, hc.Root)
	}
	return p2p.Custody{
		ID: id, Holder: hc.Holder, Owner: hc.Owner, Source: hc.Source, Vault: hc.Vault,
		Size: hc.Size, Root: [custody.HashSize]byte(root), Copies: int(hc.Copies), CopyIndex: int(hc.CopyIndex),
		Failed: hc.Status == "failed", Live: hc.Live,
	}, nil
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
	n := &Network{senders: map[string]*attest.Sender{}}
	mem := &members{active: map[string]bool{}}
	for _, o := range cfg.Owners {
		mem.active[string(o.PubKey())] = true
	}
	ids := make([]*identity.Identity, cfg.Holders)
	for i := range ids {
		ids[i] = NewIdentity(t)
		mem.active[string(ids[i].PubKey())] = true
	}
	for i, id := range ids {
		n.Holders = append(n.Holders, startHolder(t, i, id, mem, cfg))
	}

	authority := NewIdentity(t)
	r := cfg.Replication
	if r == 0 {
		r = max(1, len(cfg.Owners)-1+cfg.Holders)
	}
	g := attest.Genesis{Authority: authority.PubKeyHex(), HRP: HRP, Replication: uint32(r)}
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
	mem.client.Store(n.Client)
	for _, o := range cfg.Owners {
		n.senders[o.Address(HRP)] = attest.NewSender(n.Client, o)
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

func startHolder(t testing.TB, i int, id *identity.Identity, mem *members, cfg Config) *Holder {
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

// Version is one share version committed on the chain: its copies and the
// holders the chain assigned them to.
type Version struct {
	Owner *identity.Identity
	Vault string
	// ID is the chain's commitment id; Copies the r copies in copy index
	// order; Commitment their roots.
	ID         uint64
	Copies     [][]byte
	Commitment custody.Commitment
	// Assignments are the chain's holders of the copies, by slot.
	Assignments []attest.Assignment
}

// Commit seals plaintext with mnemonic into the chain's r copies (at
// WorkFactor) and commits them as owner's version of vault.
func (n *Network) Commit(t testing.TB, owner *identity.Identity, mnemonic, vault string, plaintext []byte) *Version {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	p, err := n.Client.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	copies, err := envelope.SealCopies(plaintext, mnemonic, int(p.Replication), &envelope.SealOptions{WorkFactor: WorkFactor, AllowLowWorkFactor: true})
	if err != nil {
		t.Fatal(err)
	}
	return n.CommitCopies(t, owner, vault, copies)
}

// CommitCopies commits copies (any bytes, all of one size) as owner's
// version of vault.
func (n *Network) CommitCopies(t testing.TB, owner *identity.Identity, vault string, copies [][]byte) *Version {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cm, err := custody.NewCommitment(copies)
	if err != nil {
		t.Fatal(err)
	}
	vaults, err := n.Client.Vaults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idx := uint64(0)
	for _, v := range vaults {
		if v.PubKey == vault {
			idx = v.Index
		}
	}
	if idx == 0 {
		t.Fatalf("vault %s is not on chain", vault)
	}
	s := n.senders[owner.Address(HRP)]
	if s == nil {
		t.Fatalf("%s is not an owner of this network", owner.Address(HRP))
	}
	res, err := s.Commit(ctx, attest.ShareCommit{Vault: idx, Size: cm.Size, Root: cm.Root})
	if err != nil {
		t.Fatalf("committing %s's version of %s: %v", owner.Address(HRP), vault, err)
	}
	ids := res.Commitments()
	if len(ids) != 1 {
		t.Fatalf("commit created %d commitments", len(ids))
	}
	v := &Version{Owner: owner, Vault: vault, ID: ids[0], Copies: copies, Commitment: cm}
	for _, a := range res.Assignments() {
		if a.Custody.Commitment == ids[0] {
			v.Assignments = append(v.Assignments, a)
		}
	}
	slices.SortFunc(v.Assignments, func(a, b attest.Assignment) int { return a.Custody.Compare(b.Custody) })
	return v
}

// Entry returns the store entry of the copy of slot (held for that
// custody), received at received (zero: now), and the copy.
func (v *Version) Entry(t testing.TB, slot int, received time.Time) (store.Entry, []byte) {
	t.Helper()
	a := v.Assignments[slot]
	i := int(a.CopyIndex)
	path, err := custody.CommitPath(v.Commitment.CopyRoots, i)
	if err != nil {
		t.Fatal(err)
	}
	blob := v.Copies[i]
	return store.Entry{
		Custody: a.Custody, Owner: v.Owner.PubKey(), Vault: v.Vault, CopyIndex: i, Copies: len(v.Copies),
		CommitPath: path, Digest: sha256.Sum256(blob), Size: int64(len(blob)), Received: received,
	}, blob
}

// Holder returns the holder of this network with address addr, or nil.
func (n *Network) Holder(addr string) *Holder {
	for _, hd := range n.Holders {
		if hd.Address() == addr {
			return hd
		}
	}
	return nil
}

// Slot returns the slot v's copy was assigned to hd in, or -1.
func (v *Version) Slot(hd *Holder) int {
	for i, a := range v.Assignments {
		if a.Holder == hd.Address() {
			return i
		}
	}
	return -1
}

// PutCopy stores v's copy of slot in the holder's store (received at
// received, zero: now), as a push would. It does not attest.
func (hd *Holder) PutCopy(t testing.TB, v *Version, slot int, received time.Time) {
	t.Helper()
	e, blob := v.Entry(t, slot, received)
	if _, err := hd.Store.Put(e, blob); err != nil {
		t.Fatal(err)
	}
}

// Place stores each copy of v with the holder of this network the chain
// assigned it to, and each such holder attests it.
func (n *Network) Place(t testing.TB, v *Version) {
	t.Helper()
	for slot, a := range v.Assignments {
		hd := n.Holder(a.Holder)
		if hd == nil {
			continue // an owner drawn as holder: nothing runs there
		}
		hd.PutCopy(t, v, slot, time.Time{})
		hd.Attest(t, a.Custody)
	}
}

// putCommitments numbers Put's made-up commitments: in call order across
// holders, as the chain numbers commitments, so that a later Put is a newer
// version.
var putCommitments atomic.Uint64

// Put stores blob in the holder's store as owner's copy for vault under a
// made-up custody (a commitment of one copy the chain never saw, numbered
// after every earlier Put's), received at received (zero: now): what a
// holder returns over gossip, where the chain is not asked.
func (hd *Holder) Put(t testing.TB, owner *identity.Identity, vault string, blob []byte, received time.Time) {
	t.Helper()
	e := store.Entry{
		Custody: custody.CustodyID{Commitment: 1<<40 + putCommitments.Add(1)}, Owner: owner.PubKey(), Vault: vault,
		CopyIndex: 0, Copies: 1, Digest: sha256.Sum256(blob), Size: int64(len(blob)), Received: received,
	}
	if _, err := hd.Store.Put(e, blob); err != nil {
		t.Fatal(err)
	}
}

// Attest posts an Attest of custodies signed by the holder and waits for
// its block.
func (hd *Holder) Attest(t testing.TB, ids ...custody.CustodyID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := hd.sender.Attest(ctx, ids...); err != nil {
		t.Fatalf("holder %s attesting: %v", hd.Address(), err)
	}
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
