package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
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

// Params returns the chain's parameters (chain ID, authority, r, prefix).
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

// AttestationsByOwner returns the attestations of blobs owned by addr.
func (c *Client) AttestationsByOwner(ctx context.Context, addr string) ([]Attestation, error) {
	return c.attestations(ctx, "owner", addr)
}

// AttestationsByHolder returns the attestations made by holder addr.
func (c *Client) AttestationsByHolder(ctx context.Context, addr string) ([]Attestation, error) {
	return c.attestations(ctx, "holder", addr)
}

func (c *Client) attestations(ctx context.Context, by, addr string) ([]Attestation, error) {
	if strings.Contains(addr, "/") || addr == "" {
		return nil, fmt.Errorf("address %q: %w", addr, ErrInvalid)
	}
	var a attestationsAnswer
	err := c.Query(ctx, "/attestations/"+by+"/"+addr, &a)
	return a.Attestations, err
}

// Sequence returns the next sequence of signer address addr.
func (c *Client) Sequence(ctx context.Context, addr string) (uint64, error) {
	if strings.Contains(addr, "/") || addr == "" {
		return 0, fmt.Errorf("address %q: %w", addr, ErrInvalid)
	}
	var s Sequence
	err := c.Query(ctx, "/sequence/"+addr, &s)
	return s.Sequence, err
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
	return c.wait(ctx, hash)
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

// wait polls for the transaction with hash until it is in a block.
func (c *Client) wait(ctx context.Context, hash []byte) (*TxResult, error) {
	ctx, cancel := context.WithTimeout(ctx, MaxCommitWait)
	defer cancel()
	hexHash := strings.ToUpper(hex.EncodeToString(hash))
	tick := time.NewTicker(commitPollInterval)
	defer tick.Stop()
	var lastErr error
	for {
		res, err := c.rpc.Tx(ctx, hash, false)
		switch {
		case err == nil && res.TxResult.Code != CodeOK:
			return nil, &TxError{Hash: hexHash, Height: res.Height, Code: res.TxResult.Code, Log: res.TxResult.Log}
		case err == nil:
			return &TxResult{Hash: hexHash, Height: res.Height}, nil
		case strings.Contains(err.Error(), "indexing is disabled"):
			return nil, fmt.Errorf("waiting for %s: the node at %s does not index transactions: %w", hexHash, c.url, err)
		case !strings.Contains(err.Error(), "not found"):
			lastErr = err // node restarting or unreachable: keep trying
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
