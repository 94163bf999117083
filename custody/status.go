package custody

import "fmt"

// Status is the state of one custody.
type Status uint8

// The statuses. The zero value is not a status: it prints as "unknown" and
// never counts.
const (
	// StatusPending: assigned, attested or not, no proof yet.
	StatusPending Status = 1 + iota
	// StatusFresh: answered its last challenge.
	StatusFresh
	// StatusStale: missed its last challenge once; challenged again next
	// epoch.
	StatusStale
	// StatusFailed: missed twice in a row, or its holder failed, left the
	// active set or released it, or a restore drill failed. Final.
	StatusFailed
)

var statusNames = [...]string{StatusPending: "pending", StatusFresh: "fresh", StatusStale: "stale", StatusFailed: "failed"}

// String returns "pending", "fresh", "stale", "failed" or "unknown".
func (s Status) String() string {
	if s.Valid() {
		return statusNames[s]
	}
	return "unknown"
}

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool { return s >= StatusPending && s <= StatusFailed }

// ParseStatus parses the String form; anything else wraps
// ErrInvalidArgument.
func ParseStatus(name string) (Status, error) {
	for s := StatusPending; s <= StatusFailed; s++ {
		if statusNames[s] == name {
			return s, nil
		}
	}
	return 0, badArg("status %q", name)
}

// MarshalText implements encoding.TextMarshaler (JSON gives the name).
func (s Status) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: status %d", ErrInvalidArgument, uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Proved is the status after a valid proof: fresh, except that failed is
// final (a failed custody is being repaired; a late proof does not undo it).
func (s Status) Proved() Status {
	if s == StatusFailed || !s.Valid() {
		return s
	}
	return StatusFresh
}

// Missed is the status after a challenge went unanswered by the end of its
// proof window: pending or fresh become stale, stale becomes failed.
func (s Status) Missed() Status {
	switch s {
	case StatusPending, StatusFresh:
		return StatusStale
	case StatusStale:
		return StatusFailed
	}
	return s
}

// EpochTally is what one holder did with one epoch's challenges.
type EpochTally struct {
	Challenged int // challenges it was given
	Answered   int // of those, answered with a valid proof in time
}

// AllMissed reports whether the holder was challenged and answered nothing.
func (t EpochTally) AllMissed() bool { return t.Challenged > 0 && t.Answered == 0 }

// HolderFails reports whether a holder fails as a whole, failing all its
// custodies: it missed every challenge of two consecutive epochs, prev and
// cur. Since every holder with counted custodies is challenged every epoch
// (Challenges), a holder that lost everything fails two epochs after the
// loss at most.
func HolderFails(prev, cur EpochTally) bool { return prev.AllMissed() && cur.AllMissed() }
