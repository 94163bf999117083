package attest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/fixtures"
)

// The reference network of issue 3: 120 nodes, vaults of 40 members, an
// ECDSA and an EdDSA share per node, r = 3.
const (
	refNodes       = 120
	refVaultSize   = 40
	refReplication = 3
)

// refNet is the reference network's keys.
type refNet struct {
	nodes     []*identity.Identity
	addrs     []string
	authority *identity.Identity
}

func newRefNet(b testing.TB) *refNet {
	b.Helper()
	n := &refNet{}
	for range refNodes + 1 {
		m, err := identity.Generate()
		if err != nil {
			b.Fatal(err)
		}
		id, err := identity.New(m)
		if err != nil {
			b.Fatal(err)
		}
		n.nodes = append(n.nodes, id)
		n.addrs = append(n.addrs, id.Address(testHRP))
	}
	n.authority, n.nodes, n.addrs = n.nodes[refNodes], n.nodes[:refNodes], n.addrs[:refNodes]
	return n
}

// vaults returns the vaults of churn generation gen: refNodes/refVaultSize
// groups of members, each with an ECDSA and an EdDSA vault key as long as
// the go-tss bech32 keys (76 and 75 characters).
func (n *refNet) vaults(gen int) []attest.VaultSpec {
	var vs []attest.VaultSpec
	for g := range refNodes / refVaultSize {
		members := n.addrs[g*refVaultSize : (g+1)*refVaultSize]
		for _, prefix := range []string{"thorpub1addwnpepq", "thorpub1zcjduepq"} {
			key := fmt.Sprintf("%s%0*d", prefix, 76-len(prefix)-(len(prefix)-16), gen*1000+g)
			vs = append(vs, attest.VaultSpec{PubKey: key, Members: members, Threshold: uint32((2*refVaultSize + 2) / 3)})
		}
	}
	return vs
}

func (n *refNet) genesis(cp attest.CustodyParams) attest.Genesis {
	g := attest.Genesis{Authority: n.authority.PubKeyHex(), Replication: refReplication, CustodyParams: cp}
	for i, id := range n.nodes {
		g.Nodes = append(g.Nodes, attest.NodeSpec{PubKey: id.PubKeyHex(), Multiaddrs: []string{
			fmt.Sprintf("/ip4/10.0.%d.%d/tcp/6540", i/250, i%250+1), fmt.Sprintf("/ip4/10.0.%d.%d/udp/6540/quic-v1", i/250, i%250+1),
		}})
	}
	g.Vaults = n.vaults(0)
	return g
}

// sealedSizes returns the sealed sizes of party 0's ECDSA and EdDSA shares
// for a vault of parties members: the 20-party tss-lib fixtures, or their
// synthesized extension (internal/fixtures). The sealed size depends on the
// plaintext only, so a low work factor gives the same size.
func sealedSizes(b testing.TB, parties int) [2]int {
	b.Helper()
	var out [2]int
	for i, synth := range []func(int) ([]byte, error){fixtures.SynthECDSA, fixtures.SynthEdDSA} {
		plain, err := synth(parties)
		if err != nil {
			b.Fatal(err)
		}
		blob, err := envelope.Seal(plain, testMnemonics[4], &envelope.SealOptions{WorkFactor: 10, AllowLowWorkFactor: true})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = len(blob)
	}
	return out
}

// churnSim runs the reference network through churn periods on a real app:
// each period is one epoch of simBlocks blocks, as the default parameters
// have it (one epoch per churn period, rounds of one epoch): the epoch's
// first block challenges every counted custody, every holder proves in the
// next, then the authority churns (six new vaults, six retired), every node
// commits its two new shares (one Commit), and every assigned holder
// attests (one Attest per holder).
type churnSim struct {
	c     *chain
	net   *refNet
	sizes [2]int // copy sizes: ECDSA, EdDSA
	gen   int
	rng   *rand.ChaCha8
	roots map[uint64][][custody.HashSize]byte

	churnBytes, commitBytes, attestBytes, proveBytes []int
	proofs, commitTxs, attestTxs, proveTxs           []int
	epochStart                                       []time.Duration // FinalizeBlock and Commit of the epoch's first block

	timeAttests bool          // time the attestations' CheckTx, ProcessProposal and blocks
	attested    int           // custodies attested while timed
	attestTime  time.Duration // their time
}

// simBlocks is an epoch (and a churn period) of the simulation: epoch
// start, proofs, churn, commits, attestations, and room.
const simBlocks = 8

func newChurnSim(b *testing.B, net *refNet, sizes [2]int) *churnSim {
	cp := attest.CustodyParams{
		EpochBlocks: simBlocks, RoundEpochs: attest.DefaultRoundEpochs, ProofWindow: 3,
		AttestWindow: 1000, RepairWindow: 1000, RetentionBlocks: simBlocks,
	}
	s := &churnSim{c: newChain(b, net.genesis(cp)), net: net, sizes: sizes, rng: rand.NewChaCha8([32]byte{1}), roots: map[uint64][][32]byte{}}
	s.c.block() // height 2: the next epoch starts at 9
	return s
}

func (s *churnSim) mustAll(what string, res []*abci.ExecTxResult) {
	for _, r := range res {
		if r.Code != 0 {
			s.c.t.Fatalf("%s: code %d: %s", what, r.Code, r.Log)
		}
	}
}

// period runs one churn period and records its bytes.
func (s *churnSim) period() {
	c := s.c
	c.until((c.height/simBlocks + 1) * simBlocks) // the block before an epoch start
	start := time.Now()
	c.block() // epoch start: challenges
	s.epochStart = append(s.epochStart, time.Since(start))
	var proofs int
	var txs [][]byte
	for _, a := range s.net.addrs {
		chs := c.challenges(a)
		if len(chs) == 0 {
			continue
		}
		var ps []attest.SegmentProof
		for _, ch := range chs {
			id := attest.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}
			p, err := custody.Prove(c.copies[id.Commitment][id.Slot], s.roots[id.Commitment], int(id.Slot), ch.Segment)
			if err != nil {
				c.t.Fatal(err)
			}
			ps = append(ps, attest.NewSegmentProof(id, p))
		}
		proofs += len(ps)
		txs = append(txs, c.sign(idOf2(s.net, a), &attest.Prove{Epoch: chs[0].Epoch, Proofs: ps}))
	}
	s.mustAll("prove", blocks(c, txs))
	s.proveBytes, s.proofs, s.proveTxs = append(s.proveBytes, sumLen(txs)), append(s.proofs, proofs), append(s.proveTxs, len(txs))

	// Churn: new vaults, the previous ones retired.
	prev, next := s.net.vaults(s.gen), s.net.vaults(s.gen+1)
	s.gen++
	retire := make([]string, len(prev))
	for i, v := range prev {
		retire[i] = v.PubKey
	}
	churn := c.sign(s.net.authority, &attest.Churn{CreateVaults: next, RetireVaults: retire})
	s.mustAll("churn", c.block(churn))
	s.churnBytes = append(s.churnBytes, len(churn))
	var vs struct{ Vaults []attest.Vault }
	c.query("/vaults", &vs)
	index := map[string]uint64{}
	for _, v := range vs.Vaults {
		index[v.PubKey] = v.Index
	}

	// Every node commits its two shares in one Commit.
	shares := map[string][]attest.ShareCommit{}
	pending := map[string][][][]byte{}
	for i, v := range next {
		size := s.sizes[i%2]
		for _, m := range v.Members {
			copies := make([][]byte, refReplication)
			for j := range copies {
				copies[j] = make([]byte, size)
				s.rng.Read(copies[j])
			}
			cm, err := custody.NewCommitment(copies)
			if err != nil {
				c.t.Fatal(err)
			}
			shares[m] = append(shares[m], attest.ShareCommit{Vault: index[v.PubKey], Size: cm.Size, Root: cm.Root})
			pending[m] = append(pending[m], copies)
		}
	}
	txs = txs[:0]
	for _, a := range s.net.addrs {
		txs = append(txs, c.sign(idOf2(s.net, a), &attest.Commit{Shares: shares[a]}))
	}
	res := blocks(c, txs)
	s.mustAll("commit", res)
	s.commitBytes, s.commitTxs = append(s.commitBytes, sumLen(txs)), append(s.commitTxs, len(txs))
	for k, a := range s.net.addrs {
		ids := (&attest.TxResult{Events: res[k].Events}).Commitments()
		for j, id := range ids {
			c.copies[id] = pending[a][j]
			cm, _ := custody.NewCommitment(pending[a][j])
			s.roots[id] = cm.CopyRoots
		}
	}
	// Every holder attests its new custodies in one Attest.
	held := map[string][]attest.CustodyID{}
	for _, r := range res {
		for _, as := range (&attest.TxResult{Events: r.Events}).Assignments() {
			held[as.Holder] = append(held[as.Holder], as.Custody)
		}
	}
	txs = txs[:0]
	for _, a := range s.net.addrs {
		if len(held[a]) > 0 {
			txs = append(txs, c.sign(idOf2(s.net, a), &attest.Attest{Custodies: held[a]}))
		}
	}
	start = time.Now()
	if s.timeAttests {
		for _, tx := range txs {
			if r, _ := c.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: tx}); r.Code != 0 {
				c.t.Fatalf("CheckTx: %s", r.Log)
			}
		}
		if r, _ := c.app.ProcessProposal(context.Background(), &abci.ProcessProposalRequest{Txs: txs, Height: c.height + 1}); r.Status != abci.PROCESS_PROPOSAL_STATUS_ACCEPT {
			c.t.Fatal("proposal rejected")
		}
	}
	s.mustAll("attest", blocks(c, txs))
	if s.timeAttests {
		s.attestTime += time.Since(start)
		for _, ids := range held {
			s.attested += len(ids)
		}
	}
	s.attestBytes, s.attestTxs = append(s.attestBytes, sumLen(txs)), append(s.attestTxs, len(txs))
	// Forget the copies of commitments no longer in state.
	for id := range c.copies {
		if r := c.query(fmt.Sprintf("/commitment/%d", id), nil); r.Code != 0 {
			delete(c.copies, id)
			delete(s.roots, id)
		}
	}
}

func idOf2(net *refNet, a string) *identity.Identity {
	for i, x := range net.addrs {
		if x == a {
			return net.nodes[i]
		}
	}
	panic("unknown address " + a)
}

func mean(xs []int) float64 {
	t := 0
	for _, x := range xs {
		t += x
	}
	return float64(t) / float64(len(xs))
}

// BenchmarkChurnChainBytes measures the transaction bytes of the reference
// network per churn, on a real app, in steady state (after two warm-up
// churns, averaged over three): the Commits (120, two shares each) and
// Attests (one per holder, 720 custodies) against ADR 004's on-chain bytes,
// 120 × (sealed ECDSA + sealed EdDSA share), for 20-member shares (the
// tss-lib fixtures) and 40-member ones (synthesized, internal/fixtures); the
// authority's Churn is reported apart; and the Prove bytes per churn period
// at the default custody parameters (one epoch per churn period, every
// counted custody challenged every epoch), with copies of the sealed
// 20- and 40-party sizes.
//
//	go test -run '^$' -bench ChurnChainBytes -benchtime 1x ./attest/
func BenchmarkChurnChainBytes(b *testing.B) {
	net := newRefNet(b)
	adr := map[int]int{}
	sizes := map[int][2]int{}
	for _, parties := range []int{20, 40} {
		sizes[parties] = sealedSizes(b, parties)
		adr[parties] = refNodes * (sizes[parties][0] + sizes[parties][1])
	}
	for _, parties := range []int{20, 40} {
		b.Run(fmt.Sprintf("copies=%dparty", parties), func(b *testing.B) {
			var s *churnSim
			for range b.N {
				s = newChurnSim(b, net, sizes[parties])
				for range 5 {
					s.period()
				}
			}
			last := func(xs []int) []int { return xs[len(xs)-3:] }
			commit, att, churn := mean(last(s.commitBytes)), mean(last(s.attestBytes)), mean(last(s.churnBytes))
			prove := mean(last(s.proveBytes))
			b.ReportMetric(commit, "commit-B/churn")
			b.ReportMetric(att, "attest-B/churn")
			b.ReportMetric(commit+att, "commit+attest-B/churn")
			b.ReportMetric(100*(commit+att)/float64(adr[20]), "vs-adr20-%")
			b.ReportMetric(100*(commit+att)/float64(adr[40]), "vs-adr40-%")
			b.ReportMetric(churn, "churn-tx-B")
			b.ReportMetric(prove, "prove-B/churn-period")
			b.ReportMetric(mean(last(s.proofs)), "proofs/churn-period")
			b.ReportMetric(100*prove/float64(adr[20]), "prove-vs-adr20-%")
			b.ReportMetric(100*prove/float64(adr[40]), "prove-vs-adr40-%")
			b.ReportMetric(float64(adr[parties]), "adr004-B/churn")
			b.ReportMetric(float64(sizes[parties][0]), "sealed-ecdsa-B")
			b.ReportMetric(float64(sizes[parties][1]), "sealed-eddsa-B")
			b.ReportMetric(mean(last(s.attestTxs)), "attest-txs")
			var ms float64
			for _, d := range s.epochStart[len(s.epochStart)-3:] {
				ms += float64(d.Microseconds()) / 3000
			}
			b.ReportMetric(ms, "epoch-start-block-ms")
			drill, err := attest.SignTx(net.nodes[0], testChainID, testHRP, 120, 40_000,
				&attest.Drill{Custody: attest.CustodyID{Commitment: 70_000, Slot: 2}, Result: attest.DrillOK, Millis: 2500})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(drill)), "drill-tx-B")
		})
	}
}

// blocks runs txs through the app in blocks that PrepareProposal fills up
// to MaxBlockWrites.
func blocks(c *chain, txs [][]byte) []*abci.ExecTxResult {
	var out []*abci.ExecTxResult
	for len(txs) > 0 {
		prep, err := c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: txs, MaxTxBytes: 4 << 20})
		if err != nil || len(prep.Txs) == 0 {
			c.t.Fatalf("PrepareProposal: %v (%d txs kept)", err, len(prep.Txs))
		}
		out = append(out, c.block(prep.Txs...)...)
		txs = txs[len(prep.Txs):]
	}
	return out
}

func sumLen(txs [][]byte) int {
	n := 0
	for _, t := range txs {
		n += len(t)
	}
	return n
}

// BenchmarkProofCostCurve is the cost/detection curve of the challenge
// sampling (docs/performance.md), computed with custody.Challenges as the
// chain calls it, for the reference network: 120 holders of 6 custodies
// each (3 of a sealed ECDSA, 3 of an EdDSA copy, 20-party sizes). For E
// epochs per churn period and rounds of R epochs it reports
//
//   - prove-B/churn-period: Prove bytes per churn period, the encoded size
//     of each holder's Prove (its real proofs), when every churn replaces
//     all custodies (new ones are pending, so challenged at the next epoch);
//
//   - detect-1p, -2p, -3p: the fraction of copies lost at a uniformly
//     random epoch that are challenged (then stale) within 1, 2, 3 churn
//     periods, for custodies that live that long (a vault that does not
//     churn): the worst case for detection;
//
//   - fail-epochs-max: the most epochs from a loss to the failure (the
//     second miss), over the simulated losses.
//
//     go test -run '^$' -bench ProofCostCurve -benchtime 1x ./attest/
func BenchmarkProofCostCurve(b *testing.B) {
	sizes := sealedSizes(b, 20)
	for _, cfg := range []struct{ e, r int }{{1, 1}, {2, 1}, {2, 2}, {3, 3}, {6, 6}, {6, 12}, {12, 12}} {
		b.Run(fmt.Sprintf("epochs-per-churn=%d/round=%d", cfg.e, cfg.r), func(b *testing.B) {
			var bytes float64
			var det [3]float64
			var worst int
			for range b.N {
				bytes = curveBytes(b, sizes, cfg.e, uint64(cfg.r))
				det, worst = curveDetection(b, cfg.e, uint64(cfg.r))
			}
			adr := float64(refNodes * (sizes[0] + sizes[1]))
			b.ReportMetric(bytes, "prove-B/churn-period")
			b.ReportMetric(100*bytes/adr, "vs-adr20-%")
			b.ReportMetric(det[0], "detect-1p")
			b.ReportMetric(det[1], "detect-2p")
			b.ReportMetric(det[2], "detect-3p")
			b.ReportMetric(float64(worst), "fail-epochs-max")
		})
	}
}

// curveHolder is one holder's six custodies.
func curveHeld(gen uint64, sizes [2]int) []custody.Held {
	var hs []custody.Held
	for i := range 6 {
		hs = append(hs, custody.Held{ID: custody.CustodyID{Commitment: gen*6 + uint64(i) + 1}, Size: uint64(sizes[i%2]), Pending: true})
	}
	return hs
}

// curveBytes: 10 churn periods with churns every e epochs; every custody
// proven when challenged; the Prove bytes of the last 6 periods, for 120
// holders, per period.
func curveBytes(b *testing.B, sizes [2]int, e int, r uint64) float64 {
	const holders, periods, warm = 120, 10, 4
	item := map[uint64]int{}
	for _, sz := range sizes {
		item[uint64(sz)] = proofItemBytes(b, sz)
	}
	overhead := proveOverhead(b)
	total := 0
	held := make([][]custody.Held, holders)
	round := make([]map[custody.CustodyID]uint64, holders)
	for epoch := uint64(0); epoch < periods*uint64(e); epoch++ {
		if epoch%uint64(e) == 0 { // a churn: all new custodies, pending
			for i := range held {
				held[i] = curveHeld(epoch/uint64(e)*holders+uint64(i), sizes)
				round[i] = map[custody.CustodyID]uint64{}
			}
		}
		seed := custody.EpochSeed("curve", epoch, nil)
		for i := range held {
			for j := range held[i] {
				held[i][j].Challenged = round[i][held[i][j].ID] == epoch/r+1
			}
			chs, err := custody.Challenges(seed, fmt.Sprint("holder", i), held[i], epoch%r, r)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, ch := range chs {
				for j := range held[i] {
					if held[i][j].ID == ch.Custody {
						held[i][j].Pending = false
						round[i][ch.Custody] = epoch/r + 1
						n += item[held[i][j].Size]
					}
				}
			}
			if n > 0 && epoch >= warm*uint64(e) {
				total += overhead + n
			}
		}
	}
	return float64(total) / float64(periods-warm)
}

// proofItemBytes is the encoded size of one SegmentProof in a Prove: a real
// proof of the middle segment of a copy of size bytes, r = 3, a custody id
// of 3 bytes.
func proofItemBytes(b *testing.B, size int) int {
	blob := make([]byte, size)
	cm, err := custody.NewCommitment([][]byte{blob, blob, blob})
	if err != nil {
		b.Fatal(err)
	}
	p, err := custody.Prove(blob, cm.CopyRoots, 1, custody.Leaves(uint64(size))/2)
	if err != nil {
		b.Fatal(err)
	}
	sp := attest.NewSegmentProof(attest.CustodyID{Commitment: 70_000, Slot: 1}, p)
	sp2 := sp
	sp2.Custody.Commitment++
	return len(proveTx(b, []attest.SegmentProof{sp, sp2})) - len(proveTx(b, []attest.SegmentProof{sp}))
}

// proveOverhead is the bytes of a Prove transaction beyond its proofs
// (signer, sequence, epoch, signature, framing).
func proveOverhead(b *testing.B) int {
	blob := make([]byte, 100)
	cm, _ := custody.NewCommitment([][]byte{blob, blob, blob})
	p, _ := custody.Prove(blob, cm.CopyRoots, 1, 0)
	sp := attest.NewSegmentProof(attest.CustodyID{Commitment: 70_000, Slot: 1}, p)
	sp2 := sp
	sp2.Custody.Commitment++
	one := proveTx(b, []attest.SegmentProof{sp})
	two := proveTx(b, []attest.SegmentProof{sp, sp2})
	return 2*len(one) - len(two)
}

func proveTx(b *testing.B, ps []attest.SegmentProof) []byte {
	raw, err := attest.SignTx(testIDs[0], testChainID, testHRP, 100, 5_000, &attest.Prove{Epoch: 400, Proofs: ps})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// curveDetection simulates one holder with 6 long-lived custodies over many
// rounds and, for every (custody, loss epoch) pair, the epochs from the
// loss to the custody's next challenge (it is then stale) and to the one
// after (failed). It returns the fractions detected within 1, 2, 3 churn
// periods of e epochs, and the longest time to failure.
func curveDetection(b *testing.B, e int, r uint64) ([3]float64, int) {
	const epochs = 240
	held := curveHeld(0, [2]int{27142, 2162})
	for i := range held {
		held[i].Pending = false
	}
	lastRound := map[custody.CustodyID]uint64{}
	challenged := map[custody.CustodyID][]int{}
	for epoch := uint64(0); epoch < epochs; epoch++ {
		for i := range held {
			held[i].Challenged = lastRound[held[i].ID] == epoch/r+1
		}
		chs, err := custody.Challenges(custody.EpochSeed("detect", epoch, nil), "h", held, epoch%r, r)
		if err != nil {
			b.Fatal(err)
		}
		for _, ch := range chs {
			lastRound[ch.Custody] = epoch/r + 1
			challenged[ch.Custody] = append(challenged[ch.Custody], int(epoch))
		}
	}
	var within [3]int
	n, worst := 0, 0
	for _, hs := range held {
		list := challenged[hs.ID]
		sort.Ints(list)
		for loss := 0; loss < epochs-4*int(r)-4*e; loss++ {
			// The copy is lost during epoch loss: the next challenge is at
			// the first epoch after it.
			k := sort.SearchInts(list, loss+1)
			if k+1 >= len(list) {
				continue
			}
			n++
			delay := list[k] - loss
			for p := range within {
				if delay <= (p+1)*e {
					within[p]++
				}
			}
			// A stale custody is challenged again the next epoch (Stale),
			// so it fails one epoch after it is first missed.
			worst = max(worst, delay+1)
		}
	}
	var out [3]float64
	for p := range out {
		out[p] = float64(within[p]) / float64(n)
	}
	return out, worst
}

// BenchmarkAttestEntries measures the attested custodies per second the
// application accepts: the reference network's Attests of one churn (720
// custodies, one transaction per holder) through CheckTx, ProcessProposal,
// FinalizeBlock (signature, sequence and state checks, writes, app hash)
// and Commit, in steady state (the third churn of a run). Signing is the
// clients' work and is not timed.
func BenchmarkAttestEntries(b *testing.B) {
	net := newRefNet(b)
	var custodies int
	var elapsed time.Duration
	for range b.N {
		s := newChurnSim(b, net, [2]int{1000, 200})
		s.timeAttests = true
		for range 3 {
			s.period()
		}
		custodies += s.attested
		elapsed += s.attestTime
	}
	b.ReportMetric(float64(custodies)/elapsed.Seconds(), "custodies/s")
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N*3), "attest-ms/churn")
}
