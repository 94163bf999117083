package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/node"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// Published BIP39 test vectors (trezor/python-mnemonic): test keys only.
const (
	holderMnemonic    = "legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title"
	ownerMnemonic     = "letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless"
	strangerMnemonic  = "panda eyebrow bullet gorilla call smoke muffin taste mesh discover soft ostrich alcohol speed nation flash devote level hobby quick inner drive ghost inside"
	authorityMnemonic = "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote"

	rigChainID = "ksb-holder-test"
)

// The rig's vaults: the owner and the holder are members of all three.
var rigVaults = []string{"thorpub1addwnpepqvaultone", "thorpub1addwnpepqvaulttwo", "thorpub1addwnpepqvaultthree"}

// logCount counts the node's log records at Info and above.
type logCount struct {
	mu   sync.Mutex
	msgs []string
	next slog.Handler // stderr when -v
}

func (l *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCount) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		l.mu.Lock()
		l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
		l.mu.Unlock()
	}
	if l.next != nil && l.next.Enabled(ctx, r.Level) {
		return l.next.Handle(ctx, r)
	}
	return nil
}
func (l *logCount) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCount) WithGroup(string) slog.Handler      { return l }

// mark returns the number of records so far; since(mark) the records after.
func (l *logCount) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

func (l *logCount) since(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs[mark:]...)
}

// holderRig is one holder node (not running its loops: the test drives its
// queue), the real embedded chain, and an owner that pushes to it over
// libp2p.
type holderRig struct {
	t        *testing.T
	home     string
	chain    *attest.Embedded
	client   *attest.Client
	holder   *identity.Identity
	owner    *identity.Identity
	stranger *identity.Identity
	logs     *logCount
	reg      *prometheus.Registry
	n        *node.Node
	oh       host.Host
}

func newHolderRig(t *testing.T, ctx context.Context) *holderRig {
	t.Helper()
	r := &holderRig{t: t, home: t.TempDir(), logs: &logCount{}}
	if testing.Verbose() {
		r.logs.next = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	var auth *identity.Identity
	for _, x := range []struct {
		id **identity.Identity
		m  string
	}{{&r.holder, holderMnemonic}, {&r.owner, ownerMnemonic}, {&r.stranger, strangerMnemonic}, {&auth, authorityMnemonic}} {
		id, err := identity.New(x.m)
		if err != nil {
			t.Fatal(err)
		}
		*x.id = id
	}
	g := attest.Genesis{Authority: auth.PubKeyHex(), Replication: 1}
	for _, id := range []*identity.Identity{r.holder, r.owner} {
		g.Nodes = append(g.Nodes, attest.NodeSpec{PubKey: id.PubKeyHex(), Multiaddrs: []string{"/ip4/127.0.0.1/tcp/1"}})
	}
	for _, v := range rigVaults {
		g.Vaults = append(g.Vaults, attest.VaultSpec{PubKey: v, Members: []string{r.ownerAddr(), r.holderAddr()}, Threshold: 1})
	}
	var err error
	r.chain, err = attest.StartEmbedded(ctx, attest.EmbeddedConfig{
		Home: t.TempDir(), ChainID: rigChainID, Genesis: g, BlockInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.chain.Stop() })
	if r.client, err = attest.NewClient(r.chain.RPCURL()); err != nil {
		t.Fatal(err)
	}
	if r.oh, err = p2p.NewHost(p2p.HostConfig{Identity: r.owner, Listen: []string{"/ip4/127.0.0.1/tcp/0"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.oh.Close() })
	return r
}

func (r *holderRig) holderAddr() string { return r.holder.Address(identity.DefaultHRP) }
func (r *holderRig) ownerAddr() string  { return r.owner.Address(identity.DefaultHRP) }

// open starts the holder node on its home (again after close) with a fresh
// metrics registry, and reads the chain once.
func (r *holderRig) open(ctx context.Context) *node.Node {
	r.t.Helper()
	cfg := config.Default()
	cfg.Chain.RPC = r.chain.RPCURL()
	cfg.Chain.ChainID = rigChainID
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Admin.Listen = ""
	r.reg = prometheus.NewRegistry()
	n, err := node.New(ctx, node.Options{Home: r.home, Config: cfg, Mnemonic: holderMnemonic, Logger: slog.New(r.logs), Registry: r.reg})
	if err != nil {
		r.t.Fatal(err)
	}
	r.n = n
	r.t.Cleanup(n.Close)
	if err := n.Poll(ctx); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func (r *holderRig) close() {
	r.n.Close()
	r.n = nil
}

// push sends blob for vault from the owner to the holder over the real push
// protocol and returns its digest.
func (r *holderRig) push(ctx context.Context, vault string, blob []byte) [32]byte {
	r.t.Helper()
	ai, err := peer.AddrInfoFromString(r.n.Addrs()[0])
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.oh.Connect(ctx, *ai); err != nil {
		r.t.Fatal(err)
	}
	if _, err := p2p.Push(ctx, r.oh, ai.ID, r.owner, vault, blob); err != nil {
		r.t.Fatalf("honest push for %s: %v", vault, err)
	}
	return sha256.Sum256(blob)
}

// attested is the holder's attestations on chain, as owner/vault/digest.
func (r *holderRig) attested(ctx context.Context) map[string]bool {
	r.t.Helper()
	as, err := r.client.AttestationsByHolder(ctx, r.holderAddr())
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, a := range as {
		out[a.Owner+"/"+a.Vault+"/"+a.Digest] = true
	}
	return out
}

func (r *holderRig) key(vault string, d [32]byte) string {
	return r.ownerAddr() + "/" + vault + "/" + hex.EncodeToString(d[:])
}

// metric reads a sample of the node's registry: name and kind label.
func (r *holderRig) metric(name, kind string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "kind" && lp.GetValue() == kind {
					if g := m.GetGauge(); g != nil {
						return g.GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (r *holderRig) pending(ctx context.Context) (attests, releases int) {
	r.t.Helper()
	st, err := r.n.Status(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return st.PendingAttestations, st.PendingReleases
}

func (r *holderRig) sequence(ctx context.Context) uint64 {
	r.t.Helper()
	s, err := r.client.Sequence(ctx, r.holderAddr())
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// TestPoisonEntriesDoNotBlockTheQueue: the holder's attestation queue holds
// honest entries and entries that can never be attested — some refused by
// the transaction builder's own validation (a vault key the chain does not
// allow, the holder's own blob, a size over the chain's cap), some by the
// chain (an unknown vault, an owner that is neither active nor a member).
// The holder restarts with that queue. Its first batcher round commits
// every honest entry and drops and counts every poisoned one; later honest
// pushes are attested in the next round. (Issue 8, item 1: one such entry
// used to block the queue for good, also across restarts.)
func TestPoisonEntriesDoNotBlockTheQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newHolderRig(t, ctx)
	n := r.open(ctx)

	honest := []string{
		r.key(rigVaults[0], r.push(ctx, rigVaults[0], []byte("share one"))),
		r.key(rigVaults[1], r.push(ctx, rigVaults[1], []byte("share two"))),
	}
	poison := []store.Entry{
		{Owner: r.owner.PubKey(), Vault: "bad!vault#chars", Size: 1},                 // the builder refuses the vault key
		{Owner: r.holder.PubKey(), Vault: rigVaults[2], Size: 1},                     // the holder's own blob
		{Owner: r.owner.PubKey(), Vault: rigVaults[2], Size: attest.MaxBlobSize + 1}, // over the chain's size cap
		{Owner: r.owner.PubKey(), Vault: "thorpub1addwnpepqnosuchvault", Size: 1},    // the chain knows no such vault
		{Owner: r.stranger.PubKey(), Vault: rigVaults[2], Size: 1},                   // neither active nor a member
	}
	for i := range poison {
		poison[i].Digest = sha256.Sum256([]byte(fmt.Sprint("poison ", i)))
		poison[i].Received = time.Now()
		if err := n.Accept(poison[i]); err != nil {
			t.Fatalf("queueing poison %d: %v", i, err)
		}
	}
	if a, _ := r.pending(ctx); a != len(honest)+len(poison) {
		t.Fatalf("%d attestations queued, want %d", a, len(honest)+len(poison))
	}

	// Restart with that queue.
	r.close()
	n = r.open(ctx)
	const maxRounds = 3
	for round := 1; ; round++ {
		err := n.FlushQueues(ctx)
		got := r.attested(ctx)
		if got[honest[0]] && got[honest[1]] {
			break
		}
		if round == maxRounds {
			t.Fatalf("honest entries not attested after %d batcher rounds (last error: %v); on chain: %v", round, err, got)
		}
	}
	if a, _ := r.pending(ctx); a != 0 {
		t.Errorf("%d attestations still queued after the honest ones committed, want 0", a)
	}
	if d := r.metric("ksb_holder_dropped_entries_total", "attest"); d != float64(len(poison)) {
		t.Errorf("dropped entries counted: %v, want %d", d, len(poison))
	}
	if got := r.attested(ctx); len(got) != len(honest) {
		t.Errorf("on chain: %v, want only the honest entries", got)
	}

	// The queue is not blocked: a later push is attested in one round.
	later := r.key(rigVaults[2], r.push(ctx, rigVaults[2], []byte("share three")))
	if err := n.FlushQueues(ctx); err != nil {
		t.Fatalf("round after the drops: %v", err)
	}
	if !r.attested(ctx)[later] {
		t.Fatal("a push after the poisoned entries was not attested")
	}
}

// TestReleaseBacklogStaysBatched: after a crash, the holder's store has lost
// thousands of blobs it attests on chain, and its release queue also holds
// releases the chain refuses for good (never attested). Reconciling with the
// chain queues the releases and logs once per reconcile, not once per entry;
// the queue then drains in a bounded number of full, batched transactions,
// the refused releases are dropped once and counted, and the drops are
// logged once per batch. (Issue 14, item 3: 27,000 pending releases went
// out as single-entry transactions and logged 78,649 lines.)
func TestReleaseBacklogStaysBatched(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// More than two full batches (MaxEntries), of which some are refused.
	const lost, refused = 2100, 40
	// A holder has one attestation per owner and vault on chain: `lost`
	// vaults of the owner.
	vaults := make([]string, lost)
	for i := range vaults {
		vaults[i] = fmt.Sprintf("thorpub1addwnpepqbacklog%04d", i)
	}
	r := newHolderRig(t, ctx)
	auth, err := identity.New(authorityMnemonic)
	if err != nil {
		t.Fatal(err)
	}
	as := attest.NewSender(r.client, auth)
	for start := 0; start < lost; start += attest.MaxChurnVaults {
		var c attest.Churn
		for _, v := range vaults[start:min(start+attest.MaxChurnVaults, lost)] {
			c.CreateVaults = append(c.CreateVaults, attest.VaultSpec{PubKey: v, Members: []string{r.ownerAddr(), r.holderAddr()}, Threshold: 1})
		}
		if _, err := as.Send(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}

	// The holder attested `lost` blobs before its crash.
	s := attest.NewSender(r.client, r.holder)
	for start := 0; start < lost; start += attest.MaxEntries {
		var entries []attest.Entry
		for i := start; i < min(start+attest.MaxEntries, lost); i++ {
			entries = append(entries, attest.Entry{Owner: r.ownerAddr(), Vault: vaults[i], Digest: sha256.Sum256([]byte(fmt.Sprint("lost ", i))), Size: 100})
		}
		if _, err := s.Send(ctx, &attest.Attest{Entries: entries}); err != nil {
			t.Fatal(err)
		}
	}

	// Restarted with an empty store: the first chain poll reconciles, then
	// a second reconcile finds the same.
	mark := r.logs.mark()
	n := r.open(ctx)
	if err := n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if logs := r.logs.since(mark); len(logs) > 2*2 {
		t.Errorf("two reconciles of %d lost blobs logged %d lines, want at most 2 each; first: %q", lost, len(logs), logs[:min(len(logs), 5)])
	}
	if rel := n.Queued("release"); rel != lost {
		t.Fatalf("%d releases queued, want %d", rel, lost)
	}
	for i := range refused {
		d := sha256.Sum256([]byte(fmt.Sprint("never attested ", i)))
		n.QueueRelease(r.ownerAddr(), rigVaults[0], hex.EncodeToString(d[:]), 100)
	}

	seq0 := r.sequence(ctx)
	mark = r.logs.mark()
	fctx, fcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer fcancel()
	const maxRounds = 8
	rounds := 0
	for rounds < maxRounds {
		if n.Queued("release") == 0 {
			break
		}
		rounds++
		if err := n.FlushQueues(fctx); err != nil {
			t.Logf("round %d: %v", rounds, err)
		}
		if fctx.Err() != nil {
			break
		}
	}
	txs := r.sequence(ctx) - seq0
	logs := r.logs.since(mark)
	t.Logf("%d releases (%d refused for good): %d batcher rounds, %d transactions, %d log lines", lost+refused, refused, rounds, txs, len(logs))
	if rel := n.Queued("release"); rel != 0 {
		t.Fatalf("%d releases still queued after %d rounds and %d transactions", rel, rounds, txs)
	}
	if maxTxs := uint64((lost+refused+attest.MaxEntries-1)/attest.MaxEntries + 2); txs > maxTxs {
		t.Errorf("%d transactions for %d releases, want at most %d", txs, lost+refused, maxTxs)
	}
	if got := len(r.attested(ctx)); got != 0 {
		t.Errorf("%d attestations left on chain, want 0", got)
	}
	if d := r.metric("ksb_holder_dropped_entries_total", "release"); d != refused {
		t.Errorf("dropped releases counted: %v, want %d", d, refused)
	}
	if len(logs) > 3*rounds {
		t.Errorf("%d log lines in %d rounds, want at most 3 per round; first: %q", len(logs), rounds, logs[:min(len(logs), 5)])
	}
	var drops int
	for _, l := range logs {
		if strings.Contains(l, "drop") {
			drops++
		}
	}
	if drops == 0 || drops > rounds {
		t.Errorf("%d log lines about drops in %d rounds, want 1..%d", drops, rounds, rounds)
	}
}

// TestPendingGaugeFollowsTheQueue: the pending gauges move with every
// enqueue, commit and drop, without waiting for a batcher round to count
// them. (Issue 14, item 6: /metrics showed 400 pending attestations two
// minutes after they were committed.)
func TestPendingGaugeFollowsTheQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newHolderRig(t, ctx)
	n := r.open(ctx)
	gauge := func(kind string) float64 { return r.metric("ksb_holder_pending_entries", kind) }

	var digests [][32]byte
	for i, v := range rigVaults {
		digests = append(digests, r.push(ctx, v, []byte(fmt.Sprint("share ", i))))
		if g := gauge("attest"); g != float64(i+1) {
			t.Fatalf("after %d accepted pushes the attest gauge reads %v", i+1, g)
		}
	}
	// The same blob again is not a new entry.
	r.push(ctx, rigVaults[0], []byte("share 0"))
	if g := gauge("attest"); g != 3 {
		t.Fatalf("after a duplicate push the attest gauge reads %v, want 3", g)
	}
	if err := n.FlushQueues(ctx); err != nil {
		t.Fatal(err)
	}
	if g := gauge("attest"); g != 0 {
		t.Fatalf("after the queue drained the attest gauge reads %v, want 0", g)
	}

	// A replacement queues a release; its commit empties the gauge.
	r.push(ctx, rigVaults[0], []byte("share 0, resealed"))
	if g, a := gauge("release"), gauge("attest"); g != 1 || a != 1 {
		t.Fatalf("after a replacement: release gauge %v, attest gauge %v; want 1 and 1", g, a)
	}
	if err := n.FlushQueues(ctx); err != nil {
		t.Fatal(err)
	}
	if g, a := gauge("release"), gauge("attest"); g != 0 || a != 0 {
		t.Fatalf("after the queues drained: release gauge %v, attest gauge %v; want 0", g, a)
	}
	// The chain replaced the old attestation with the new one: the release
	// of the old one is done, not refused and dropped.
	if d := r.metric("ksb_holder_dropped_entries_total", "release"); d != 0 {
		t.Fatalf("the release of a replaced blob was counted as dropped (%v)", d)
	}

	// A dropped entry leaves the gauge too.
	if err := n.Accept(store.Entry{Owner: r.owner.PubKey(), Vault: "thorpub1addwnpepqnosuchvault", Digest: digests[0], Size: 1}); err != nil {
		t.Fatal(err)
	}
	if g := gauge("attest"); g != 1 {
		t.Fatalf("after queueing a poisoned entry the attest gauge reads %v, want 1", g)
	}
	if err := n.FlushQueues(ctx); err != nil {
		t.Logf("round with a poisoned entry: %v", err)
	}
	if g := gauge("attest"); g != 0 {
		t.Fatalf("after the poisoned entry was dropped the attest gauge reads %v, want 0", g)
	}
}
