package attest

import (
	"strings"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
)

// cached reports whether answerCache keeps the answers of path: /coverage
// (every live vault) and /coverage/{vault}, the costliest queries, and
// /nodes and /vaults, which every node asks for at every chain poll. The
// first reads every member's latest commitment of every vault (256 vaults
// of 200 members: 51,000 reads, 2.4 s of one core), the second that of one
// vault's members (up to 256, with their custodies); anyone who reaches a
// validator's RPC may ask for them in a loop, and CometBFT answers the
// queries of all clients — the node's own polling included — one at a time
// on one ABCI connection, so one costly query makes every other wait.
// /nodes derives each node's peer ID from its key (two point
// decompressions, ~40 µs a node) and both grow with N: N nodes polling them
// cost the validator N² records per poll interval uncached (70 % of the
// chain's query time in a 50-node simulation), N once cached.
func cached(path string) bool {
	return path == "/coverage" || strings.HasPrefix(path, "/coverage/") || path == "/nodes" || path == "/vaults"
}

// maxCachedAnswers bounds the answers kept for one version: the live
// vaults' coverages and the whole, with room; beyond it answers are
// computed and not kept.
const maxCachedAnswers = 1024

// answerKey names one kept answer.
type answerKey struct {
	path  string
	prove bool
}

// answerCache computes the answer of a cached path once per state version
// and proof flag, one computation at a time: a version's answer never
// changes. A query of the latest version (height 0) that comes while another
// answer is being computed gets the last one computed for its path, with
// its height, instead of waiting.
type answerCache struct {
	mu      sync.Mutex
	running chan struct{} // closed when the computation under way ends; nil if none
	latest  map[answerKey]*abci.QueryResponse
	version int64 // of latest
}

// get returns the answer for key at version (latest: the query asked for
// the latest version), computed by compute if it is not kept. Only answers
// with CodeOK are kept. The response may be shared: callers must not
// modify it.
func (c *answerCache) get(version int64, latest bool, key answerKey, compute func() *abci.QueryResponse) *abci.QueryResponse {
	c.mu.Lock()
	for {
		if r, ok := c.latest[key]; ok && (c.version == version || latest && c.running != nil) {
			c.mu.Unlock()
			return r
		}
		if c.running == nil {
			break
		}
		wait := c.running
		c.mu.Unlock()
		<-wait
		c.mu.Lock()
	}
	done := make(chan struct{})
	c.running = done
	c.mu.Unlock()

	r := compute()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = nil
	close(done)
	if r.Code == CodeOK && version >= c.version {
		if version != c.version || c.latest == nil {
			c.version, c.latest = version, map[answerKey]*abci.QueryResponse{}
		}
		if len(c.latest) < maxCachedAnswers {
			c.latest[key] = r
		}
	}
	return r
}
