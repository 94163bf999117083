package statestore

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble"
)

// iavlLogger gives IAVL an iavl.Logger that writes to slog. IAVL logs
// pruning errors and, at debug level, every saved version.
type iavlLogger struct{ l *slog.Logger }

func (i iavlLogger) Debug(msg string, kv ...any) { i.l.Debug(msg, append(kv, "module", "iavl")...) }
func (i iavlLogger) Info(msg string, kv ...any)  { i.l.Info(msg, append(kv, "module", "iavl")...) }
func (i iavlLogger) Warn(msg string, kv ...any)  { i.l.Warn(msg, append(kv, "module", "iavl")...) }
func (i iavlLogger) Error(msg string, kv ...any) { i.l.Error(msg, append(kv, "module", "iavl")...) }

// pebbleLogger sends Pebble's messages (WAL replay, compactions) to slog at
// debug level; a fatal one still ends the process, as Pebble's own logger
// does (it means the store is corrupt).
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "module", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "module", "pebble")
	pebble.DefaultLogger.Fatalf(format, args...)
}
