package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Options configures [Open]. Start from [DefaultOptions] and adjust with the
// With methods, Badger style.
type Options struct {
	// Dir is the directory holding the database. It is ignored when InMemory is
	// set.
	Dir string

	// InMemory keeps everything in memory and nothing on disk; for tests.
	InMemory bool

	// Logger receives Badger's log messages: its errors and warnings at their
	// level, its informational and debug chatter at [slog.LevelDebug]. Nil (the
	// default) discards them.
	Logger *slog.Logger
}

// DefaultOptions returns the options for a database in dir: on disk, silent.
func DefaultOptions(dir string) Options {
	return Options{Dir: dir}
}

// WithLogger returns a copy of o that logs Badger's messages to l (nil: none).
func (o Options) WithLogger(l *slog.Logger) Options {
	o.Logger = l
	return o
}

// WithInMemory returns a copy of o that keeps the database in memory when b is
// true.
func (o Options) WithInMemory(b bool) Options {
	o.InMemory = b
	return o
}

// slogAdapter implements badger.Logger on top of a *slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) log(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !a.l.Enabled(ctx, level) {
		return
	}
	a.l.Log(ctx, level, strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
}

func (a slogAdapter) Errorf(format string, args ...any) { a.log(slog.LevelError, format, args...) }

func (a slogAdapter) Warningf(format string, args ...any) { a.log(slog.LevelWarn, format, args...) }

// Infof logs at debug level: Badger's informational messages (tables opened,
// compactions) are noise to an operator.
func (a slogAdapter) Infof(format string, args ...any) { a.log(slog.LevelDebug, format, args...) }

func (a slogAdapter) Debugf(format string, args ...any) { a.log(slog.LevelDebug, format, args...) }
