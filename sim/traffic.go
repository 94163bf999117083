package sim

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// negotiation names the bytes a stream carries before its protocol is
// agreed (multistream-select), which libp2p reports with an empty protocol.
const negotiation = "(negotiation)"

// traffic counts what one node's libp2p streams send and receive: bytes and
// writes ("messages": one Write on a stream is one message, as libp2p's own
// bandwidth reporter counts them), in total and by protocol, and which peers
// it exchanged any bytes with. The counts are above the stream multiplexer:
// payload and protocol negotiation, not Noise, yamux or QUIC framing. It
// implements libp2p's metrics.Reporter, which the host calls on every
// stream read and write; the Get methods answer with totals only (no rates).
type traffic struct {
	sentBytes, sentMsgs, recvBytes, recvMsgs atomic.Int64

	mu      sync.Mutex
	byProto map[string]*protoCount
	peers   map[peer.ID]struct{}
	// base and baseProto are the counts at the last mark.
	base      NodeTraffic
	baseProto map[string]protoCount
}

type protoCount struct{ sentBytes, sentMsgs, recvBytes, recvMsgs int64 }

var _ metrics.Reporter = (*traffic)(nil)

func newTraffic() *traffic {
	return &traffic{byProto: map[string]*protoCount{}, peers: map[peer.ID]struct{}{}}
}

// LogSentMessage implements metrics.Reporter.
func (t *traffic) LogSentMessage(n int64) {
	t.sentBytes.Add(n)
	t.sentMsgs.Add(1)
}

// LogRecvMessage implements metrics.Reporter.
func (t *traffic) LogRecvMessage(n int64) {
	t.recvBytes.Add(n)
	t.recvMsgs.Add(1)
}

// LogSentMessageStream implements metrics.Reporter.
func (t *traffic) LogSentMessageStream(n int64, p protocol.ID, id peer.ID) {
	t.mu.Lock()
	c := t.proto(p)
	c.sentBytes += n
	c.sentMsgs++
	t.peers[id] = struct{}{}
	t.mu.Unlock()
}

// LogRecvMessageStream implements metrics.Reporter.
func (t *traffic) LogRecvMessageStream(n int64, p protocol.ID, id peer.ID) {
	t.mu.Lock()
	c := t.proto(p)
	c.recvBytes += n
	c.recvMsgs++
	t.peers[id] = struct{}{}
	t.mu.Unlock()
}

// proto returns the counters of p; t.mu is held.
func (t *traffic) proto(p protocol.ID) *protoCount {
	name := string(p)
	if name == "" {
		name = negotiation
	}
	c := t.byProto[name]
	if c == nil {
		c = &protoCount{}
		t.byProto[name] = c
	}
	return c
}

// peerCount is the number of distinct peers the node exchanged bytes with.
func (t *traffic) peerCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.peers)
}

// mark starts the window snapshot counts from.
func (t *traffic) mark() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.base = NodeTraffic{
		SentBytes: t.sentBytes.Load(), SentMsgs: t.sentMsgs.Load(),
		RecvBytes: t.recvBytes.Load(), RecvMsgs: t.recvMsgs.Load(),
	}
	t.baseProto = make(map[string]protoCount, len(t.byProto))
	for p, c := range t.byProto {
		t.baseProto[p] = *c
	}
}

// snapshot returns the node's totals and per-protocol counts since the
// last mark (since its start if none), and the peers it ever talked with.
func (t *traffic) snapshot() (NodeTraffic, map[string]ProtocolTraffic) {
	t.mu.Lock()
	defer t.mu.Unlock()
	nt := NodeTraffic{
		SentBytes: t.sentBytes.Load() - t.base.SentBytes, SentMsgs: t.sentMsgs.Load() - t.base.SentMsgs,
		RecvBytes: t.recvBytes.Load() - t.base.RecvBytes, RecvMsgs: t.recvMsgs.Load() - t.base.RecvMsgs,
		Peers: len(t.peers),
	}
	by := make(map[string]ProtocolTraffic, len(t.byProto))
	for p, c := range t.byProto {
		b := t.baseProto[p]
		by[p] = ProtocolTraffic{
			SentBytes: c.sentBytes - b.sentBytes, SentMsgs: c.sentMsgs - b.sentMsgs,
			RecvBytes: c.recvBytes - b.recvBytes, RecvMsgs: c.recvMsgs - b.recvMsgs,
		}
	}
	return nt, by
}

// GetBandwidthForPeer implements metrics.Reporter; per-peer totals are not
// kept.
func (t *traffic) GetBandwidthForPeer(peer.ID) metrics.Stats { return metrics.Stats{} }

// GetBandwidthForProtocol implements metrics.Reporter.
func (t *traffic) GetBandwidthForProtocol(p protocol.ID) metrics.Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byProto[string(p)]
	if c == nil {
		return metrics.Stats{}
	}
	return metrics.Stats{TotalIn: c.recvBytes, TotalOut: c.sentBytes}
}

// GetBandwidthTotals implements metrics.Reporter.
func (t *traffic) GetBandwidthTotals() metrics.Stats {
	return metrics.Stats{TotalIn: t.recvBytes.Load(), TotalOut: t.sentBytes.Load()}
}

// GetBandwidthByPeer implements metrics.Reporter; per-peer totals are not
// kept.
func (t *traffic) GetBandwidthByPeer() map[peer.ID]metrics.Stats { return nil }

// GetBandwidthByProtocol implements metrics.Reporter.
func (t *traffic) GetBandwidthByProtocol() map[protocol.ID]metrics.Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[protocol.ID]metrics.Stats, len(t.byProto))
	for p, c := range t.byProto {
		out[protocol.ID(p)] = metrics.Stats{TotalIn: c.recvBytes, TotalOut: c.sentBytes}
	}
	return out
}

// Reset implements metrics.Reporter; the simulation never resets.
func (t *traffic) Reset() {}

// TrimIdle implements metrics.Reporter; nothing is kept per peer to trim.
func (t *traffic) TrimIdle(time.Time) {}

// NodeTraffic is one node's stream traffic.
type NodeTraffic struct {
	SentBytes int64 `json:"sent_bytes"`
	SentMsgs  int64 `json:"sent_msgs"`
	RecvBytes int64 `json:"recv_bytes"`
	RecvMsgs  int64 `json:"recv_msgs"`
	// Peers is the number of distinct peers it exchanged bytes with.
	Peers int `json:"peers"`
}

// ProtocolTraffic is the traffic of one protocol, summed over the nodes.
type ProtocolTraffic struct {
	SentBytes int64 `json:"sent_bytes"`
	SentMsgs  int64 `json:"sent_msgs"`
	RecvBytes int64 `json:"recv_bytes"`
	RecvMsgs  int64 `json:"recv_msgs"`
}

// TrafficStats sum up what every node's libp2p streams carried.
type TrafficStats struct {
	// SentBytes and SentMsgs are the totals over all nodes.
	SentBytes int64 `json:"sent_bytes"`
	SentMsgs  int64 `json:"sent_msgs"`
	// MeanSentBytes, MaxSentBytes, MeanSentMsgs and MaxSentMsgs are per
	// node.
	MeanSentBytes float64 `json:"mean_sent_bytes"`
	MaxSentBytes  int64   `json:"max_sent_bytes"`
	MeanSentMsgs  float64 `json:"mean_sent_msgs"`
	MaxSentMsgs   int64   `json:"max_sent_msgs"`
	// ByProtocol splits the totals by libp2p protocol ID.
	ByProtocol map[string]ProtocolTraffic `json:"by_protocol"`
}

// trafficStats sums the members' traffic since their marks.
func trafficStats(members []*member) *TrafficStats {
	ts := &TrafficStats{ByProtocol: map[string]ProtocolTraffic{}}
	for _, m := range members {
		nt, by := m.traffic.snapshot()
		ts.SentBytes += nt.SentBytes
		ts.SentMsgs += nt.SentMsgs
		ts.MaxSentBytes = max(ts.MaxSentBytes, nt.SentBytes)
		ts.MaxSentMsgs = max(ts.MaxSentMsgs, nt.SentMsgs)
		for p, c := range by {
			t := ts.ByProtocol[p]
			t.SentBytes += c.SentBytes
			t.SentMsgs += c.SentMsgs
			t.RecvBytes += c.RecvBytes
			t.RecvMsgs += c.RecvMsgs
			ts.ByProtocol[p] = t
		}
	}
	if len(members) > 0 {
		ts.MeanSentBytes = float64(ts.SentBytes) / float64(len(members))
		ts.MeanSentMsgs = float64(ts.SentMsgs) / float64(len(members))
	}
	return ts
}
