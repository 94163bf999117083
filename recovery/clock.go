package recovery

import (
	"context"
	"slices"
	"time"

	"github.com/ksb-project/ksb/p2p"
)

const (
	// clockFreshWait bounds how long Run waits for a new block when the
	// latest one is older than the tolerance on this machine's clock: either
	// this clock is ahead, or the chain has stopped making blocks, and only
	// a new block tells which. The chain makes one every second or so.
	clockFreshWait = 3 * time.Second
	// clockPollInterval is how often the height is read meanwhile.
	clockPollInterval = 200 * time.Millisecond
)

// The references a ClockCheck is against.
const (
	// ClockAgainstChain: the latest block's time (CometBFT's BFT time, the
	// validators' clock), which trails real time by a block interval or two.
	ClockAgainstChain = "chain"
	// ClockAgainstHolders: the median of the holders' clocks in their
	// offers, each read within the one-way delay of the stream.
	ClockAgainstHolders = "holders"
)

// ClockCheck is this machine's clock compared with the network's, as Run
// measured it. Recovery does not depend on it (holders do not judge a
// recovery request by its time); a node run with a clock this far off
// would not be heard by its peers, which is why Run reports it.
type ClockCheck struct {
	// Offset is this machine's clock (Options.Now) minus the reference's:
	// positive when it is ahead.
	Offset time.Duration
	// Against is the reference: ClockAgainstChain or ClockAgainstHolders.
	Against string
	// Height is the block whose time was read (chain).
	Height int64
	// Samples is how many holders the median is over (holders).
	Samples int
}

// Skewed reports whether the offset is beyond what the protocols tolerate
// (p2p.ClockTolerance).
func (c *ClockCheck) Skewed() bool {
	return c != nil && (c.Offset > p2p.ClockTolerance || c.Offset < -p2p.ClockTolerance)
}

// holderClock is the median of the offers' offsets, or nil without offers.
func holderClock(offers []p2p.Offer) *ClockCheck {
	if len(offers) == 0 {
		return nil
	}
	ds := make([]time.Duration, 0, len(offers))
	for _, o := range offers {
		ds = append(ds, o.Received.Sub(o.HolderTime))
	}
	slices.Sort(ds)
	med := ds[len(ds)/2]
	if len(ds)%2 == 0 {
		med = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return &ClockCheck{Offset: med, Against: ClockAgainstHolders, Samples: len(ds)}
}

// chainClock compares this machine's clock with the latest block's time. A
// block time ahead of this clock is conclusive (blocks are in the past); a
// block time behind it by more than the tolerance is believed only for a
// block made while Run watched (a chain that stopped making blocks says
// nothing of the time), waiting at most clockFreshWait for one. Nil when the
// chain cannot tell.
func (c *config) chainClock(ctx context.Context) *ClockCheck {
	read := func() (int64, time.Duration, bool) {
		qctx, cancel := context.WithTimeout(ctx, c.ChainTimeout)
		defer cancel()
		before := c.Now()
		h, t, err := c.client.LatestBlock(qctx)
		if err != nil || t.IsZero() {
			return 0, 0, false
		}
		mid := before.Add(c.Now().Sub(before) / 2)
		return h, mid.Sub(t), true
	}
	h0, off, ok := read()
	if !ok {
		return nil
	}
	if off <= p2p.ClockTolerance {
		return &ClockCheck{Offset: off, Against: ClockAgainstChain, Height: h0}
	}
	deadline := time.NewTimer(clockFreshWait)
	defer deadline.Stop()
	tick := time.NewTicker(clockPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline.C:
			c.progress.printf("clock: the chain made no block in %v; its time says nothing of this machine's clock", clockFreshWait)
			return nil
		case <-tick.C:
		}
		if h, off, ok := read(); ok && h > h0 {
			return &ClockCheck{Offset: off, Against: ClockAgainstChain, Height: h}
		}
	}
}

// reportClock logs and prints what Run learnt of this machine's clock.
func (c *config) reportClock(cc *ClockCheck) {
	if cc == nil {
		return
	}
	what := "the latest block's time"
	if cc.Against == ClockAgainstHolders {
		what = "the holders' clocks"
	}
	if cc.Skewed() {
		c.log.Warn("this machine's clock is off", "offset", cc.Offset.Round(time.Millisecond).String(), "against", cc.Against, "tolerance", p2p.ClockTolerance.String())
		c.progress.printf("clock: this machine's clock is %s %s, beyond the ±%v the protocols tolerate", signed(cc.Offset), what, p2p.ClockTolerance)
		return
	}
	c.progress.printf("clock: this machine's clock is %s %s (within ±%v)", signed(cc.Offset), what, p2p.ClockTolerance)
}

// signed words a clock offset: "10m0s ahead of", "3.2s behind".
func signed(d time.Duration) string {
	d = d.Round(time.Millisecond)
	if d < 0 {
		return (-d).String() + " behind"
	}
	return d.String() + " ahead of"
}
