//go:build ksb_unsafe_ack

package store

import "time"

// unsafeAck, in a build with the tag ksb_unsafe_ack, makes Put acknowledge a
// blob before writing it (see ackBeforeWrite). It exists to show that the
// crash-consistency run (`make chaos`) fails on a holder whose receipts are
// not backed by durable writes. Never ship such a build.
const unsafeAck = true

// unsafeAckDelay is how long the broken build keeps an acknowledged blob
// only in memory: a write-back cache's flush interval.
const unsafeAckDelay = 300 * time.Millisecond
