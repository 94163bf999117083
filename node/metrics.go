package node

import "github.com/prometheus/client_golang/prometheus"

// metrics are the daemon's own Prometheus collectors; the p2p service adds
// pushes and fetches in and out, refusals by reason and bytes.
type metrics struct {
	files           *prometheus.CounterVec // result: sealed, unchanged, not_keyshare, unreadable, seal_failed
	pushes          *prometheus.CounterVec // result: ok, refused_<code>, timeout, error
	underReplicated prometheus.Counter
	pending         *prometheus.GaugeVec   // kind: attest, release
	committed       *prometheus.CounterVec // kind: attest, release
	dropped         *prometheus.CounterVec // kind: attest, release
	chainErrors     prometheus.Counter
	storeBlobs      prometheus.GaugeFunc
	storeBytes      prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Name: "owner_files_total",
			Help: "Files found in the keyshare directory, by what was done with them.",
		}, []string{"result"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Name: "owner_pushes_total",
			Help: "Pushes of this node's shares to holders, by result.",
		}, []string{"result"}),
		underReplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ksb", Name: "owner_under_replicated_total",
			Help: "Times a share could not reach its replication for lack of candidate holders.",
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ksb", Name: "holder_pending_entries",
			Help: "Attestations and releases queued for the chain (moved at every enqueue, commit and drop).",
		}, []string{"kind"}),
		committed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Name: "holder_committed_entries_total",
			Help: "Attestation and release entries committed on chain.",
		}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Name: "holder_dropped_entries_total",
			Help: "Queued attestations and releases dropped because the chain can never accept them (refused by the chain or by the transaction builder's checks: bad field, unknown vault, nothing to release).",
		}, []string{"kind"}),
		chainErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ksb", Name: "chain_errors_total",
			Help: "Failed chain queries and broadcasts (each is retried).",
		}),
	}
	reg.MustRegister(m.files, m.pushes, m.underReplicated, m.pending, m.committed, m.dropped, m.chainErrors)
	return m
}

// registerStoreGauges exports the store's size, read at scrape time.
func (n *Node) registerStoreGauges() {
	stat := func(bytes bool) float64 {
		st := n.st
		if st == nil {
			return 0
		}
		b, sz, err := st.Stats()
		if err != nil {
			return 0
		}
		if bytes {
			return float64(sz)
		}
		return float64(b)
	}
	n.m.storeBlobs = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ksb", Name: "store_blobs", Help: "Blobs held for other owners.",
	}, func() float64 { return stat(false) })
	n.m.storeBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ksb", Name: "store_bytes", Help: "Bytes of blobs held for other owners.",
	}, func() float64 { return stat(true) })
	n.reg.MustRegister(n.m.storeBlobs, n.m.storeBytes)
}
