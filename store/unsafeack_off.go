//go:build !ksb_unsafe_ack

package store

// unsafeAck is false in every real build: Put returns only once the blob is
// durable.
const unsafeAck = false

const unsafeAckDelay = 0
