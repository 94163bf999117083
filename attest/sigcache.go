package attest

import (
	"crypto/sha256"
	"sync"
)

// sigCacheSize bounds the signatures remembered as verified: CometBFT's
// default mempool holds 5000 transactions and a block at most MaxBlockItems,
// so 8192 covers a transaction from CheckTx through ProcessProposal to
// FinalizeBlock; the cost is 32 bytes an entry.
const sigCacheSize = 8192

// sigCache remembers transactions whose signature verified, so that CheckTx,
// ProcessProposal and FinalizeBlock verify each signature once. It is keyed
// by the hash of the whole encoded transaction, so a hit means the same
// signer, sign bytes and signature. Oldest entries are evicted first.
type sigCache struct {
	mu    sync.Mutex
	seen  map[[32]byte]struct{}
	order [][32]byte // ring of inserted keys
	next  int
}

func newSigCache() *sigCache {
	return &sigCache{seen: make(map[[32]byte]struct{}, sigCacheSize), order: make([][32]byte, 0, sigCacheSize)}
}

func (c *sigCache) has(raw []byte) bool {
	k := sha256.Sum256(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.seen[k]
	return ok
}

func (c *sigCache) add(raw []byte) {
	k := sha256.Sum256(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[k]; ok {
		return
	}
	if len(c.order) < sigCacheSize {
		c.order = append(c.order, k)
	} else {
		delete(c.seen, c.order[c.next])
		c.order[c.next] = k
		c.next = (c.next + 1) % sigCacheSize
	}
	c.seen[k] = struct{}{}
}
