//go:build ksb_testhooks

package main

import (
	"fmt"
	"os"
	"time"
)

// testClockEnv names the offset (a Go duration, "10m", "-10m") that builds
// with the ksb_testhooks tag add to the wall clock of `ksb node` and `ksb
// recover`, so that process tests can run them with a wrong clock. Never
// ship such a build.
const testClockEnv = "KSB_TEST_CLOCK_OFFSET"

// testClock returns a clock testClockEnv off, or nil when it is not set.
func testClock() (func() time.Time, error) {
	v := os.Getenv(testClockEnv)
	if v == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", testClockEnv, err)
	}
	return func() time.Time { return time.Now().Add(d) }, nil
}
