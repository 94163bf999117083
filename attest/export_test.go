package attest

import (
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"
)

// FinalizeBlockFailingAt runs FinalizeBlock with a store whose write number
// n of the block (counting from 1) fails as a storage failure does.
func FinalizeBlockFailingAt(a *App, req *abci.FinalizeBlockRequest, n int) (*abci.FinalizeBlockResponse, error) {
	return a.finalizeBlock(req, func(s kv) kv { return &failingKV{kv: s, failAt: n} })
}

type failingKV struct {
	kv
	writes, failAt int
}

func (f *failingKV) write() error {
	if f.writes++; f.writes == f.failAt {
		return fmt.Errorf("write %d: injected storage failure: %w", f.writes, ErrInternal)
	}
	return nil
}

func (f *failingKV) set(k string, v []byte) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.kv.set(k, v)
}

func (f *failingKV) del(k string) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.kv.del(k)
}
