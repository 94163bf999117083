package p2p_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

var testListen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// members is an active set and a fake chain of custodies: what a holder's
// Service asks of the chain.
type members struct {
	mu        sync.Mutex
	set       map[string]bool
	custodies map[custody.CustodyID]p2p.Custody
	next      uint64 // last commitment id
	// lazy: Cached knows nothing, every custody comes from Lookup.
	lazy bool
	// down: Lookup fails as if the chain were unreachable.
	down    bool
	lookups int
}

func newMembers(ids ...*identity.Identity) *members {
	m := &members{set: map[string]bool{}, custodies: map[custody.CustodyID]p2p.Custody{}}
	for _, id := range ids {
		m.add(id)
	}
	return m
}

func (m *members) add(id *identity.Identity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set[string(id.PubKey())] = true
}

// remove takes id out of the active set (it left at a churn).
func (m *members) remove(id *identity.Identity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.set, string(id.PubKey()))
}

func (m *members) IsActive(pub []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.set[string(pub)]
}

func (m *members) Cached(id custody.CustodyID) (p2p.Custody, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lazy {
		return p2p.Custody{}, false
	}
	c, ok := m.custodies[id]
	return c, ok
}

func (m *members) Lookup(_ context.Context, id custody.CustodyID) (p2p.Custody, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.down {
		return p2p.Custody{}, errors.New("chain unreachable")
	}
	c, ok := m.custodies[id]
	if !ok {
		return p2p.Custody{}, fmt.Errorf("custody %d/%d: %w", id.Commitment, id.Slot, p2p.ErrUnknownCustody)
	}
	return c, nil
}

// with runs f under the lock (to set lazy or down).
func (m *members) with(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f()
}

// update changes custody id in the fake chain.
func (m *members) update(id custody.CustodyID, f func(*p2p.Custody)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.custodies[id]
	f(&c)
	m.custodies[id] = c
}

func (m *members) lookupCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups
}

// share is one committed share version: its r copies (random bytes of one
// size, as sealed copies are) and the chain's custodies of them.
type share struct {
	owner  *identity.Identity
	id     uint64
	vault  string
	copies [][]byte
	cm     custody.Commitment
}

// commit commits a share version of owner for vault with one copy of size
// bytes per holder, and assigns copy i to holders[i] (slot i), as the chain
// does.
func (m *members) commit(t testing.TB, owner *identity.Identity, vault string, size int, seed byte, holders ...*identity.Identity) *share {
	t.Helper()
	sh := &share{owner: owner, vault: vault}
	for i := range holders {
		sh.copies = append(sh.copies, blob(size, seed+byte(i)*31))
	}
	cm, err := custody.NewCommitment(sh.copies)
	if err != nil {
		t.Fatal(err)
	}
	sh.cm = cm
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	sh.id = m.next
	for i, h := range holders {
		id := custody.CustodyID{Commitment: sh.id, Slot: uint64(i)}
		m.custodies[id] = p2p.Custody{
			ID: id, Holder: h.Address(identity.DefaultHRP), Owner: owner.Address(identity.DefaultHRP),
			Vault: vault, Size: cm.Size, Root: cm.Root, Copies: len(holders), CopyIndex: i, Live: true,
		}
	}
	return sh
}

// copy is copy i of the share, for the holder of slot i.
func (sh *share) copy(t testing.TB, i int) p2p.Copy {
	t.Helper()
	path, err := custody.CommitPath(sh.cm.CopyRoots, i)
	if err != nil {
		t.Fatal(err)
	}
	return p2p.Copy{
		Custody:   custody.CustodyID{Commitment: sh.id, Slot: uint64(i)},
		CopyIndex: i, CommitPath: path, Owner: sh.owner.PubKey(), Blob: sh.copies[i],
	}
}

// place commits a one-copy share version of o for vault held by hd, and
// returns its copy.
func (m *members) place(t testing.TB, o *identity.Identity, hd *holder, vault string, size int, seed byte) p2p.Copy {
	t.Helper()
	return m.commit(t, o, vault, size, seed, hd.id).copy(t, 0)
}

func newIdentity(t testing.TB) *identity.Identity {
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

func newHost(t testing.TB, id *identity.Identity) host.Host {
	t.Helper()
	return newHostConfig(t, p2p.HostConfig{Identity: id, Listen: testListen})
}

func newHostConfig(t testing.TB, cfg p2p.HostConfig) host.Host {
	t.Helper()
	h, err := p2p.NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.DefaultOptions(dir).WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// holder is a node running the Service on a real host and a real store.
type holder struct {
	id  *identity.Identity
	h   host.Host
	st  *store.Store
	svc *p2p.Service
	reg *prometheus.Registry
}

func newHolder(t testing.TB, m p2p.Membership, opts ...p2p.Option) *holder {
	t.Helper()
	id := newIdentity(t)
	return startHolder(t, id, t.TempDir(), m, opts...)
}

func startHolder(t testing.TB, id *identity.Identity, dir string, m p2p.Membership, opts ...p2p.Option) *holder {
	t.Helper()
	return startHolderOn(t, newHost(t, id), id, dir, m, opts...)
}

// startHolderOn runs a holder on a host made by the caller.
func startHolderOn(t testing.TB, h host.Host, id *identity.Identity, dir string, m p2p.Membership, opts ...p2p.Option) *holder {
	t.Helper()
	hd := &holder{id: id, h: h, st: openStore(t, dir), reg: prometheus.NewRegistry()}
	opts = append([]p2p.Option{p2p.WithLogger(quietLogger()), p2p.WithRegisterer(hd.reg)}, opts...)
	svc, err := p2p.NewService(hd.h, id, hd.st, m, opts...)
	if err != nil {
		t.Fatal(err)
	}
	hd.svc = svc
	t.Cleanup(func() { hd.stop() })
	return hd
}

// stop closes the service, the host and the store (idempotent).
func (hd *holder) stop() {
	hd.svc.Close()
	hd.h.Close()
	hd.st.Close()
}

func (hd *holder) info() peer.AddrInfo { return peer.AddrInfo{ID: hd.h.ID(), Addrs: hd.h.Addrs()} }

// introduce lets a dial b.
func introduce(a, b host.Host) {
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.PermanentAddrTTL)
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// connectOver connects a to b using only b's addresses of one transport
// ("/tcp/" or "/quic-v1").
func connectOver(t testing.TB, a, b host.Host, transport string) {
	t.Helper()
	var addrs []multiaddr.Multiaddr
	for _, m := range b.Addrs() {
		if strings.Contains(m.String(), transport) {
			addrs = append(addrs, m)
		}
	}
	if len(addrs) == 0 {
		t.Fatalf("%s has no %s address", b.ID(), transport)
	}
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: addrs}); err != nil {
		t.Fatal(err)
	}
}

// counter returns the value of a counter in reg with the given labels (0 if
// absent).
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// waitCounter waits up to 5 s for the counter to reach want and returns its
// last value: a holder counts a stream after it has written its answer, so
// the client can read the answer before the count moves.
func waitCounter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := counter(t, reg, name, labels)
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// blob returns n deterministic pseudo-random bytes.
func blob(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

const (
	vaultA = "thorpub1addwnpepqfake0vault0a"
	vaultB = "thorpub1addwnpepqfake0vault0b"
)
