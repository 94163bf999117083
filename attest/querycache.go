package attest

import (
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
)

// cachedPath is the query path answerCache keeps: /coverage over every live
// vault, the costliest query. It reads every member's latest commitment of
// every vault (256 vaults of 200 members: 51,000 reads, 2.4 s of one core),
// and anyone who reaches a validator's RPC may ask for it in a loop.
const cachedPath = "/coverage"

// answerCache computes the answer of cachedPath once per state version and
// proof flag, one computation at a time: a version's answer never changes.
// A query of the latest version (height 0) that comes while an answer is
// being computed gets the last one computed, with its height, instead of
// waiting or starting another; so however many clients ask, the query costs
// at most one core, and only while the state changes.
type answerCache struct {
	mu      sync.Mutex
	running chan struct{} // closed when the computation under way ends; nil if none
	latest  map[bool]*abci.QueryResponse
	version int64 // of latest
}

// get returns the answer for cachedPath at version (latest: the query asked
// for the latest version) with proof flag prove, computed by compute if it is
// not kept. Only answers with CodeOK are kept. The response may be shared:
// callers must not modify it.
func (c *answerCache) get(version int64, latest, prove bool, compute func() *abci.QueryResponse) *abci.QueryResponse {
	c.mu.Lock()
	for {
		if r, ok := c.latest[prove]; ok && (c.version == version || latest && c.running != nil) {
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
			c.version, c.latest = version, map[bool]*abci.QueryResponse{}
		}
		c.latest[prove] = r
	}
	return r
}
