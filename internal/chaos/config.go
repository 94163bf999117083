package chaos

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ksb-project/ksb/p2p"
)

// Fault is what a cycle does to the network.
type Fault int

const (
	// Kill is a SIGKILL of the holder at a random moment, then a restart.
	Kill Fault = iota
	// Stop is a SIGSTOP of the holder past the push deadline, then SIGCONT
	// (or SIGKILL and a restart).
	Stop
	// ChainDown stops the validator, then kills and restarts the holder while
	// the chain is down.
	ChainDown
)

func (f Fault) String() string {
	switch f {
	case Kill:
		return "kill"
	case Stop:
		return "stop"
	case ChainDown:
		return "chain-down"
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// ParseSchedule parses a comma-separated list of faults ("kill,stop,chain-down").
func ParseSchedule(s string) ([]Fault, error) {
	var out []Fault
	for _, name := range strings.Split(s, ",") {
		f, ok := map[string]Fault{"kill": Kill, "stop": Stop, "chain-down": ChainDown}[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("fault %q: want kill, stop or chain-down", name)
		}
		out = append(out, f)
	}
	return out, nil
}

// Limits of a run.
const (
	// MaxOwners and MaxVaults keep a run within one machine and within what
	// one fetch returns (Vaults blobs of at most maxBlobSize each, under
	// p2p.MaxFetchBytes) and what a holder lets one owner keep
	// (config.Store's default quota of 64 blobs).
	MaxOwners = 16
	MaxVaults = 32
	// MaxPushers stays under the holder's per-peer allowance of inbound push
	// streams (p2p's pushStreamsPerPeer, 4): more would be reset by the
	// holder's resource manager, which is not what this run tests.
	MaxPushers = 3

	// smallBlobSize, minBlobSize and maxBlobSize are the blob sizes: half of
	// the pushes carry a 60 KiB blob (a sealed 20-party keyshare), half a
	// size drawn from 1 KiB to 900 KiB (small vaults up to the largest blob
	// far above any real share, still under p2p.MaxBlobSize).
	smallBlobSize = 60 << 10
	minBlobSize   = 1 << 10
	maxBlobSize   = 900 << 10
)

// Default values of Config.
const (
	DefaultCycles   = 40
	DefaultDuration = 20 * time.Minute
	DefaultOwners   = 3
	DefaultPushers  = 2
	DefaultVaults   = 8
	// DefaultStopFor is how long a Stop fault freezes the holder: past
	// p2p.PushTimeout, the deadline of the holder's own push streams, so
	// every stream open at the SIGSTOP has expired when it resumes.
	DefaultStopFor = p2p.PushTimeout + 2*time.Second
)

// Config describes a run. Zero fields take the defaults above.
type Config struct {
	// KSB is the path of the ksb binary under test (required).
	KSB string
	// Dir is the working directory: the testnet and the process logs. It
	// must not exist or be empty (required).
	Dir string
	// Seed drives the schedule; 0 means one drawn from the clock. The seed
	// used is in Result.Seed and printed first.
	Seed uint64
	// Cycles and Duration bound the run: it stops after Cycles cycles, or
	// before starting a cycle once Duration has passed.
	Cycles   int
	Duration time.Duration
	// Owners is the number of owner nodes; Pushers the concurrent pushes of
	// each; Vaults the vaults every owner is a member of (one slot each).
	Owners  int
	Pushers int
	Vaults  int
	// Schedule, if set, is the faults of the cycles in order (Cycles is then
	// len(Schedule)); otherwise each cycle draws one, weighted 6 kill : 1
	// stop : 2 chain-down.
	Schedule []Fault
	// StopFor is how long a Stop fault freezes the holder.
	StopFor time.Duration
	// Log receives one line per step and cycle; nil discards them.
	Log io.Writer
}

func (c *Config) setDefaults() error {
	if c.KSB == "" || c.Dir == "" {
		return errors.New("chaos: the ksb binary and a working directory are required")
	}
	if c.Cycles == 0 {
		c.Cycles = DefaultCycles
	}
	if len(c.Schedule) > 0 {
		c.Cycles = len(c.Schedule)
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Owners == 0 {
		c.Owners = DefaultOwners
	}
	if c.Pushers == 0 {
		c.Pushers = DefaultPushers
	}
	if c.Vaults == 0 {
		c.Vaults = DefaultVaults
	}
	if c.StopFor == 0 {
		c.StopFor = DefaultStopFor
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	switch {
	case c.Cycles < 1 || c.Duration < 0:
		return fmt.Errorf("chaos: %d cycles in %v: want at least one cycle", c.Cycles, c.Duration)
	case c.Owners < 1 || c.Owners > MaxOwners:
		return fmt.Errorf("chaos: %d owners, want 1..%d", c.Owners, MaxOwners)
	case c.Pushers < 1 || c.Pushers > MaxPushers:
		return fmt.Errorf("chaos: %d pushers per owner, want 1..%d", c.Pushers, MaxPushers)
	case c.Vaults < c.Pushers || c.Vaults > MaxVaults:
		return fmt.Errorf("chaos: %d vaults, want %d..%d (at least one per pusher)", c.Vaults, c.Pushers, MaxVaults)
	case c.Vaults*maxBlobSize > p2p.MaxFetchBytes:
		return fmt.Errorf("chaos: %d vaults of up to %d bytes do not fit one fetch", c.Vaults, maxBlobSize)
	}
	return nil
}

// Problem is one thing the run found wrong.
type Problem struct {
	Cycle  int    // 0: during set-up, Cycles+1: the final check
	What   string // one line
	Detail string // log excerpt or other context, may be empty
}

func (p Problem) String() string {
	s := fmt.Sprintf("cycle %d: %s", p.Cycle, p.What)
	if p.Detail != "" {
		s += "\n" + p.Detail
	}
	return s
}

// Result is what a run did and found.
type Result struct {
	Seed     uint64
	Cycles   int           // cycles completed
	Faults   map[Fault]int // cycles per fault
	Receipts int           // pushes acknowledged with a verified receipt
	Failed   int           // pushes without a receipt (cut by a fault, refused, timed out)
	Verified int           // blob checks passed: per cycle, every slot's blob fetched and re-hashed
	Rechecks int           // owner checks whose first fetch disagreed and a second, 2 s later, agreed
	Elapsed  time.Duration
	Problems []Problem // empty if the run is clean
}

// OK reports whether the run found nothing wrong.
func (r *Result) OK() bool { return len(r.Problems) == 0 }
