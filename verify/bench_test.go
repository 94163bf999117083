package verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/verify"
)

// BenchmarkVerifiedCoverage40 measures, on one real validator (RPC over
// 127.0.0.1), what `ksb coverage --verify` costs for a 40-member vault with
// r = 3 (120 custodies, all attested), against the plain /coverage JSON in
// the same run:
//
//	lightclient-ms  light client from a height-1 anchor: NewClient + Update
//	query-ms        the proven /state reads and coverage (includes verify-ms)
//	verify-ms       decoding and checking the ICS23 proofs alone
//	proof-bytes     the proofs of one answer; keys: the keys read
//	plain-ms        the unverified /coverage JSON query
//
// Sub-benchmarks: 1 and 8 proven queries in flight (Config.Concurrency),
// against the node's RPC directly and through a proxy that adds 20 ms to
// every answer (an RPC node across a network).
func BenchmarkVerifiedCoverage40(b *testing.B) {
	net := newTestNet(b, 40)
	slow := newLyingRPC(b, net.e.RPCURL(), nil)
	slow.delay = 20 * time.Millisecond
	for _, rpc := range []struct {
		name, url string
	}{{"local", net.e.RPCURL()}, {"rtt=20ms", slow.URL}} {
		for _, conc := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/concurrency=%d", rpc.name, conc), func(b *testing.B) { benchCoverage(b, net, rpc.url, conc) })
		}
	}
}

func benchCoverage(b *testing.B, net *testNet, url string, conc int) {
	ctx := context.Background()
	plain, err := attest.NewClient(url)
	if err != nil {
		b.Fatal(err)
	}
	var lcT, qT, vT, pT time.Duration
	var st verify.Stats
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		c, err := verify.New(ctx, verify.Config{ChainID: testChainID, Primary: url, Anchor: net.anchor, Concurrency: conc})
		if err != nil {
			b.Fatal(err)
		}
		s, err := c.Latest(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		cov, err := s.Coverage(ctx, testVault)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if len(cov.Vaults[0].Members) != 40 || !cov.Vaults[0].Safe {
			b.Fatalf("coverage %+v", cov.Vaults[0])
		}
		if _, err := plain.Coverage(ctx, testVault); err != nil {
			b.Fatal(err)
		}
		pT += time.Since(t2)
		lcT += t1.Sub(t0)
		qT += t2.Sub(t1)
		st = s.Stats()
		vT += st.VerifyTime
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(lcT), "lightclient-ms")
	b.ReportMetric(ms(qT), "query-ms")
	b.ReportMetric(ms(vT), "verify-ms")
	b.ReportMetric(ms(pT), "plain-ms")
	b.ReportMetric(float64(st.ProofBytes), "proof-bytes")
	b.ReportMetric(float64(st.Keys), "keys")
}
