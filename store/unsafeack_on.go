//go:build ksb_unsafe_ack

package store

import "time"

// unsafeAck, in a build with the tag ksb_unsafe_ack, makes Put acknowledge a
// blob before writing it (see ackBeforeWrite). It exists to show that the
// crash-consistency run (`make chaos`) fails on a holder whose receipts are
// not backed by durable writes. Never ship such a build.
const unsafeAck = true

// unsafeAckDelay is how long the broken build keeps an acknowledged blob
// only in memory: a write-back cache's flush interval (Linux flushes dirty
// pages after up to 5 s). At 300 ms a loaded machine's short chaos run saw no
// receipt in the window before its one kill, and so no loss to catch.
const unsafeAckDelay = 2 * time.Second
