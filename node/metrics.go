package node

import "github.com/prometheus/client_golang/prometheus"

// metrics are the daemon's own Prometheus collectors; the p2p service adds
// pushes and fetches in and out, refusals by reason and bytes.
type metrics struct {
	files           *prometheus.CounterVec // result: sealed, unchanged, not_keyshare, unreadable, seal_failed
	commits         *prometheus.CounterVec // result: committed, adopted, refused, error
	pushes          *prometheus.CounterVec // result: ok, refused_<code>, timeout, error
	repairs         *prometheus.CounterVec // result: ok, refused_<code>, own_copy_bad, superseded, busy, timeout, error
	underReplicated prometheus.Counter
	underShares     *prometheus.GaugeVec   // reason: see underReplicatedReasons
	pending         *prometheus.GaugeVec   // kind: attest, release
	committed       *prometheus.CounterVec // kind: attest, release
	dropped         *prometheus.CounterVec // kind: attest, release
	proofs          *prometheus.CounterVec // result: proved, lost, refused
	droppedCopies   *prometheus.CounterVec // reason: gone, failed, not_assigned
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
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Name: "owner_commits_total",
			Help: "Share versions committed on chain, by result (committed; adopted: found on chain after a restart; refused; error).",
		}, []string{"result"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Name: "owner_pushes_total",
			Help: "Pushes of this node's copies to the holders the chain assigned, by result.",
		}, []string{"result"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Name: "source_repairs_total",
			Help: "Copies this node sent as the chain's repair source to a replacement holder, by result (ok; refused_<code>: the replacement refused; own_copy_bad: this node's copy is lost or corrupt, its custody is released; superseded: the chain no longer names this node or that replacement; busy; timeout; error).",
		}, []string{"result"}),
		underReplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ksb", Name: "owner_under_replicated_total",
			Help: "Commitments the chain assigned fewer holders than r (too few candidates).",
		}),
		underShares: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ksb", Name: "owner_under_replicated_shares",
			Help: "This node's live shares not held by r counted holders, by reason (not_active, vault_unknown, not_member, not_committed, no_holders, under_assigned, not_counted); set at every owner reconcile (each chain poll).",
		}, []string{"reason"}),
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
		proofs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Name: "holder_proofs_total",
			Help: "Challenges of this holder, by result: proved (answered on chain), lost (the copy is not held: released), refused (a Prove the chain refused).",
		}, []string{"result"}),
		droppedCopies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Name: "holder_dropped_copies_total",
			Help: "Held copies deleted because the chain no longer counts them, by reason (gone: retention deleted the custody; failed; not_assigned).",
		}, []string{"reason"}),
		chainErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ksb", Name: "chain_errors_total",
			Help: "Failed chain queries and broadcasts (each is retried).",
		}),
	}
	reg.MustRegister(m.files, m.commits, m.pushes, m.repairs, m.underReplicated, m.underShares, m.pending, m.committed, m.dropped, m.proofs, m.droppedCopies, m.chainErrors)
	for _, r := range underReplicatedReasons {
		m.underShares.WithLabelValues(r).Set(0)
	}
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
		Namespace: "ksb", Name: "store_blobs", Help: "Copies held for other owners.",
	}, func() float64 { return stat(false) })
	n.m.storeBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ksb", Name: "store_bytes", Help: "Bytes of copies held for other owners.",
	}, func() float64 { return stat(true) })
	n.reg.MustRegister(n.m.storeBlobs, n.m.storeBytes)
}
