package p2p_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

var testListen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// members is an active set and, optionally, the live vaults.
type members struct {
	mu  sync.Mutex
	set map[string]bool
	// vaults maps each live vault to its members' keys; nil means every
	// vault is live and every active node is a member of each.
	vaults map[string]map[string]bool
}

func newMembers(ids ...*identity.Identity) *members {
	m := &members{set: map[string]bool{}}
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

// liveVault makes v a live vault with these members; from the first call
// on, only vaults made live so are.
func (m *members) liveVault(v string, ids ...*identity.Identity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vaults == nil {
		m.vaults = map[string]map[string]bool{}
	}
	ms := map[string]bool{}
	for _, id := range ids {
		ms[string(id.PubKey())] = true
	}
	m.vaults[v] = ms
}

func (m *members) IsActive(pub []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.set[string(pub)]
}

func (m *members) LiveVault(v string, pub []byte) (live, member bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vaults == nil {
		return true, m.set[string(pub)]
	}
	ms, ok := m.vaults[v]
	return ok, ms[string(pub)]
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
