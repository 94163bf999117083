package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/p2p"
)

// The node's clock check (issue 15). Peers ignore heartbeats more than
// p2p.MaxClockSkew from their own clocks, so a node whose clock is off stops
// being heard, stops being chosen as a holder, and would not know it. It
// measures its offset against the chain's block times and its peers'
// heartbeats and says when it is beyond p2p.ClockTolerance.
const (
	// clockCheckInterval is how often the offset is measured. A clock that
	// drifts does so by seconds a day; one that steps (a VM restored from a
	// snapshot, NTP correcting a fresh machine) is seen within a minute.
	clockCheckInterval = time.Minute
	// clockRecheck is the wait before the second check after start: a
	// block time is believed only for a block made since the previous check
	// (a chain that stopped making blocks says nothing of the time), so the
	// first measurement against the chain needs two reads.
	clockRecheck = 5 * time.Second
	// clockPeerWindow is how recent a peer's heartbeat must be to count:
	// several heartbeat intervals (30 s by default).
	clockPeerWindow = 3 * time.Minute
	// clockMinPeers is how many peers the median needs to be used (when
	// the chain cannot tell): one peer with a wrong clock cannot make this
	// node report itself off.
	clockMinPeers = 2
	// clockLogInterval is how often the error is logged again while the
	// offset stays beyond the tolerance.
	clockLogInterval = 10 * time.Minute
)

// ClockStatus is this node's clock against the network's, as `ksb status`
// and /status show it.
type ClockStatus struct {
	// OffsetSeconds is this node's clock minus the network's (positive:
	// ahead), against Against; absent until measured.
	OffsetSeconds *float64 `json:"offset_seconds,omitempty"`
	// Against is what OffsetSeconds is measured against: "chain" (the
	// latest block's time, at Height, a block interval or two behind real
	// time) or "peers" (the median over Peers active nodes' last heartbeats,
	// used when the chain cannot tell); empty until measured.
	Against string `json:"against,omitempty"`
	Height  int64  `json:"height,omitempty"`
	Peers   int    `json:"peers,omitempty"`
	// ChainOffsetSeconds and PeerOffsetSeconds are both measurements, each
	// when available.
	ChainOffsetSeconds *float64 `json:"chain_offset_seconds,omitempty"`
	PeerOffsetSeconds  *float64 `json:"peer_offset_seconds,omitempty"`
	// ToleranceSeconds is p2p.ClockTolerance.
	ToleranceSeconds float64 `json:"tolerance_seconds"`
	// OK is false when the offset is beyond the tolerance; Error then says
	// so (and /healthz answers 503 with it).
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// CheckedAt is when the offset was last measured (this node's clock).
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

// clockState is the last measurement.
type clockState struct {
	mu         sync.Mutex
	st         ClockStatus
	lastHeight int64     // the height read at the previous check
	loggedAt   time.Time // when the error was last logged (monotonic)
	offset     prometheus.Gauge
}

func newClockState(reg prometheus.Registerer) *clockState {
	c := &clockState{
		st: ClockStatus{ToleranceSeconds: p2p.ClockTolerance.Seconds(), OK: true},
		offset: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ksb", Name: "clock_offset_seconds",
			Help: "This node's clock minus the network's (the chain's block time, or the median of peers' heartbeats); positive when ahead.",
		}),
	}
	reg.MustRegister(c.offset)
	return c
}

// runClock measures the clock offset now, clockRecheck later, then every
// clockCheckInterval, until ctx is done.
func (n *Node) runClock(ctx context.Context) error {
	wait := clockRecheck
	for {
		n.checkClock(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = clockCheckInterval
	}
}

// checkClock measures the offset once, and logs and records the result.
func (n *Node) checkClock(ctx context.Context) {
	c := n.clock
	st := ClockStatus{ToleranceSeconds: p2p.ClockTolerance.Seconds(), OK: true, CheckedAt: n.now()}
	secs := func(d time.Duration) *float64 { s := d.Seconds(); return &s }

	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	before := n.now()
	height, blockTime, err := n.chain.LatestBlock(cctx)
	after := n.now()
	cancel()
	c.mu.Lock()
	prev := c.lastHeight
	if err == nil {
		c.lastHeight = height
	}
	c.mu.Unlock()
	if err == nil && !blockTime.IsZero() {
		off := before.Add(after.Sub(before) / 2).Sub(blockTime)
		// A block time ahead of this clock is conclusive (blocks are in the
		// past); one behind it, only for a block made since the last check.
		if off < 0 || (prev > 0 && height > prev) {
			st.ChainOffsetSeconds, st.Height = secs(off), height
		}
	}
	if off, peers := n.gossip.PeerClockOffset(clockPeerWindow); peers > 0 {
		st.PeerOffsetSeconds, st.Peers = secs(off), peers
	}
	var off time.Duration
	switch {
	case st.ChainOffsetSeconds != nil:
		st.Against, st.OffsetSeconds = "chain", st.ChainOffsetSeconds
		off = time.Duration(*st.ChainOffsetSeconds * float64(time.Second))
	case st.PeerOffsetSeconds != nil && st.Peers >= clockMinPeers:
		st.Against, st.OffsetSeconds = "peers", st.PeerOffsetSeconds
		off = time.Duration(*st.PeerOffsetSeconds * float64(time.Second))
	default:
		// Nothing new to go by: keep the last verdict.
		c.mu.Lock()
		if c.st.OffsetSeconds != nil {
			st.Against, st.OffsetSeconds, st.OK, st.Error = c.st.Against, c.st.OffsetSeconds, c.st.OK, c.st.Error
			st.Height = c.st.Height
		}
		c.st = st
		c.mu.Unlock()
		return
	}
	c.offset.Set(off.Seconds())
	if off > p2p.ClockTolerance || off < -p2p.ClockTolerance {
		st.OK = false
		st.Error = clockError(off, st)
	}

	c.mu.Lock()
	wasOK := c.st.OK
	c.st = st
	logNow := !st.OK && (wasOK || c.loggedAt.IsZero() || time.Since(c.loggedAt) >= clockLogInterval)
	if logNow {
		c.loggedAt = time.Now()
	}
	c.mu.Unlock()
	switch {
	case logNow:
		n.log.Error("clock offset beyond what the protocols tolerate: peers ignore this node's heartbeats; set the clock (NTP)",
			"offset", off.Round(time.Millisecond).String(), "against", st.Against, "tolerance", p2p.ClockTolerance.String())
	case st.OK && !wasOK:
		n.log.Info("clock offset back within tolerance", "offset", off.Round(time.Millisecond).String(), "against", st.Against)
	}
}

// clockError words an offset beyond the tolerance.
func clockError(off time.Duration, st ClockStatus) string {
	dir := "ahead of"
	if off < 0 {
		dir, off = "behind", -off
	}
	ref := fmt.Sprintf("the chain's latest block time (block %d)", st.Height)
	if st.Against == "peers" {
		ref = fmt.Sprintf("its %d peers' heartbeats", st.Peers)
	}
	return fmt.Sprintf("clock is %v %s %s, beyond the ±%v the protocols tolerate: peers ignore this node's heartbeats; set the clock (NTP)",
		off.Round(time.Millisecond), dir, ref, p2p.ClockTolerance)
}

// clockStatus returns the last measurement.
func (n *Node) clockStatus() ClockStatus {
	n.clock.mu.Lock()
	defer n.clock.mu.Unlock()
	return n.clock.st
}

// clockErr is the health check's view: an error while the offset is beyond
// the tolerance.
func (n *Node) clockErr() error {
	st := n.clockStatus()
	if st.OK {
		return nil
	}
	return fmt.Errorf("%s", st.Error)
}
