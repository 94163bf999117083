package attest

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble"
	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
)

// dbProvider opens CometBFT's databases. It differs from
// cmtcfg.DefaultDBProvider in two ways: Pebble's informational messages go
// to the node's logger (at debug level) instead of the standard logger, and
// it remembers the transaction index database, which CometBFT v1.0.1's
// Node.OnStop leaves open (so the home could not be reopened in the same
// process), to close it after the node stops.
type dbProvider struct {
	log *slog.Logger

	mu      sync.Mutex
	toClose []dbm.DB
}

func (p *dbProvider) open(ctx *cmtcfg.DBContext) (dbm.DB, error) {
	var (
		db  dbm.DB
		err error
	)
	if dbm.BackendType(ctx.Config.DBBackend) == dbm.PebbleDBBackend {
		opts := &pebble.Options{Logger: pebbleLogger{p.log}}
		db, err = dbm.NewPebbleDBWithOpts(ctx.ID, ctx.Config.DBDir(), opts)
	} else {
		db, err = cmtcfg.DefaultDBProvider(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s database: %w", ctx.ID, err)
	}
	if ctx.ID == "tx_index" {
		p.mu.Lock()
		p.toClose = append(p.toClose, db)
		p.mu.Unlock()
	}
	return db, nil
}

// closeLeftovers closes the databases CometBFT does not close itself.
func (p *dbProvider) closeLeftovers() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for _, db := range p.toClose {
		if err := db.Close(); err != nil && first == nil {
			first = err
		}
	}
	p.toClose = nil
	return first
}

// pebbleLogger sends Pebble's messages to slog; a fatal one still ends the
// process, as Pebble's own logger does (it means the store is corrupt).
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "module", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "module", "pebble")
	pebble.DefaultLogger.Fatalf(format, args...)
}
