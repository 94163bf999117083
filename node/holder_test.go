package node_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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
	"github.com/ksb-project/ksb/custody"
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
// queue), the real embedded chain, an owner that commits share versions and
// pushes copies to it over libp2p, and a third active node the chain
// assigns the other copies to.
type holderRig struct {
	t      *testing.T
	home   string
	chain  *attest.Embedded
	client *attest.Client
	holder *identity.Identity
	owner  *identity.Identity
	// stranger is active on chain but runs nothing: the chain assigns it
	// copies nobody pushes.
	stranger *identity.Identity
	sender   *attest.Sender // the owner's
	logs     *logCount
	reg      *prometheus.Registry
	n        *node.Node
	oh       host.Host
}

// rigOptions change the rig's chain.
type rigOptions struct {
	vaults []string // rigVaults if nil
	epoch  int64    // custody epoch_blocks; 0: the default (no epoch in a test's time)
	// holderListen is the holder's address on chain; "" is a port where
	// nothing listens.
	holderListen string
}

func newHolderRig(t *testing.T, ctx context.Context) *holderRig {
	return newHolderRigWith(t, ctx, rigOptions{})
}

func newHolderRigWith(t *testing.T, ctx context.Context, o rigOptions) *holderRig {
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
	// r = 2: every commitment of the owner has a copy for the holder and
	// one for the stranger.
	g := attest.Genesis{Authority: auth.PubKeyHex(), Replication: 2}
	g.EpochBlocks = o.epoch
	for _, id := range []*identity.Identity{r.holder, r.owner, r.stranger} {
		addr := "/ip4/127.0.0.1/tcp/1"
		if id == r.holder && o.holderListen != "" {
			addr = o.holderListen
		}
		g.Nodes = append(g.Nodes, attest.NodeSpec{PubKey: id.PubKeyHex(), Multiaddrs: []string{addr}})
	}
	vaults := o.vaults
	if vaults == nil {
		vaults = rigVaults
	}
	spec := func(v string) attest.VaultSpec {
		return attest.VaultSpec{PubKey: v, Members: []string{r.ownerAddr(), r.holderAddr()}, Threshold: 1}
	}
	for _, v := range vaults[:min(len(vaults), attest.MaxChurnVaults)] {
		g.Vaults = append(g.Vaults, spec(v))
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
	r.sender = attest.NewSender(r.client, r.owner)
	// Genesis takes MaxChurnVaults vaults; the authority creates the rest.
	for rest := vaults[min(len(vaults), attest.MaxChurnVaults):]; len(rest) > 0; {
		chunk := rest[:min(len(rest), attest.MaxChurnVaults)]
		rest = rest[len(chunk):]
		churn := &attest.Churn{}
		for _, v := range chunk {
			churn.CreateVaults = append(churn.CreateVaults, spec(v))
		}
		if _, err := attest.NewSender(r.client, auth).Send(ctx, churn); err != nil {
			t.Fatal(err)
		}
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
	r.n = r.newHolder(ctx, r.home, "/ip4/127.0.0.1/tcp/0")
	if err := r.n.Poll(ctx); err != nil {
		r.t.Fatal(err)
	}
	return r.n
}

// newHolder builds a node of the holder's identity on home, listening on
// listen, with a fresh metrics registry; it neither runs nor polls it.
func (r *holderRig) newHolder(ctx context.Context, home, listen string) *node.Node {
	r.t.Helper()
	cfg := config.Default()
	cfg.Chain.RPC = r.chain.RPCURL()
	cfg.Chain.ChainID = rigChainID
	cfg.P2P.Listen = []string{listen}
	cfg.Admin.Listen = ""
	r.reg = prometheus.NewRegistry()
	n, err := node.New(ctx, node.Options{Home: home, Config: cfg, Mnemonic: holderMnemonic, Logger: slog.New(r.logs), Registry: r.reg})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(n.Close)
	return n
}

func (r *holderRig) close() {
	r.n.Close()
	r.n = nil
}

// version is one committed share version of the owner: two copies, one
// for the holder, one for the stranger.
type version struct {
	id     uint64
	copies [][]byte
	cm     custody.Commitment
	mine   custody.CustodyID // the holder's custody
	other  custody.CustodyID // the stranger's
}

// commitShares commits one version per vault (copies of size bytes, random)
// in as few Commits as the chain allows.
func (r *holderRig) commitShares(ctx context.Context, vaults []string, size int) []*version {
	r.t.Helper()
	all, err := r.client.Vaults(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	index := map[string]uint64{}
	for _, v := range all {
		index[v.PubKey] = v.Index
	}
	var out []*version
	for len(vaults) > 0 {
		chunk := vaults[:min(len(vaults), attest.MaxShares)]
		vaults = vaults[len(chunk):]
		var shares []attest.ShareCommit
		var vs []*version
		for _, v := range chunk {
			ver := &version{copies: [][]byte{randomBytes(size), randomBytes(size)}}
			if ver.cm, err = custody.NewCommitment(ver.copies); err != nil {
				r.t.Fatal(err)
			}
			shares = append(shares, attest.ShareCommit{Vault: index[v], Size: ver.cm.Size, Root: ver.cm.Root})
			vs = append(vs, ver)
		}
		res, err := r.sender.Commit(ctx, shares...)
		if err != nil {
			r.t.Fatalf("committing: %v", err)
		}
		ids := res.Commitments()
		for i, ver := range vs {
			ver.id = ids[i]
		}
		for _, a := range res.Assignments() {
			for _, ver := range vs {
				if a.Custody.Commitment != ver.id {
					continue
				}
				if a.Holder == r.holderAddr() {
					ver.mine = a.Custody
				} else {
					ver.other = a.Custody
				}
			}
		}
		out = append(out, vs...)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// copyFor is the holder's copy of ver, with its custody and commit path.
func (r *holderRig) copyFor(ver *version, id custody.CustodyID) p2p.Copy {
	r.t.Helper()
	hc, err := r.client.Custody(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	i := int(hc.CopyIndex)
	path, err := custody.CommitPath(ver.cm.CopyRoots, i)
	if err != nil {
		r.t.Fatal(err)
	}
	return p2p.Copy{Custody: id, CopyIndex: i, CommitPath: path, Owner: r.owner.PubKey(), Blob: ver.copies[i]}
}

// push commits a version of vault and pushes the holder's copy to it over
// the real push protocol; it returns the version.
func (r *holderRig) push(ctx context.Context, vault string) *version {
	r.t.Helper()
	ver := r.commitShares(ctx, []string{vault}, 1000)[0]
	r.pushCopy(ctx, ver)
	return ver
}

// pushCopy pushes ver's copy to the holder.
func (r *holderRig) pushCopy(ctx context.Context, ver *version) {
	r.t.Helper()
	ai, err := peer.AddrInfoFromString(r.n.Addrs()[0])
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.oh.Connect(ctx, *ai); err != nil {
		r.t.Fatal(err)
	}
	if _, err := p2p.Push(ctx, r.oh, ai.ID, r.owner, r.copyFor(ver, ver.mine)); err != nil {
		r.t.Fatalf("honest push of custody %v: %v", ver.mine, err)
	}
}

// attested is the holder's attested custodies on chain.
func (r *holderRig) attested(ctx context.Context) map[custody.CustodyID]bool {
	r.t.Helper()
	hs, err := r.client.CustodiesByHolder(ctx, r.holderAddr())
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[custody.CustodyID]bool{}
	for _, hc := range hs {
		if hc.Attested {
			out[custody.CustodyID{Commitment: hc.Commitment, Slot: hc.Slot}] = true
		}
	}
	return out
}

// metric reads a sample of the node's registry: name and one label.
func (r *holderRig) metric(name, label, value string) float64 {
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
				if lp.GetName() == label && lp.GetValue() == value {
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

// fakeEntry is a store entry for custody id of the owner that no push
// delivered (1 byte, copy 0 of 1).
func (r *holderRig) fakeEntry(id custody.CustodyID) (store.Entry, []byte) {
	blob := []byte{byte(id.Commitment), byte(id.Slot)}
	return store.Entry{Custody: id, Owner: r.owner.PubKey(), Vault: rigVaults[0], Copies: 1,
		Digest: sha256.Sum256(blob), Size: int64(len(blob)), Received: time.Now()}, blob
}

// TestPoisonEntriesDoNotBlockTheQueue: the holder's attestation queue holds
// honest entries and entries that can never be attested — refused by the
// holder's own checks (a custody id out of range, a copy it does not hold)
// or by the chain (a custody nobody committed, one the chain assigned to
// another holder, each stored as if pushed). The holder restarts with that
// queue. Its first batcher round commits every honest entry and drops and
// counts every poisoned one; later honest pushes are attested in the next
// round. (Issue 8, item 1: one such entry used to block the queue for good,
// also across restarts; issue 10: a node attesting a custody it is not
// assigned is refused, and a holder never attests what it does not hold.)
func TestPoisonEntriesDoNotBlockTheQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newHolderRig(t, ctx)
	n := r.open(ctx)

	honest := []*version{r.push(ctx, rigVaults[0]), r.push(ctx, rigVaults[1])}
	foreign := r.commitShares(ctx, []string{rigVaults[2]}, 100)[0] // its other custody is the stranger's
	queueOnly := []custody.CustodyID{
		{Commitment: honest[0].id, Slot: 300}, // out of range
		{Commitment: 0, Slot: 1},              // out of range
		foreign.mine,                          // assigned here, never pushed: not held
	}
	stored := []custody.CustodyID{
		{Commitment: 1 << 30, Slot: 0}, // nobody committed it
		foreign.other,                  // the stranger's custody
	}
	for _, id := range queueOnly {
		if err := n.Accept(store.Entry{Custody: id}); err != nil {
			t.Fatalf("queueing %v: %v", id, err)
		}
	}
	if a, _ := r.pending(ctx); a != len(honest)+len(queueOnly) {
		t.Fatalf("%d attestations queued, want %d", a, len(honest)+len(queueOnly))
	}

	// Restart with that queue. Then copies of custodies the chain does not
	// give this holder are stored and queued (as a holder with a bug, or a
	// chain that changed under it, would); a restart's reconcile would
	// drop those before they are sent, so they come after it.
	r.close()
	n = r.open(ctx)
	for _, id := range stored {
		e, blob := r.fakeEntry(id)
		if _, err := n.Store().Put(e, blob); err != nil {
			t.Fatal(err)
		}
		if err := n.Accept(e); err != nil {
			t.Fatal(err)
		}
	}
	poison := len(queueOnly) + len(stored)
	const maxRounds = 3
	for round := 1; ; round++ {
		err := n.FlushQueues(ctx)
		got := r.attested(ctx)
		if got[honest[0].mine] && got[honest[1].mine] {
			break
		}
		if round == maxRounds {
			t.Fatalf("honest entries not attested after %d batcher rounds (last error: %v); on chain: %v", round, err, got)
		}
	}
	if a, _ := r.pending(ctx); a != 0 {
		t.Errorf("%d attestations still queued after the honest ones committed, want 0", a)
	}
	if d := r.metric("ksb_holder_dropped_entries_total", "kind", "attest"); d != float64(poison) {
		t.Errorf("dropped entries counted: %v, want %d", d, poison)
	}
	if got := r.attested(ctx); len(got) != len(honest) {
		t.Errorf("on chain: %v, want only the honest entries", got)
	}
	// Coverage counts exactly the honest custodies: the stranger's custody,
	// which the holder tried to attest, is not counted.
	hc, err := r.client.Custody(ctx, foreign.other)
	if err != nil || hc.Attested {
		t.Errorf("the stranger's custody: attested %v, %v", hc != nil && hc.Attested, err)
	}

	// The queue is not blocked: a later push is attested in one round.
	r.pushCopy(ctx, foreign)
	if err := n.FlushQueues(ctx); err != nil {
		t.Fatalf("round after the drops: %v", err)
	}
	if !r.attested(ctx)[foreign.mine] {
		t.Fatal("a push after the poisoned entries was not attested")
	}
}

// TestReleaseBacklogStaysBatched: after a crash, the holder's store has lost
// more than a thousand copies it attests on chain, and its release queue
// also holds releases the chain would refuse (custodies that are not its
// own). Reconciling with the chain queues the releases and logs once per
// reconcile, not once per entry; the queue then drains in a bounded number
// of full, batched transactions, the releases that can never pass are
// dropped before they are sent and counted, and the drops are logged once
// per batch. (Issue 14, item 3: 27,000 pending releases went out as
// single-entry transactions and logged 78,649 lines.)
func TestReleaseBacklogStaysBatched(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// More than a full batch (MaxEntries): one commitment per vault.
	const lost, refused = attest.MaxEntries + 76, 40
	vaults := make([]string, lost)
	for i := range vaults {
		vaults[i] = fmt.Sprintf("thorpub1addwnpepqvault%04d", i)
	}
	r := newHolderRigWith(t, ctx, rigOptions{vaults: vaults})
	vers := r.commitShares(ctx, vaults, 1)

	// The holder attested them all before its crash.
	s := attest.NewSender(r.client, r.holder)
	var mine []custody.CustodyID
	for _, v := range vers {
		mine = append(mine, v.mine)
	}
	for start := 0; start < lost; start += attest.MaxEntries {
		if _, err := s.Attest(ctx, mine[start:min(start+attest.MaxEntries, lost)]...); err != nil {
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
		t.Errorf("two reconciles of %d lost copies logged %d lines, want at most 2 each; first: %q", lost, len(logs), logs[:min(len(logs), 5)])
	}
	if rel := n.Queued("release"); rel != lost {
		t.Fatalf("%d releases queued, want %d", rel, lost)
	}
	for i := range refused {
		if i%2 == 0 {
			n.QueueRelease(vers[i].other) // the stranger's
		} else {
			n.QueueRelease(custody.CustodyID{Commitment: 1<<30 + uint64(i)}) // nobody's
		}
	}

	seq0 := r.sequence(ctx)
	mark = r.logs.mark()
	fctx, fcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer fcancel()
	const maxRounds = 10
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
	// Releases go 256 to a transaction (a block's write budget, see the
	// holder's maxReleaseBatch); the refused ones are dropped before any.
	if maxTxs := uint64((lost+255)/256 + 1); txs > maxTxs {
		t.Errorf("%d transactions for %d releases, want at most %d", txs, lost+refused, maxTxs)
	}
	hs, err := r.client.CustodiesByHolder(ctx, r.holderAddr())
	if err != nil {
		t.Fatal(err)
	}
	for _, hc := range hs {
		if hc.Status != "failed" || hc.FailReason != "released" {
			t.Fatalf("custody %d/%d is %s (%s) after its release", hc.Commitment, hc.Slot, hc.Status, hc.FailReason)
		}
	}
	if d := r.metric("ksb_holder_dropped_entries_total", "kind", "release"); d != refused {
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
	gauge := func(kind string) float64 { return r.metric("ksb_holder_pending_entries", "kind", kind) }

	var vers []*version
	for i, v := range rigVaults {
		vers = append(vers, r.push(ctx, v))
		if g := gauge("attest"); g != float64(i+1) {
			t.Fatalf("after %d accepted pushes the attest gauge reads %v", i+1, g)
		}
	}
	// The same copy again is not a new entry.
	r.pushCopy(ctx, vers[0])
	if g := gauge("attest"); g != 3 {
		t.Fatalf("after a duplicate push the attest gauge reads %v, want 3", g)
	}
	if err := n.FlushQueues(ctx); err != nil {
		t.Fatal(err)
	}
	if g := gauge("attest"); g != 0 {
		t.Fatalf("after the queue drained the attest gauge reads %v, want 0", g)
	}

	// A lost copy queues a release; its commit empties the gauge.
	if err := n.Store().Delete(vers[0].mine); err != nil {
		t.Fatal(err)
	}
	if err := n.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if g := gauge("release"); g != 1 {
		t.Fatalf("after a lost copy: release gauge %v, want 1", g)
	}
	if err := n.FlushQueues(ctx); err != nil {
		t.Fatal(err)
	}
	if g, a := gauge("release"), gauge("attest"); g != 0 || a != 0 {
		t.Fatalf("after the queues drained: release gauge %v, attest gauge %v; want 0", g, a)
	}

	// A dropped entry leaves the gauge too.
	if err := n.Accept(store.Entry{Custody: custody.CustodyID{Commitment: 1 << 30}}); err != nil {
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
