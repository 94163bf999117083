package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest/attestpb"
	"github.com/ksb-project/ksb/attest/internal/statestore"
	"github.com/ksb-project/ksb/identity"
)

// MaxBlockWrites caps the state writes one block's transactions may make,
// as each message bounds them (a share of a Commit 6 + 3r, an attested
// custody 2, a proof 2, a released custody 8, …: msg.go). On an IAVL store a
// write costs about 0.1 ms at 10^5 keys, so a full block's transactions cost
// about 0.4 s of FinalizeBlock; the reference network's churn (120 Commits
// of 2 shares at r = 3, 3,360 writes with their sequences) fits one block.
// The work the chain does by itself (an epoch's challenges, repairs, timers)
// is not counted: it is bounded by the state, not by transactions.
const MaxBlockWrites = 4096

// AppVersion is the application protocol version reported in Info.
const AppVersion uint64 = 1

var _ abci.Application = (*App)(nil)

// App is the ksb attestation chain's ABCI application. It is safe for
// concurrent use; CometBFT calls it from several connections.
type App struct {
	abci.BaseApplication // state sync snapshots and vote extensions: none

	log   *slog.Logger
	sigs  *sigCache
	check *checkState // the mempool's view: see CheckTx

	st *statestore.Store // committed versions are safe to read without mu

	mu     sync.Mutex
	params *Params // nil until InitChain
	// genesis is InitChain's request until block 1 is committed: the
	// working tree then holds its writes, and a rollback must redo them.
	genesis  *abci.InitChainRequest
	pendingH int64 // the block finalized and not yet committed (0: none)
}

// NewApp opens (or creates) the application state in dir. logger may be nil.
func NewApp(dir string, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(dir, "KEYREGISTRY")); err == nil {
		return nil, fmt.Errorf("app state %s is a Badger database from an earlier ksb; state is now an IAVL tree "+
			"with a different app hash, so the chain cannot continue from it: create a new chain (docs/attestation.md)", dir)
	}
	st, err := statestore.Open(statestore.DefaultOptions(dir).WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("opening app state: %w", err)
	}
	a := &App{st: st, log: logger, sigs: newSigCache(), check: newCheckState()}
	var p Params
	ok, err := getJSON(snapKV{st.Latest()}, keyParams, &p)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("loading app state %s: %w", dir, err)
	}
	if ok {
		a.params = &p
	}
	return a, nil
}

// view runs fn on the last committed state, read-only; it may run
// concurrently with a block being finalized or committed.
func (a *App) view(fn func(s kv) error) error {
	return fn(snapKV{a.st.Latest()})
}

// Close discards an uncommitted block and closes the state store, after the
// reads in flight.
func (a *App) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.Close()
}

// Info reports the last committed height and app hash, so that CometBFT
// replays the blocks the application has not committed.
func (a *App) Info(context.Context, *abci.InfoRequest) (*abci.InfoResponse, error) {
	snap := a.st.Latest()
	return &abci.InfoResponse{
		Data:             "ksb-attest",
		Version:          "1",
		AppVersion:       AppVersion,
		LastBlockHeight:  snap.Version(),
		LastBlockAppHash: snap.Hash(),
	}, nil
}

// InitChain loads the genesis app state (see Genesis) into the working tree
// and returns its root, which is block 1's app hash; block 1's Commit saves
// it with block 1's changes. Until then a restart finds nothing committed,
// and CometBFT calls InitChain again.
func (a *App) InitChain(_ context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h := a.st.Latest().Version(); h > 0 {
		return nil, fmt.Errorf("InitChain on a chain at height %d", h)
	}
	a.st.Rollback()
	if req.InitialHeight > 1 {
		if err := a.st.SetInitialVersion(req.InitialHeight); err != nil {
			return nil, err
		}
	}
	p, g, err := a.initState(req)
	if err != nil {
		a.st.Rollback()
		return nil, err
	}
	a.params, a.genesis, a.pendingH = p, req, 0
	a.log.Info("chain initialised", "chain_id", p.ChainID, "nodes", len(g.Nodes), "vaults", len(g.Vaults), "replication", p.Replication)
	return &abci.InitChainResponse{AppHash: a.st.WorkingHash()}, nil
}

// initState writes the genesis state of req into the working tree.
func (a *App) initState(req *abci.InitChainRequest) (*Params, Genesis, error) {
	g, err := ParseGenesis(req.AppStateBytes)
	if err != nil {
		return nil, g, err
	}
	g = g.withDefaults()
	if req.ChainId == "" || len(req.ChainId) > MaxChainIDLen {
		return nil, g, fmt.Errorf("chain ID %q: want 1..%d bytes", req.ChainId, MaxChainIDLen)
	}
	authPub, _ := hex.DecodeString(g.Authority)
	authAddr, err := identity.AddressFromPubKey(authPub, g.HRP)
	if err != nil {
		return nil, g, fmt.Errorf("genesis authority: %w", err)
	}
	p := &Params{ChainID: req.ChainId, Authority: g.Authority, AuthorityAddress: authAddr, Replication: g.Replication, HRP: g.HRP, CustodyParams: g.CustodyParams}
	s := treeKV{a.st}
	if err := setJSON(s, keyParams, p); err != nil {
		return nil, g, err
	}
	ov := newOverlay(s)
	if err := initGenesis(ov, p, authPub, g); err != nil {
		return nil, g, fmt.Errorf("genesis: %w", err)
	}
	if err := ov.flush(); err != nil {
		return nil, g, err
	}
	return p, g, nil
}

// rollback discards the working tree's changes since the last commit, but
// not InitChain's before block 1: those are written again.
func (a *App) rollback() error {
	a.st.Rollback()
	a.pendingH = 0
	if a.genesis != nil && a.st.Latest().Version() == 0 {
		if _, _, err := a.initState(a.genesis); err != nil {
			a.st.Rollback()
			return fmt.Errorf("rewriting the genesis state: %w", err)
		}
	}
	return nil
}

// CheckTx admits a transaction to the mempool only if it could execute on
// top of the last committed state: decoding and caps, then, against
// committed state, a signer account allowed to send the message (an active
// node; the authority for a Churn) at a sequence not behind its committed
// one and less than MaxPendingPerSigner ahead, then the message content and
// the signature under the account's key, and room in the signer's mempool
// allowance (MaxPendingPerSigner transactions). A recheck after a block runs the same
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
	acct, err := a.committedSigner(p, tx)
	if err != nil {
		return err
	}
	if err := tx.checkBasic(p.HRP); err != nil {
		return err
	}
	if err := a.verify(p, raw, tx, acct.Pubkey); err != nil {
		return err
	}
	return a.check.admit(acct.Address, sha256.Sum256(raw))
}

// committedSigner runs checkSigner against the last committed state.
func (a *App) committedSigner(p *Params, tx *Tx) (acct *attestpb.AccountRecord, err error) {
	err = a.view(func(s kv) error {
		var err error
		acct, err = checkSigner(s, p, tx)
		return err
	})
	return acct, err
}

// checkStateless decodes raw and runs every check that needs no state: the
// signature needs the signer account's key, which is state.
func (a *App) checkStateless(p *Params, raw []byte) (*Tx, error) {
	if p == nil {
		return nil, fmt.Errorf("chain not initialised: %w", ErrInternal)
	}
	tx, err := DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	if err := tx.checkBasic(p.HRP); err != nil {
		return nil, err
	}
	return tx, nil
}

// verify checks tx's signature under pub. A signature is verified once;
// later calls for the same bytes use sigs (an account's key never changes,
// so the same bytes always verify under the same key).
func (a *App) verify(p *Params, raw []byte, tx *Tx, pub []byte) error {
	if a.sigs.has(raw) {
		return nil
	}
	if err := tx.Verify(p.ChainID, pub); err != nil {
		return err
	}
	a.sigs.add(raw)
	return nil
}

// PrepareProposal keeps, in mempool order, the transactions that pass the
// stateless checks and whose signer may send them at that sequence in the
// last committed state, signed by its key (see CheckTx), up to the block's
// byte budget and MaxBlockWrites.
func (a *App) PrepareProposal(_ context.Context, req *abci.PrepareProposalRequest) (*abci.PrepareProposalResponse, error) {
	a.mu.Lock()
	p := a.params
	a.mu.Unlock()
	var (
		txs    [][]byte
		bytes  int64
		writes int
	)
	for _, raw := range req.Txs {
		tx, err := a.checkStateless(p, raw)
		if err != nil {
			continue
		}
		acct, err := a.committedSigner(p, tx)
		if err != nil || a.verify(p, raw, tx, acct.Pubkey) != nil {
			continue
		}
		w := txWrites(tx.Msg, int(p.Replication))
		if bytes+int64(len(raw)) > req.MaxTxBytes || writes+w > MaxBlockWrites {
			break
		}
		bytes += int64(len(raw))
		writes += w
		txs = append(txs, raw)
	}
	return &abci.PrepareProposalResponse{Txs: txs}, nil
}

// ProcessProposal accepts a block only if every transaction passes the
// stateless checks, the signature of every transaction whose account is in
// the last committed state verifies, and the block's transactions write at
// most MaxBlockWrites keys: an honest proposer never proposes anything else.
// It does not check signers' roles or sequences against state: a
// transaction of a node added by a Churn earlier in the same block is
// valid, and a block fetched by block sync never comes here, so
// FinalizeBlock is where state decides.
func (a *App) ProcessProposal(_ context.Context, req *abci.ProcessProposalRequest) (*abci.ProcessProposalResponse, error) {
	a.mu.Lock()
	p := a.params
	a.mu.Unlock()
	writes := 0
	for i, raw := range req.Txs {
		tx, err := a.checkStateless(p, raw)
		if err == nil {
			err = a.committedSignature(p, raw, tx)
		}
		if err != nil {
			a.log.Warn("rejecting proposal", "height", req.Height, "tx", i, "err", err)
			return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_REJECT}, nil
		}
		writes += txWrites(tx.Msg, int(p.Replication))
	}
	if writes > MaxBlockWrites {
		a.log.Warn("rejecting proposal", "height", req.Height, "writes", writes)
		return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_REJECT}, nil
	}
	return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_ACCEPT}, nil
}

// FinalizeBlock executes the block's transactions against state. Each gets
// its own result; a failing transaction changes nothing but its signer's
// sequence (once the signature and sequence are right, the sequence is
// used, so a refused transaction cannot be replayed later). The app hash is
// the root of the state tree with the block's changes; Commit saves it. A
// storage failure discards the whole block.
func (a *App) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	return a.finalizeBlock(req, nil)
}

// finalizeBlock is FinalizeBlock; tests pass a wrap of the block's state
// (to make the store fail), nil otherwise.
func (a *App) finalizeBlock(req *abci.FinalizeBlockRequest, wrap func(kv) kv) (*abci.FinalizeBlockResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.params == nil {
		return nil, errors.New("FinalizeBlock before InitChain")
	}
	if a.pendingH != 0 {
		// A block finalized but never committed: start again from the
		// last commit.
		if err := a.rollback(); err != nil {
			return nil, err
		}
	}
	if v := a.st.WorkingVersion(); req.Height != v {
		return nil, fmt.Errorf("block %d on a state whose next version is %d", req.Height, v)
	}
	var block kv = treeKV{a.st}
	if wrap != nil {
		block = wrap(block)
	}
	bc := newBlockCtx(a.params, req.Height, req.Hash)
	results := make([]*abci.ExecTxResult, len(req.Txs))
	err := bc.begin(block)
	for i, raw := range req.Txs {
		if err != nil {
			break
		}
		var res *abci.ExecTxResult
		if res, err = a.deliver(block, raw, bc); err != nil {
			err = fmt.Errorf("transaction %d: %w", i, err)
		}
		results[i] = res
	}
	if err == nil {
		err = bc.end(block)
	}
	if err != nil {
		// The store failed: results would differ between validators,
		// so stop here rather than commit a guess, and leave nothing
		// of the block behind.
		if rerr := a.rollback(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("block %d: %w", req.Height, err)
	}
	a.pendingH = req.Height
	return &abci.FinalizeBlockResponse{TxResults: results, AppHash: a.st.WorkingHash(), Events: bc.blockEvents}, nil
}

// deliver executes one transaction. Refusals are results; a storage failure
// (ErrInternal) is an error, since it is not the same on every validator.
func (a *App) deliver(block kv, raw []byte, bc *blockCtx) (*abci.ExecTxResult, error) {
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
	acct, err := getAccount(block, tx.Signer)
	if err != nil {
		return fail(err)
	}
	if acct == nil {
		return fail(fmt.Errorf("signer account %d does not exist: %w", tx.Signer, ErrUnauthorized))
	}
	if err := a.verify(a.params, raw, tx, acct.Pubkey); err != nil {
		return fail(err)
	}
	if tx.Sequence != acct.Sequence {
		return fail(fmt.Errorf("sequence %d, account %d's next is %d: %w", tx.Sequence, tx.Signer, acct.Sequence, ErrBadSequence))
	}
	acct.Sequence++
	if err := putRec(block, KeyAccount(tx.Signer), acct); err != nil {
		return fail(err)
	}
	ov := newOverlay(block)
	txc := bc.forTx()
	err = txc.apply(ov, tx, acct.Address)
	bc.invalidate() // a failed transaction's view of the nodes is gone
	if err != nil {
		return fail(fmt.Errorf("%s: %w", tx.Msg.Type(), err))
	}
	if err := ov.flush(); err != nil {
		return fail(err)
	}
	res := &abci.ExecTxResult{
		Code: CodeOK,
		Events: append([]abci.Event{{
			Type: "ksb",
			Attributes: []abci.EventAttribute{
				{Key: "msg", Value: tx.Msg.Type(), Index: true},
				{Key: "signer", Value: acct.Address, Index: true},
				{Key: "items", Value: strconv.Itoa(tx.Msg.Items())},
			},
		}}, txc.events...),
	}
	return res, nil
}

// Commit saves the finalized block's state tree as version = height, in
// one atomic, fsynced write.
func (a *App) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pendingH == 0 {
		return nil, errors.New("commit without a finalized block")
	}
	snap, err := a.st.Commit()
	if err != nil {
		return nil, fmt.Errorf("committing block %d: %w", a.pendingH, err)
	}
	if snap.Version() != a.pendingH {
		return nil, fmt.Errorf("committed block %d as state version %d", a.pendingH, snap.Version())
	}
	a.pendingH, a.genesis = 0, nil
	// The mempool rechecks what it still holds against the new state, and
	// counts every signer's allowance again.
	a.check.reset()
	return &abci.CommitResponse{}, nil
}

// AppHash returns the last committed height and app hash.
func (a *App) AppHash() (int64, []byte) {
	snap := a.st.Latest()
	return snap.Version(), snap.Hash()
}
