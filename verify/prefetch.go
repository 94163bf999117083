package verify

import (
	"context"
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/attest/attestpb"
)

// DefaultConcurrency bounds the proven queries in flight to the primary
// (Config.Concurrency): over a network each is a round trip, so eight hide
// most of the latency (240 keys at 50 ms: 1.5 s instead of 12 s) without
// loading an RPC node that serves others. Against a node on the same
// machine the queries are CPU-bound and 1 is as fast (docs/performance.md).
const DefaultConcurrency = 8

// Prefetch reads and verifies keys concurrently (Config.Concurrency at a
// time) into the State's cache, so that later Gets of them are answered
// from verified values. The first refusal is returned.
func (s *State) Prefetch(ctx context.Context, keys []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		work  = make(chan string)
	)
	for range min(s.c.concurrency, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if _, err := s.Get(ctx, k); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, k := range keys {
		select {
		case work <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return first
}

// prefetchCoverage walks the coverage key chain (attest.CoverageKeys) one
// stage at a time, each stage's keys fetched concurrently, so that
// attest.ComputeCoverage then runs on verified values already in the cache.
// It only warms the cache: what a record it cannot decode means is left to
// ComputeCoverage, which reads the same keys again from the cache.
func (s *State) prefetchCoverage(ctx context.Context, vault string) error {
	cached := func(k string) []byte {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.cache[k]
	}
	decode := func(k string, m proto.Message) bool {
		b := cached(k)
		return b != nil && proto.Unmarshal(b, m) == nil
	}
	if err := s.Prefetch(ctx, []string{attest.KeyParams(), attest.KeyCounters()}); err != nil {
		return err
	}
	vaults := []string{vault}
	if vault == "" {
		cnt := &attestpb.Counters{}
		decode(attest.KeyCounters(), cnt)
		var idx []string
		for i := uint64(1); i < cnt.NextVault; i++ {
			idx = append(idx, attest.KeyVaultIndex(i))
		}
		if err := s.Prefetch(ctx, idx); err != nil {
			return err
		}
		vaults = nil
		for _, k := range idx {
			if pk := cached(k); pk != nil {
				vaults = append(vaults, string(pk))
			}
		}
	}
	var keys []string
	for _, v := range vaults {
		keys = append(keys, attest.KeyVault(v))
	}
	if err := s.Prefetch(ctx, keys); err != nil {
		return err
	}
	keys = nil
	for _, v := range vaults {
		r := &attestpb.VaultRecord{}
		if decode(attest.KeyVault(v), r) {
			for _, m := range r.Members {
				keys = append(keys, attest.KeyLatest(m, r.Index))
			}
		}
	}
	if err := s.Prefetch(ctx, keys); err != nil {
		return err
	}
	var ids []uint64
	var commits []string
	for _, k := range keys {
		if id, err := strconv.ParseUint(string(cached(k)), 10, 64); err == nil {
			ids = append(ids, id)
			commits = append(commits, attest.KeyCommitment(id))
		}
	}
	if err := s.Prefetch(ctx, commits); err != nil {
		return err
	}
	keys = nil
	for i, id := range ids {
		c := &attestpb.CommitmentRecord{}
		if decode(commits[i], c) {
			for slot := range min(uint64(c.Slots), 256) {
				keys = append(keys, attest.KeyCustody(attest.CustodyID{Commitment: id, Slot: slot}))
			}
		}
	}
	if err := s.Prefetch(ctx, keys); err != nil {
		return err
	}
	holders := map[string]bool{}
	var nodes []string
	for _, k := range keys {
		c := &attestpb.CustodyRecord{}
		if decode(k, c) && !holders[c.Holder] {
			holders[c.Holder] = true
			nodes = append(nodes, attest.KeyNode(c.Holder))
		}
	}
	return s.Prefetch(ctx, nodes)
}
