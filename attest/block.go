package attest

import (
	"fmt"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest/attestpb"
)

// blockCtx is what the custody logic knows of the block being finalized:
// the parameters, height, hash (the randomness of assignments, repairs and
// challenges) and epoch, where its events go, and a cache of the active
// set shared by every transaction of the block.
type blockCtx struct {
	p      *Params
	height int64
	hash   []byte
	epoch  uint64

	events      []abci.Event  // this transaction's events (forTx)
	blockEvents []abci.Event  // the block's own events (begin, end)
	out         *[]abci.Event // where emit appends
	cache       *blockCache
}

type blockCache struct {
	active *activeSet // nil: not computed since the last change of a node
}

func newBlockCtx(p *Params, height int64, hash []byte) *blockCtx {
	bc := &blockCtx{p: p, height: height, hash: hash, epoch: p.Epoch(height), cache: &blockCache{}}
	bc.out = &bc.blockEvents
	return bc
}

// forTx returns a context for one transaction of the block: same block,
// same cache, its own events.
func (bc *blockCtx) forTx() *blockCtx {
	t := &blockCtx{p: bc.p, height: bc.height, hash: bc.hash, epoch: bc.epoch, cache: bc.cache}
	t.out = &t.events
	return t
}

// invalidate drops the cached active set: a node was added, removed or
// failed (or a transaction that may have done so was undone).
func (bc *blockCtx) invalidate() { bc.cache.active = nil }

func (bc *blockCtx) emit(typ string, attrs ...string) {
	ev := abci.Event{Type: typ}
	for i := 0; i+1 < len(attrs); i += 2 {
		ev.Attributes = append(ev.Attributes, abci.EventAttribute{Key: attrs[i], Value: attrs[i+1], Index: true})
	}
	*bc.out = append(*bc.out, ev)
}

// activeSet is the active nodes, and which of them may be assigned new
// custodies.
type activeSet struct {
	sorted   []string // addresses, in byte order
	eligible map[string]bool
	records  map[string]*attestpb.NodeRecord
}

func (a *activeSet) has(addr string) bool { _, ok := a.records[addr]; return ok }

// eligibleNode: a node that failed as a holder gets no new custodies until
// RoundEpochs epochs after the epoch it failed in, so a dead node is not
// given copies it will never hold again while it is down.
func (bc *blockCtx) eligibleNode(n *attestpb.NodeRecord) bool {
	return n.FailedEpoch == 0 || bc.epoch > n.FailedEpoch-1+bc.p.RoundEpochs
}

func (bc *blockCtx) active(s kv) (*activeSet, error) {
	if bc.cache.active != nil {
		return bc.cache.active, nil
	}
	a := &activeSet{eligible: map[string]bool{}, records: map[string]*attestpb.NodeRecord{}}
	err := s.scan(prefNode, func(key string, val []byte) error {
		n := &attestpb.NodeRecord{}
		if err := decodeRec(key, val, n); err != nil {
			return err
		}
		addr := strings.TrimPrefix(key, prefNode)
		a.sorted = append(a.sorted, addr)
		a.records[addr] = n
		a.eligible[addr] = bc.eligibleNode(n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	bc.cache.active = a
	return a, nil
}

// begin is the block's work before its transactions: at an epoch's first
// block, the epoch's challenges.
func (bc *blockCtx) begin(s kv) error {
	if bc.height >= 1 && (bc.height-1)%bc.p.EpochBlocks == 0 {
		return bc.startEpoch(s, bc.epoch)
	}
	return nil
}

// end is the block's work after its transactions: the close of a proof
// window, then the timers due at this height (attestation deadlines,
// repair sources, retention).
func (bc *blockCtx) end(s kv) error {
	ep := &attestpb.EpochRecord{}
	ok, err := getRec(s, keyEpoch, ep)
	if err != nil {
		return err
	}
	if ok && ep.ProofDeadline == bc.height {
		if err := bc.closeWindow(s, ep); err != nil {
			return err
		}
	}
	return bc.runTimers(s)
}

// apply runs the state checks of tx, signed by signer, and writes its
// effects to s.
func (bc *blockCtx) apply(s kv, tx *Tx, signer string) error {
	if c, ok := tx.Msg.(*Churn); ok {
		return bc.applyChurn(s, c)
	}
	self, err := getNode(s, signer)
	if err != nil {
		return err
	}
	if self == nil {
		return fmt.Errorf("signer %s is not an active node: %w", signer, ErrUnauthorized)
	}
	switch m := tx.Msg.(type) {
	case *Commit:
		return bc.applyCommit(s, signer, m)
	case *Attest:
		return bc.applyAttest(s, signer, m)
	case *Prove:
		return bc.applyProve(s, signer, self, m)
	case *Release:
		return bc.applyRelease(s, signer, m)
	case *Drill:
		return bc.applyDrill(s, signer, self, m)
	case *UpdateNode:
		self.Multiaddrs = m.Multiaddrs
		return putRec(s, KeyNode(signer), self)
	}
	return fmt.Errorf("message %T: %w", tx.Msg, ErrMalformed)
}

// initGenesis writes the genesis state: the authority's account 0, the
// counters, and the genesis nodes and vaults (as a Churn at height 0).
func initGenesis(s kv, p *Params, authPub []byte, g Genesis) error {
	if err := putRec(s, KeyAccount(AuthorityAccount), &attestpb.AccountRecord{Pubkey: authPub, Address: p.AuthorityAddress}); err != nil {
		return err
	}
	if err := setUint(s, keyAccountOf(p.AuthorityAddress), AuthorityAccount); err != nil {
		return err
	}
	if err := putRec(s, keyCounters, &attestpb.Counters{NextAccount: AuthorityAccount + 1, NextVault: 1, NextCommitment: 1}); err != nil {
		return err
	}
	if len(g.Nodes)+len(g.Vaults) == 0 {
		return nil
	}
	return newBlockCtx(p, 0, nil).applyChurn(s, &Churn{AddNodes: g.Nodes, CreateVaults: g.Vaults})
}

func itoa(x uint64) string  { return strconv.FormatUint(x, 10) }
func itoa64(x int64) string { return strconv.FormatInt(x, 10) }
