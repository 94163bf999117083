package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"
)

// MaxCommitWait bounds how long Broadcast waits for a transaction accepted
// into the mempool to appear in a block. With second-scale blocks a
// transaction not committed after a minute has been dropped (mempool full,
// node restarted), and waiting longer would only hide that.
const MaxCommitWait = time.Minute

// commitPollInterval is how often Broadcast asks whether its transaction is
// in a block: a fraction of the shortest block interval ksb uses (100 ms in
// tests), so the wait adds little to the commit time.
const commitPollInterval = 50 * time.Millisecond

// sequenceCheckInterval is how often a Sender's wait asks whether its
// signer's committed sequence has passed the transaction's (one query,
// and a look at the blocks since the submission once it has): about a
// block of the fastest chains ksb runs, so a transaction that can no
// longer commit costs a block or two, not MaxCommitWait.
const sequenceCheckInterval = 250 * time.Millisecond

// Client reads the chain and broadcasts transactions through the CometBFT RPC
// of any node running the ksb application. It is safe for concurrent use.
type Client struct {
	rpc *rpchttp.HTTP
	url string
}

// TxResult is a committed transaction.
type TxResult struct {
	// Hash is the transaction hash, upper-case hex.
	Hash string
	// Height is the block that committed it.
	Height int64
	// Events are the transaction's events (docs/attestation.md, "Events").
	Events []abci.Event
}

// Assignment is one custody assigned in a transaction's block: a holder of
// a new commitment (Source "") or a repair's replacement.
type Assignment struct {
	Custody   CustodyID
	Holder    string
	CopyIndex uint32
	Source    string
}

// Assignments returns the custodies r's transaction assigned, from its
// "ksb.assign" events: for a Commit, the holders of each new commitment
// (copy i to the holder of slot i), so the owner can push without a query.
func (r *TxResult) Assignments() []Assignment {
	var out []Assignment
	for _, ev := range r.Events {
		if ev.Type != "ksb.assign" {
			continue
		}
		var a Assignment
		var ok [4]bool
		for _, at := range ev.Attributes {
			switch at.Key {
			case "commitment":
				a.Custody.Commitment, ok[0] = parseU(at.Value)
			case "slot":
				a.Custody.Slot, ok[1] = parseU(at.Value)
			case "holder":
				a.Holder, ok[2] = at.Value, at.Value != ""
			case "copy":
				var x uint64
				x, ok[3] = parseU(at.Value)
				a.CopyIndex = uint32(x)
			case "source":
				a.Source = at.Value
			}
		}
		if ok == [4]bool{true, true, true, true} {
			out = append(out, a)
		}
	}
	return out
}

// Commitments returns the ids of the commitments r's transaction (a
// Commit) created, from its "ksb.commit" events, in share order.
func (r *TxResult) Commitments() []uint64 {
	var out []uint64
	for _, ev := range r.Events {
		if ev.Type != "ksb.commit" {
			continue
		}
		for _, at := range ev.Attributes {
			if at.Key == "commitment" {
				if id, ok := parseU(at.Value); ok {
					out = append(out, id)
				}
			}
		}
	}
	return out
}

func parseU(s string) (uint64, bool) {
	x, err := strconv.ParseUint(s, 10, 64)
	return x, err == nil
}

// NewClient returns a client of the CometBFT RPC at rpcURL
// ("http://127.0.0.1:26657"). It does not connect until used.
func NewClient(rpcURL string) (*Client, error) {
	u, err := url.Parse(rpcURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tcp") {
		return nil, fmt.Errorf("chain RPC address %q: want http://host:port", rpcURL)
	}
	c, err := rpchttp.New(rpcURL)
	if err != nil {
		return nil, fmt.Errorf("chain RPC %s: %w", rpcURL, err)
	}
	return &Client{rpc: c, url: rpcURL}, nil
}

// URL returns the RPC address the client talks to.
func (c *Client) URL() string { return c.url }

// ChainID returns the chain ID the node reports.
func (c *Client) ChainID(ctx context.Context) (string, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return "", fmt.Errorf("chain status from %s: %w", c.url, err)
	}
	return st.NodeInfo.Network, nil
}

// Height returns the node's latest block height.
func (c *Client) Height(ctx context.Context) (int64, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("chain status from %s: %w", c.url, err)
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// LatestBlock returns the node's latest block height and that block's time
// (the validators' clock; a block interval or two behind real time).
func (c *Client) LatestBlock(ctx context.Context) (int64, time.Time, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("chain status from %s: %w", c.url, err)
	}
	return st.SyncInfo.LatestBlockHeight, st.SyncInfo.LatestBlockTime, nil
}

// Params returns the chain's parameters (chain ID, authority, r, prefix,
// custody parameters).
func (c *Client) Params(ctx context.Context) (Params, error) {
	var p Params
	err := c.Query(ctx, "/params", &p)
	return p, err
}

// Nodes returns the active nodes.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var a nodesAnswer
	err := c.Query(ctx, "/nodes", &a)
	return a.Nodes, err
}

// Vaults returns every vault, retired ones included (see Vault.Retired).
func (c *Client) Vaults(ctx context.Context) ([]Vault, error) {
	var a vaultsAnswer
	err := c.Query(ctx, "/vaults", &a)
	return a.Vaults, err
}

// Coverage returns the coverage of vault, or of every live vault if vault
// is "". An unknown vault is ErrNotFound.
func (c *Client) Coverage(ctx context.Context, vault string) (*Coverage, error) {
	path := "/coverage"
	if vault != "" {
		if err := validVaultKey(vault); err != nil {
			return nil, err
		}
		path += "/" + vault
	}
	var cov Coverage
	if err := c.Query(ctx, path, &cov); err != nil {
		return nil, err
	}
	return &cov, nil
}

// Account returns the account number of address addr and its next
// sequence. An address without an account (never registered) is
// ErrNotFound.
func (c *Client) Account(ctx context.Context, addr string) (Account, error) {
	var a Account
	if err := pathArg(addr); err != nil {
		return a, err
	}
	err := c.Query(ctx, "/sequence/"+addr, &a)
	return a, err
}

// Sequence returns the next sequence of signer address addr.
func (c *Client) Sequence(ctx context.Context, addr string) (uint64, error) {
	a, err := c.Account(ctx, addr)
	return a.Sequence, err
}

// Epoch returns the current epoch: its first block, its proof deadline and
// the next epoch's first block.
func (c *Client) Epoch(ctx context.Context) (Epoch, error) {
	var e Epoch
	err := c.Query(ctx, "/epoch", &e)
	return e, err
}

// CommitmentsByOwner returns owner addr's commitments still in state (the
// newest per vault, and superseded or retired ones until they are deleted),
// each with its custodies: what an owner pushes its copies by (copy i to
// the holder of slot i) and a recovery reads holders from.
func (c *Client) CommitmentsByOwner(ctx context.Context, addr string) ([]Commitment, error) {
	if err := pathArg(addr); err != nil {
		return nil, err
	}
	var a commitmentsAnswer
	err := c.Query(ctx, "/commitments/owner/"+addr, &a)
	return a.Commitments, err
}

// Commitment returns commitment id with its custodies; ErrNotFound if it
// is not (or no longer) in state.
func (c *Client) Commitment(ctx context.Context, id uint64) (*Commitment, error) {
	var cm Commitment
	if err := c.Query(ctx, fmt.Sprintf("/commitment/%d", id), &cm); err != nil {
		return nil, err
	}
	return &cm, nil
}

// Custody returns custody id with its commitment: what a holder checks a
// pushed copy against before reading it (the holder, the owner, size, root,
// copies). ErrNotFound if it is not in state: a holder drops a copy whose
// custody is gone.
func (c *Client) Custody(ctx context.Context, id CustodyID) (*HeldCustody, error) {
	var hc HeldCustody
	if err := c.Query(ctx, fmt.Sprintf("/custody/%d/%d", id.Commitment, id.Slot), &hc); err != nil {
		return nil, err
	}
	return &hc, nil
}

// CustodiesByHolder returns the custodies assigned to holder addr, with
// their commitments, failed and superseded ones included until deleted.
func (c *Client) CustodiesByHolder(ctx context.Context, addr string) ([]HeldCustody, error) {
	if err := pathArg(addr); err != nil {
		return nil, err
	}
	var a custodiesAnswer
	err := c.Query(ctx, "/custodies/holder/"+addr, &a)
	return a.Custodies, err
}

// Challenges returns holder addr's open challenges of the current epoch.
func (c *Client) Challenges(ctx context.Context, addr string) ([]Challenge, error) {
	if err := pathArg(addr); err != nil {
		return nil, err
	}
	var a challengesAnswer
	err := c.Query(ctx, "/challenges/holder/"+addr, &a)
	return a.Challenges, err
}

// RepairsBySource returns the repairs addr is to send a copy for (as a
// counted holder, or as the owner when no holder is left).
func (c *Client) RepairsBySource(ctx context.Context, addr string) ([]Repair, error) {
	return c.repairs(ctx, "source", addr)
}

// RepairsByReplacement returns the repairs addr waits for as replacement.
func (c *Client) RepairsByReplacement(ctx context.Context, addr string) ([]Repair, error) {
	return c.repairs(ctx, "replacement", addr)
}

func (c *Client) repairs(ctx context.Context, by, addr string) ([]Repair, error) {
	if err := pathArg(addr); err != nil {
		return nil, err
	}
	var a repairsAnswer
	err := c.Query(ctx, "/repairs/"+by+"/"+addr, &a)
	return a.Repairs, err
}

func pathArg(addr string) error {
	if strings.Contains(addr, "/") || addr == "" {
		return fmt.Errorf("address %q: %w", addr, ErrInvalid)
	}
	return nil
}

// Query runs the ABCI query path and decodes its JSON answer into v. A
// refusal by the application is a *QueryError.
func (c *Client) Query(ctx context.Context, path string, v any) error {
	res, err := c.rpc.ABCIQuery(ctx, path, nil)
	if err != nil {
		return fmt.Errorf("query %s at %s: %w", path, c.url, err)
	}
	if res.Response.Code != CodeOK {
		return &QueryError{Path: path, Code: res.Response.Code, Log: res.Response.Log}
	}
	if err := json.Unmarshal(res.Response.Value, v); err != nil {
		return fmt.Errorf("query %s: decoding answer: %w", path, err)
	}
	return nil
}

// Broadcast submits an encoded transaction and waits until it is committed
// (at most MaxCommitWait, or ctx's deadline). A transaction the chain refuses,
// in CheckTx or in its block, is a *TxError with its code and log.
func (c *Client) Broadcast(ctx context.Context, tx []byte) (*TxResult, error) {
	hash, err := c.submit(ctx, tx)
	if err != nil {
		return nil, err
	}
	return c.wait(ctx, hash, nil)
}

// superseded reports, for a transaction the index does not know yet,
// whether its signer's committed sequence has passed it. If so it looks for
// the transaction in the blocks since n.from (the index may lag the
// blocks): found, it returns its result; not found, gone is true.
func (c *Client) superseded(ctx context.Context, hash []byte, n *numbered) (res *coretypes.ResultTx, gone bool, err error) {
	a, err := c.Account(ctx, n.addr)
	if err != nil || a.Sequence <= n.seq {
		return nil, false, err
	}
	// The block that took the sequence is committed, so every block that
	// could hold this transaction is in the block store.
	top, err := c.Height(ctx)
	if err != nil {
		return nil, false, err
	}
	for h := max(n.from, 1); h <= top; h++ {
		b, err := c.rpc.Block(ctx, &h)
		if err != nil {
			return nil, false, fmt.Errorf("reading block %d from %s: %w", h, c.url, err)
		}
		for i, tx := range b.Block.Data.Txs {
			if !bytes.Equal(tx.Hash(), hash) {
				continue
			}
			br, err := c.rpc.BlockResults(ctx, &h)
			if err != nil {
				return nil, false, fmt.Errorf("reading the results of block %d from %s: %w", h, c.url, err)
			}
			if i >= len(br.TxResults) {
				return nil, false, fmt.Errorf("block %d: %d results for %d transactions", h, len(br.TxResults), len(b.Block.Data.Txs))
			}
			return &coretypes.ResultTx{Hash: hash, Height: h, Index: uint32(i), TxResult: *br.TxResults[i], Tx: tx}, false, nil
		}
	}
	return nil, true, nil
}

// errTxInCache is how CometBFT's RPC says it has seen these exact
// transaction bytes (mempool cache).
const errTxInCache = "tx already exists in cache"

// submit puts tx into the node's mempool (CheckTx) and returns its hash.
func (c *Client) submit(ctx context.Context, tx []byte) ([]byte, error) {
	res, err := c.rpc.BroadcastTxSync(ctx, tx)
	if err != nil && strings.Contains(err.Error(), errTxInCache) {
		// Submitted before, by an earlier attempt whose wait timed out: the
		// same bytes are in the mempool or already committed. Broadcasting
		// is idempotent; wait for that transaction.
		h := sha256.Sum256(tx)
		return h[:], nil
	}
	if err != nil {
		// CometBFT v1 reports a CheckTx refusal as an RPC error whose
		// text carries the code; ask CheckTx itself for code and log.
		if ct, cerr := c.rpc.CheckTx(ctx, tx); cerr == nil && ct.Code != CodeOK {
			return nil, &TxError{Hash: Hash(tx), Code: ct.Code, Log: ct.Log}
		}
		return nil, fmt.Errorf("broadcasting to %s: %w", c.url, err)
	}
	if res.Code != CodeOK {
		return nil, &TxError{Hash: res.Hash.String(), Code: res.Code, Log: res.Log}
	}
	return res.Hash, nil
}

// numbered is a transaction's signer and sequence, and the chain's height
// before it was submitted: what tells a wait that another transaction took
// its sequence.
type numbered struct {
	addr string
	seq  uint64
	from int64
}

// wait polls for the transaction with hash until it is in a block. With n
// (a Sender's transaction), it also watches the signer's committed
// sequence: once that has passed n.seq and the transaction is in no block
// since n.from, another transaction took its sequence and it can never
// commit (the mempool dropped it at recheck), and wait returns
// ErrBadSequence at once. Seen after a validator restart: the block its
// consensus WAL held, with the sender's previous, unacknowledged
// transaction, committed after the restarted sender had numbered a new one
// from the state before it.
func (c *Client) wait(ctx context.Context, hash []byte, n *numbered) (*TxResult, error) {
	ctx, cancel := context.WithTimeout(ctx, MaxCommitWait)
	defer cancel()
	hexHash := strings.ToUpper(hex.EncodeToString(hash))
	tick := time.NewTicker(commitPollInterval)
	defer tick.Stop()
	var lastErr error
	var lastCheck time.Time
	for {
		res, err := c.rpc.Tx(ctx, hash, false)
		switch {
		case err == nil && res.TxResult.Code != CodeOK:
			return nil, &TxError{Hash: hexHash, Height: res.Height, Code: res.TxResult.Code, Log: res.TxResult.Log}
		case err == nil:
			return &TxResult{Hash: hexHash, Height: res.Height, Events: res.TxResult.Events}, nil
		case strings.Contains(err.Error(), "indexing is disabled"):
			return nil, fmt.Errorf("waiting for %s: the node at %s does not index transactions: %w", hexHash, c.url, err)
		case !strings.Contains(err.Error(), "not found"):
			lastErr = err // node restarting or unreachable: keep trying
		case n != nil && time.Since(lastCheck) >= sequenceCheckInterval:
			lastCheck = time.Now()
			res, gone, err := c.superseded(ctx, hash, n)
			switch {
			case err != nil:
				lastErr = err
			case res != nil && res.TxResult.Code != CodeOK:
				return nil, &TxError{Hash: hexHash, Height: res.Height, Code: res.TxResult.Code, Log: res.TxResult.Log}
			case res != nil:
				return &TxResult{Hash: hexHash, Height: res.Height, Events: res.TxResult.Events}, nil
			case gone:
				return nil, fmt.Errorf("transaction %s: %w: sequence %d of %s was taken by another transaction", hexHash, ErrBadSequence, n.seq, n.addr)
			}
		}
		select {
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return nil, fmt.Errorf("transaction %s: %w: %w", hexHash, ErrNotCommitted, lastErr)
		case <-tick.C:
		}
	}
}
