package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
	badger "github.com/dgraph-io/badger/v4"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/badgeropen"
)

// MaxBlockItems caps the entries, nodes and vaults (Msg.Items) one block may
// touch. Each attestation entry writes two keys of about 250 bytes, so a full
// block is a Badger transaction of a few megabytes: well under Badger's batch
// limit (15% of its 64 MiB memtable), and a FinalizeBlock of milliseconds.
const MaxBlockItems = 4096

// MaxBlockBytes caps the transaction bytes of a block, which the
// application enforces itself (PrepareProposal keeps within it,
// ProcessProposal rejects a block over it): the chain's block.max_bytes is
// -1, so that PrepareProposal sees the whole mempool (see consensusParams).
// It is CometBFT's default block size; a full block of MaxBlockItems
// attestation entries is about 1 MiB.
const MaxBlockBytes = 4 << 20

// AppVersion is the application protocol version reported in Info.
const AppVersion uint64 = 1

// badgerBlockCache is the Badger block cache of the state store. The state is
// small (hundreds of bytes per attestation); Badger's 256 MiB default would
// be wasted in every validator process.
const badgerBlockCache = 16 << 20

var _ abci.Application = (*App)(nil)

// App is the ksb attestation chain's ABCI application. It is safe for
// concurrent use; CometBFT calls it from several connections.
type App struct {
	abci.BaseApplication // state sync snapshots and vote extensions: none

	log   *slog.Logger
	sigs  *sigCache
	check *checkState // the mempool's view: see CheckTx

	mu       sync.Mutex
	db       *badger.DB
	params   *Params     // nil until InitChain
	txn      *badger.Txn // the block being finalized, until Commit
	initTxn  bool        // txn holds InitChain's writes
	height   int64       // last committed height
	appHash  []byte      // last committed app hash
	pendingH int64
	pendingA []byte
}

// NewApp opens (or creates) the application state in dir. logger may be nil.
func NewApp(dir string, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := badger.DefaultOptions(dir).WithLogger(nil).WithBlockCacheSize(badgerBlockCache)
	db, err := badgeropen.Open(opts) // removes empty logs a kill left (badger#2207)
	if err != nil {
		return nil, fmt.Errorf("opening app state %s: %w", dir, err)
	}
	a := &App{db: db, log: logger, sigs: newSigCache(), check: newCheckState()}
	err = db.View(func(txn *badger.Txn) error {
		s := txnKV{txn}
		var p Params
		ok, err := getJSON(s, keyParams, &p)
		if err != nil {
			return err
		}
		if ok {
			a.params = &p
		}
		hb, err := s.get(keyHeight)
		if err != nil {
			return err
		}
		if hb != nil {
			if a.height, err = strconv.ParseInt(string(hb), 10, 64); err != nil {
				return fmt.Errorf("stored height %q: %w", hb, err)
			}
		}
		a.appHash, err = s.get(keyAppHash)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("loading app state %s: %w", dir, err)
	}
	return a, nil
}

// view runs fn on the last committed state, read-only; it may run
// concurrently with a block being finalized.
func (a *App) view(fn func(s kv) error) error {
	return a.db.View(func(txn *badger.Txn) error { return fn(txnKV{txn}) })
}

// Close discards an uncommitted block and closes the state store.
func (a *App) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.txn != nil {
		a.txn.Discard()
		a.txn = nil
	}
	return a.db.Close()
}

// Info reports the last committed height and app hash, so that CometBFT
// replays the blocks the application has not committed.
func (a *App) Info(context.Context, *abci.InfoRequest) (*abci.InfoResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &abci.InfoResponse{
		Data:             "ksb-attest",
		Version:          "1",
		AppVersion:       AppVersion,
		LastBlockHeight:  a.height,
		LastBlockAppHash: a.appHash,
	}, nil
}

// InitChain loads the genesis app state (see Genesis).
func (a *App) InitChain(_ context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.height > 0 {
		return nil, fmt.Errorf("InitChain on a chain at height %d", a.height)
	}
	g, err := ParseGenesis(req.AppStateBytes)
	if err != nil {
		return nil, err
	}
	g = g.withDefaults()
	if req.ChainId == "" || len(req.ChainId) > MaxChainIDLen {
		return nil, fmt.Errorf("chain ID %q: want 1..%d bytes", req.ChainId, MaxChainIDLen)
	}
	authPub, _ := hex.DecodeString(g.Authority)
	authAddr, err := identity.AddressFromPubKey(authPub, g.HRP)
	if err != nil {
		return nil, fmt.Errorf("genesis authority: %w", err)
	}
	p := Params{ChainID: req.ChainId, Authority: g.Authority, AuthorityAddress: authAddr, Replication: g.Replication, HRP: g.HRP}
	if a.txn != nil {
		a.txn.Discard()
	}
	a.txn = a.db.NewTransaction(true)
	s := txnKV{a.txn}
	if err := setJSON(s, keyParams, p); err != nil {
		return nil, err
	}
	ov := newOverlay(s)
	if len(g.Nodes)+len(g.Vaults) > 0 {
		if err := applyChurn(ov, &Churn{AddNodes: g.Nodes, CreateVaults: g.Vaults}, g.HRP, 0); err != nil {
			return nil, fmt.Errorf("genesis: %w", err)
		}
	}
	if err := ov.flush(); err != nil {
		return nil, err
	}
	hash, err := stateHash(a.txn)
	if err != nil {
		return nil, err
	}
	a.params, a.initTxn = &p, true
	a.log.Info("chain initialised", "chain_id", p.ChainID, "nodes", len(g.Nodes), "vaults", len(g.Vaults), "replication", p.Replication)
	return &abci.InitChainResponse{AppHash: hash}, nil
}

// CheckTx admits a transaction to the mempool only if it could execute on
// top of the last committed state: the stateless checks (decoding, caps,
// chain ID, message content, signature), then, against committed state, a
// signer allowed to send the message (an active node; the authority for a
// Churn) at a sequence not behind its committed one and less than
// MaxPendingPerSigner ahead, and room in the signer's mempool allowance
// (MaxPendingPerSigner transactions). A recheck after a block runs the same
// checks against the new state, so the mempool drops what the block made
// stale. FinalizeBlock checks everything again against the block's state:
// this only keeps out of the mempool, and so out of blocks, what could never
// pass there.
func (a *App) CheckTx(_ context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	a.mu.Lock()
	p := a.params
	a.mu.Unlock()
	if err := a.checkTx(p, req.Tx); err != nil {
		return &abci.CheckTxResponse{Code: errCode(err), Log: err.Error(), Codespace: Codespace}, nil
	}
	return &abci.CheckTxResponse{Code: CodeOK}, nil
}

// checkTx runs CheckTx's checks, cheapest first: a transaction whose signer
// has no role costs its decoding and two point reads — neither its content
// nor its signature is checked — and a signer's allowance is only counted
// once its signature is verified, so nobody can use up another's.
func (a *App) checkTx(p *Params, raw []byte) error {
	if p == nil {
		return fmt.Errorf("chain not initialised: %w", ErrInternal)
	}
	tx, err := DecodeTx(raw)
	if err != nil {
		return err
	}
	if tx.ChainID != p.ChainID {
		return fmt.Errorf("transaction for chain %q, this is %q: %w", tx.ChainID, p.ChainID, ErrWrongChain)
	}
	signer, err := a.committedSigner(p, tx)
	if err != nil {
		return err
	}
	if err := tx.checkBasic(p.ChainID, p.HRP); err != nil {
		return err
	}
	if err := a.verify(raw, tx); err != nil {
		return err
	}
	return a.check.admit(signer, sha256.Sum256(raw))
}

// committedSigner runs checkSigner against the last committed state.
func (a *App) committedSigner(p *Params, tx *Tx) (signer string, err error) {
	err = a.view(func(s kv) error {
		var err error
		signer, err = checkSigner(s, p, tx)
		return err
	})
	return signer, err
}

// checkStateless decodes raw and runs every check that needs no state.
func (a *App) checkStateless(p *Params, raw []byte) (*Tx, error) {
	tx, err := a.decodeChecked(p, raw)
	if err != nil {
		return nil, err
	}
	if err := a.verify(raw, tx); err != nil {
		return nil, err
	}
	return tx, nil
}

// decodeChecked decodes raw and checks its content, but not its signature.
func (a *App) decodeChecked(p *Params, raw []byte) (*Tx, error) {
	if p == nil {
		return nil, fmt.Errorf("chain not initialised: %w", ErrInternal)
	}
	tx, err := DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	if err := tx.checkBasic(p.ChainID, p.HRP); err != nil {
		return nil, err
	}
	return tx, nil
}

// verify checks tx's signature. A signature is verified once; later calls
// for the same bytes use sigs.
func (a *App) verify(raw []byte, tx *Tx) error {
	if a.sigs.has(raw) {
		return nil
	}
	if err := tx.Verify(); err != nil {
		return err
	}
	a.sigs.add(raw)
	return nil
}

// PrepareProposal builds a block from the mempool's transactions that pass
// the stateless checks and whose signer may send them in the last committed
// state (see CheckTx), within the block's byte budget and MaxBlockItems, so
// that no signer can crowd the others out:
//
//   - of each signer's transactions, only those at consecutive sequences
//     from its committed one are kept (the first of several at one sequence;
//     one at a gap and the ones after it wait): any other would fail in
//     FinalizeBlock, and its space is wasted;
//   - signers take turns: every signer's first transaction, then every
//     signer's second, and so on; within a turn the smallest (fewest items)
//     first, so a holder's attestation of a few entries is never left out
//     for other signers' full ones;
//   - a transaction that does not fit is skipped, with its signer's later
//     ones, and the rest are still tried.
//
// A node may keep MaxPendingPerSigner transactions of MaxEntries items in
// the mempool, four blocks' worth: taken in mempool order, k such nodes made
// a later transaction wait up to 4k blocks.
func (a *App) PrepareProposal(_ context.Context, req *abci.PrepareProposalRequest) (*abci.PrepareProposalResponse, error) {
	a.mu.Lock()
	p := a.params
	a.mu.Unlock()
	type candidate struct {
		raw   []byte
		tx    *Tx
		pos   int
		items int
	}
	bySigner := map[string][]candidate{}
	var signers []string // in order of first appearance
	next := map[string]uint64{}
	for pos, raw := range req.Txs {
		tx, err := a.checkStateless(p, raw)
		if err != nil {
			continue
		}
		var signer string
		var seq uint64
		err = a.view(func(s kv) error {
			var err error
			if signer, err = checkSigner(s, p, tx); err != nil {
				return err
			}
			seq, err = getSeq(s, signer)
			return err
		})
		if err != nil {
			continue
		}
		if _, ok := bySigner[signer]; !ok {
			signers = append(signers, signer)
			next[signer] = seq
		}
		bySigner[signer] = append(bySigner[signer], candidate{raw: raw, tx: tx, pos: pos, items: tx.Msg.Items()})
	}
	// Each signer's runnable chain: consecutive sequences from its
	// committed one, the first transaction of each sequence.
	chains := make(map[string][]candidate, len(signers))
	for _, signer := range signers {
		cs := bySigner[signer]
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].tx.Sequence < cs[j].tx.Sequence })
		want := next[signer]
		for _, c := range cs {
			if c.tx.Sequence == want {
				chains[signer] = append(chains[signer], c)
				want++
			}
		}
	}
	var (
		txs     [][]byte
		bytes   int64
		items   int
		stopped = map[string]bool{}
	)
	for turn := 0; ; turn++ {
		var round []candidate
		var roundSigners []string
		for _, signer := range signers {
			if cs := chains[signer]; turn < len(cs) && !stopped[signer] {
				round = append(round, cs[turn])
				roundSigners = append(roundSigners, signer)
			}
		}
		if len(round) == 0 {
			break
		}
		idx := make([]int, len(round))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(i, j int) bool {
			a, b := round[idx[i]], round[idx[j]]
			if a.items != b.items {
				return a.items < b.items
			}
			return a.pos < b.pos
		})
		for _, i := range idx {
			c := round[i]
			if bytes+int64(len(c.raw)) > min(req.MaxTxBytes, MaxBlockBytes) || items+c.items > MaxBlockItems {
				stopped[roundSigners[i]] = true // its later transactions need this one
				continue
			}
			bytes += int64(len(c.raw))
			items += c.items
			txs = append(txs, c.raw)
		}
	}
	return &abci.PrepareProposalResponse{Txs: txs}, nil
}

// ProcessProposal accepts a block only if it holds at most MaxBlockBytes of
// transactions, every transaction passes the stateless checks and the block
// touches at most MaxBlockItems items: an
// honest proposer never proposes anything else. It does not check signers
// against state: a transaction of a node added by a Churn earlier in the
// same block is valid, and a block fetched by block sync never comes here,
// so FinalizeBlock is where state decides.
func (a *App) ProcessProposal(_ context.Context, req *abci.ProcessProposalRequest) (*abci.ProcessProposalResponse, error) {
	a.mu.Lock()
	p := a.params
	a.mu.Unlock()
	items, size := 0, 0
	for _, raw := range req.Txs {
		size += len(raw)
	}
	if size > MaxBlockBytes {
		a.log.Warn("rejecting proposal", "height", req.Height, "bytes", size)
		return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_REJECT}, nil
	}
	for i, raw := range req.Txs {
		tx, err := a.checkStateless(p, raw)
		if err != nil {
			a.log.Warn("rejecting proposal", "height", req.Height, "tx", i, "err", err)
			return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_REJECT}, nil
		}
		items += tx.Msg.Items()
	}
	if items > MaxBlockItems {
		a.log.Warn("rejecting proposal", "height", req.Height, "items", items)
		return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_REJECT}, nil
	}
	return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_ACCEPT}, nil
}

// FinalizeBlock executes the block's transactions against state. Each gets
// its own result; a failing transaction changes nothing but its signer's
// sequence (once the signature and sequence are right, the sequence is
// used, so a refused transaction cannot be replayed later).
func (a *App) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.params == nil {
		return nil, errors.New("FinalizeBlock before InitChain")
	}
	if a.txn != nil && !a.initTxn {
		a.txn.Discard() // a block finalized but never committed
		a.txn = nil
	}
	if a.txn == nil {
		a.txn = a.db.NewTransaction(true)
	}
	a.initTxn = false
	block := txnKV{a.txn}
	results := make([]*abci.ExecTxResult, len(req.Txs))
	for i, raw := range req.Txs {
		res, err := a.deliver(block, raw, req.Height)
		if err != nil {
			// The store failed: results would differ between validators,
			// so stop here rather than commit a guess.
			a.txn.Discard()
			a.txn = nil
			return nil, fmt.Errorf("block %d, transaction %d: %w", req.Height, i, err)
		}
		results[i] = res
	}
	hash, err := stateHash(a.txn)
	if err != nil {
		return nil, err
	}
	a.pendingH, a.pendingA = req.Height, hash
	return &abci.FinalizeBlockResponse{TxResults: results, AppHash: hash}, nil
}

// deliver executes one transaction. Refusals are results; a storage failure
// (ErrInternal) is an error, since it is not the same on every validator.
func (a *App) deliver(block kv, raw []byte, height int64) (*abci.ExecTxResult, error) {
	fail := func(err error) (*abci.ExecTxResult, error) {
		if errors.Is(err, ErrInternal) {
			return nil, err
		}
		return &abci.ExecTxResult{Code: errCode(err), Log: err.Error(), Codespace: Codespace}, nil
	}
	tx, err := a.checkStateless(a.params, raw)
	if err != nil {
		return fail(err)
	}
	signer, _ := tx.SignerAddress(a.params.HRP) // checked by checkStateless
	seq, err := getSeq(block, signer)
	if err != nil {
		return fail(err)
	}
	if tx.Sequence != seq {
		return fail(fmt.Errorf("sequence %d, %s's next is %d: %w", tx.Sequence, signer, seq, ErrBadSequence))
	}
	if err := setSeq(block, signer, seq+1); err != nil {
		return fail(err)
	}
	ov := newOverlay(block)
	if err := a.apply(ov, tx, signer, height); err != nil {
		return fail(fmt.Errorf("%s: %w", tx.Msg.Type(), err))
	}
	if err := ov.flush(); err != nil {
		return fail(err)
	}
	res := &abci.ExecTxResult{
		Code: CodeOK,
		Events: []abci.Event{{
			Type: "ksb",
			Attributes: []abci.EventAttribute{
				{Key: "msg", Value: tx.Msg.Type(), Index: true},
				{Key: "signer", Value: signer, Index: true},
				{Key: "items", Value: strconv.Itoa(tx.Msg.Items())},
			},
		}},
	}
	return res, nil
}

// apply runs the state checks of tx and writes its effects to s.
func (a *App) apply(s kv, tx *Tx, signer string, height int64) error {
	if c, ok := tx.Msg.(*Churn); ok {
		if hex.EncodeToString(tx.Signer) != a.params.Authority {
			return fmt.Errorf("signer %s is not the authority %s: %w", signer, a.params.AuthorityAddress, ErrUnauthorized)
		}
		return applyChurn(s, c, a.params.HRP, height)
	}
	var self nodeRecord
	ok, err := getJSON(s, prefNode+signer, &self)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("signer %s is not an active node: %w", signer, ErrUnauthorized)
	}
	switch m := tx.Msg.(type) {
	case *Attest:
		vaults := map[string]*vaultRecord{} // decoded once per transaction
		for i, e := range m.Entries {
			v := vaults[e.Vault]
			if v == nil {
				v = &vaultRecord{}
				ok, err := getJSON(s, prefVault+e.Vault, v)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("entry %d: vault %s: %w", i, e.Vault, ErrNotFound)
				}
				vaults[e.Vault] = v
			}
			if v.Retired {
				return fmt.Errorf("entry %d: vault %s is retired: %w", i, e.Vault, ErrInvalid)
			}
			if !slices.Contains(v.Members, e.Owner) {
				active, err := s.get(prefNode + e.Owner)
				if err != nil {
					return err
				}
				if active == nil {
					return fmt.Errorf("entry %d: owner %s is neither an active node nor a member of vault %s: %w", i, e.Owner, e.Vault, ErrInvalid)
				}
			}
			// Replaces the signer's attestation of another digest of this
			// owner and vault, if any (see attRecord).
			rec := attRecord{Digest: hex.EncodeToString(e.Digest[:]), Size: e.Size, Height: height}
			if err := setJSON(s, attKey(signer, e.Owner, e.Vault), rec); err != nil {
				return err
			}
			if err := s.set(ownKey(signer, e.Owner, e.Vault), nil); err != nil {
				return err
			}
		}
	case *Release:
		for i, k := range m.Entries {
			var rec attRecord
			ok, err := getJSON(s, attKey(signer, k.Owner, k.Vault), &rec)
			if err != nil {
				return err
			}
			if !ok || rec.Digest != hex.EncodeToString(k.Digest[:]) {
				return fmt.Errorf("entry %d: %s holds no blob %x of owner %s for vault %s: %w", i, signer, k.Digest, k.Owner, k.Vault, ErrNotFound)
			}
			if err := s.del(attKey(signer, k.Owner, k.Vault)); err != nil {
				return err
			}
			if err := s.del(ownKey(signer, k.Owner, k.Vault)); err != nil {
				return err
			}
		}
	case *UpdateNode:
		self.Multiaddrs = m.Multiaddrs
		return setJSON(s, prefNode+signer, self)
	}
	return nil
}

// applyChurn applies c to s in field order: add nodes, remove nodes, create
// vaults (members must be active after that), retire vaults.
func applyChurn(s kv, c *Churn, hrp string, height int64) error {
	for i, n := range c.AddNodes {
		addr, err := n.validate(hrp)
		if err != nil {
			return err
		}
		old, err := s.get(prefNode + addr)
		if err != nil {
			return err
		}
		if old != nil {
			return fmt.Errorf("add_nodes[%d]: node %s is already active: %w", i, addr, ErrExists)
		}
		if err := setJSON(s, prefNode+addr, nodeRecord{PubKey: n.PubKey, Multiaddrs: n.Multiaddrs, Height: height}); err != nil {
			return err
		}
	}
	for i, addr := range c.RemoveNodes {
		old, err := s.get(prefNode + addr)
		if err != nil {
			return err
		}
		if old == nil {
			return fmt.Errorf("remove_nodes[%d]: node %s is not active: %w", i, addr, ErrNotFound)
		}
		if err := s.del(prefNode + addr); err != nil {
			return err
		}
	}
	for i, v := range c.CreateVaults {
		old, err := s.get(prefVault + v.PubKey)
		if err != nil {
			return err
		}
		if old != nil {
			return fmt.Errorf("create_vaults[%d]: vault %s: %w", i, v.PubKey, ErrExists)
		}
		for _, m := range v.Members {
			n, err := s.get(prefNode + m)
			if err != nil {
				return err
			}
			if n == nil {
				return fmt.Errorf("create_vaults[%d]: member %s is not an active node: %w", i, m, ErrInvalid)
			}
		}
		rec := vaultRecord{Members: v.Members, Threshold: v.Threshold, Height: height}
		if err := setJSON(s, prefVault+v.PubKey, rec); err != nil {
			return err
		}
	}
	for i, k := range c.RetireVaults {
		var v vaultRecord
		ok, err := getJSON(s, prefVault+k, &v)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("retire_vaults[%d]: vault %s: %w", i, k, ErrNotFound)
		}
		if v.Retired {
			return fmt.Errorf("retire_vaults[%d]: vault %s is already retired: %w", i, k, ErrInvalid)
		}
		v.Retired, v.RetiredHeight = true, height
		if err := setJSON(s, prefVault+k, v); err != nil {
			return err
		}
	}
	return nil
}

// Commit writes the finalized block's state, height and app hash in one
// Badger transaction.
func (a *App) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.txn == nil || a.pendingH == 0 {
		return nil, errors.New("commit without a finalized block")
	}
	s := txnKV{a.txn}
	if err := s.set(keyHeight, []byte(strconv.FormatInt(a.pendingH, 10))); err != nil {
		return nil, err
	}
	if err := s.set(keyAppHash, a.pendingA); err != nil {
		return nil, err
	}
	if err := a.txn.Commit(); err != nil {
		a.txn = nil
		return nil, fmt.Errorf("committing block %d: %w", a.pendingH, err)
	}
	a.txn = nil
	a.height, a.appHash = a.pendingH, a.pendingA
	a.pendingH, a.pendingA = 0, nil
	// The mempool rechecks what it still holds against the new state, and
	// counts every signer's allowance again.
	a.check.reset()
	return &abci.CommitResponse{}, nil
}

// AppHash returns the last committed height and app hash.
func (a *App) AppHash() (int64, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.height, bytes.Clone(a.appHash)
}
