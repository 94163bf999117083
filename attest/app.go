package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
	badger "github.com/dgraph-io/badger/v4"

	"github.com/ksb-project/ksb/attest/attestpb"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/badgeropen"
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
	p := Params{ChainID: req.ChainId, Authority: g.Authority, AuthorityAddress: authAddr, Replication: g.Replication, HRP: g.HRP, CustodyParams: g.CustodyParams}
	if a.txn != nil {
		a.txn.Discard()
	}
	a.txn = a.db.NewTransaction(true)
	s := txnKV{a.txn}
	if err := setJSON(s, keyParams, p); err != nil {
		return nil, err
	}
	ov := newOverlay(s)
	if err := initGenesis(ov, &p, authPub, g); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
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
		// so stop here rather than commit a guess.
		a.txn.Discard()
		a.txn = nil
		return nil, fmt.Errorf("block %d: %w", req.Height, err)
	}
	hash, err := stateHash(a.txn)
	if err != nil {
		return nil, err
	}
	a.pendingH, a.pendingA = req.Height, hash
	return &abci.FinalizeBlockResponse{TxResults: results, AppHash: hash, Events: bc.blockEvents}, nil
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
