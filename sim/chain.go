package sim

import (
	"context"
	"fmt"
	"slices"
	"time"

	coretypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/ksb-project/ksb/attest"
)

// undecodable is the type of transaction bytes the chain's decoder refuses:
// counted, so that the bytes by type always add up to the total.
const undecodable = "undecodable"

// blockchainInfoPage is how many block headers CometBFT's /blockchain
// answers with at once.
const blockchainInfoPage = 20

// scanAttempts bounds the tries of one RPC call of the chain scan: an
// answer lost to a starved RPC (EOF) is asked for again, a block that
// cannot be read after that many tries ends the scan.
const scanAttempts = 5

// retryRPC calls f up to scanAttempts times, a second apart.
func retryRPC[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for i := range scanAttempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return v, err
			case <-time.After(time.Second):
			}
		}
		if v, err = f(); err == nil {
			return v, nil
		}
	}
	return v, err
}

// ChainStats are the chain's figures over a range of blocks.
type ChainStats struct {
	// From and To are the first and last block counted.
	From, To int64
	// Blocks is the number of blocks counted, Txs their transactions.
	Blocks int `json:"blocks"`
	Txs    int `json:"txs"`
	// TxBytes is the size of every transaction in those blocks; ByType
	// splits it by message type (attest.Msg Type names, or "undecodable").
	TxBytes int64                `json:"tx_bytes"`
	ByType  map[string]TypeBytes `json:"by_type"`
	// BlockBytes is the size of the blocks themselves (headers, commits
	// and transactions), as CometBFT reports it.
	BlockBytes int64 `json:"block_bytes"`
	// BlockTimeMean, BlockTimeP95 and BlockTimeMax are the intervals
	// between consecutive block times (header time) in the range.
	BlockTimeMean time.Duration `json:"block_time_mean"`
	BlockTimeP95  time.Duration `json:"block_time_p95"`
	BlockTimeMax  time.Duration `json:"block_time_max"`
	// Proofs counts the Prove transactions of the range by the epoch they
	// answer.
	Proofs map[uint64]EpochProofs `json:"proofs,omitempty"`
}

// EpochProofs counts what the Prove transactions of one epoch carried.
type EpochProofs struct {
	Txs    int   `json:"txs"`
	Proofs int   `json:"proofs"`
	Bytes  int64 `json:"bytes"`
}

// TypeBytes counts the transactions of one message type.
type TypeBytes struct {
	Txs   int   `json:"txs"`
	Bytes int64 `json:"bytes"`
}

// txType names the message tx carries, as the chain's own decoder reads it
// (attest.DecodeTx, then Msg.Type), and returns the message.
func txType(tx []byte) (string, attest.Msg) {
	t, err := attest.DecodeTx(tx)
	if err != nil || t.Msg == nil {
		return undecodable, nil
	}
	return t.Msg.Type(), t.Msg
}

// scanChain reads blocks from..to from the CometBFT RPC at rpcURL and
// counts their transactions by type and their block times. Every block of
// the range is read: nothing is sampled.
func scanChain(ctx context.Context, rpcURL string, from, to int64) (*ChainStats, error) {
	c, err := attest.NewRPC(rpcURL)
	if err != nil {
		return nil, err
	}
	st := &ChainStats{From: from, To: to, ByType: map[string]TypeBytes{}, Proofs: map[uint64]EpochProofs{}}
	times := make([]time.Time, 0, to-from+1)
	for lo := from; lo <= to; lo += blockchainInfoPage {
		hi := min(lo+blockchainInfoPage-1, to)
		info, err := retryRPC(ctx, func() (*coretypes.ResultBlockchainInfo, error) { return c.BlockchainInfo(ctx, lo, hi) })
		if err != nil {
			return nil, fmt.Errorf("block headers %d..%d: %w", lo, hi, err)
		}
		metas := info.BlockMetas
		if len(metas) != int(hi-lo+1) {
			return nil, fmt.Errorf("block headers %d..%d: %d answered", lo, hi, len(metas))
		}
		// CometBFT answers newest first.
		for i := len(metas) - 1; i >= 0; i-- {
			m := metas[i]
			st.Blocks++
			st.BlockBytes += int64(m.BlockSize)
			times = append(times, m.Header.Time)
			if m.NumTxs == 0 {
				continue
			}
			h := m.Header.Height
			b, err := retryRPC(ctx, func() (*coretypes.ResultBlock, error) { return c.Block(ctx, &h) })
			if err != nil {
				return nil, fmt.Errorf("block %d: %w", h, err)
			}
			for _, tx := range b.Block.Txs {
				t, msg := txType(tx)
				if p, ok := msg.(*attest.Prove); ok {
					ep := st.Proofs[p.Epoch]
					ep.Txs++
					ep.Proofs += len(p.Proofs)
					ep.Bytes += int64(len(tx))
					st.Proofs[p.Epoch] = ep
				}
				tb := st.ByType[t]
				tb.Txs++
				tb.Bytes += int64(len(tx))
				st.ByType[t] = tb
				st.Txs++
				st.TxBytes += int64(len(tx))
			}
		}
	}
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		var sum time.Duration
		for _, g := range gaps {
			sum += g
		}
		st.BlockTimeMean = sum / time.Duration(len(gaps))
		st.BlockTimeP95 = gaps[(len(gaps)*95+99)/100-1]
		st.BlockTimeMax = gaps[len(gaps)-1]
	}
	return st, nil
}
