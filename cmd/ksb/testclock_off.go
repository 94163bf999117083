//go:build !ksb_testhooks

package main

import "time"

// testClock is the wall clock `ksb node` and `ksb recover` give the node and
// the recovery: nil (time.Now) outside ksb_testhooks builds.
func testClock() (func() time.Time, error) { return nil, nil }
