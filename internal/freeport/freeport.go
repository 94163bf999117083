// Package freeport hands out ports on 127.0.0.1 for listeners that must be
// named before they are bound: a port written to a config file or a genesis
// that another process (a `ksb chain start`, a `ksb node`) or a later start
// binds.
//
// Such a port was free when it was chosen and is bound only later; whatever
// binds it meanwhile makes the start fail with "address already in use". A
// port asked of the kernel (listen on port 0, then close) is in its
// ephemeral range, from which every process on the machine also takes the
// source port of each outbound connection and every port-0 listener: on a
// loaded machine running tests in parallel, one of them takes it within a
// second. So the ports here come from below the ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range on Linux), which only an explicit
// bind takes, and each process walks that range from a random point, never
// handing out a port twice, so that parallel processes rarely meet.
//
// A listener that can be bound at once should listen on port 0 and read the
// bound address back instead.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

const (
	// lowest is the lowest port handed out: above the registered ports
	// most services on a developer's machine use by default.
	lowest = 10000

	// defaultEphemeralLow is the start of the ephemeral range where it
	// cannot be read (Linux's default; IANA's 49152 is higher, so ports
	// below this are below it too).
	defaultEphemeralLow = 32768

	// maxCount caps a Range: a testnet of a few dozen processes.
	maxCount = 1000
)

// ErrNoPorts is returned when no range of the size asked for is free.
var ErrNoPorts = errors.New("freeport: no free range of ports on 127.0.0.1")

var (
	mu   sync.Mutex
	next int // the next port to try; 0 until the first call
)

// Range returns the first of count consecutive ports on 127.0.0.1, each
// free for TCP and (udp) for UDP when it returns, below the ephemeral range
// and not handed out before by this process. It fails with ErrNoPorts when
// it has walked the whole range without finding count free ports in a row.
func Range(count int, udp bool) (int, error) {
	if count < 1 || count > maxCount {
		return 0, fmt.Errorf("freeport: count %d not in [1, %d]", count, maxCount)
	}
	hi := ephemeralLow()
	if hi-lowest < count {
		return 0, ErrNoPorts
	}
	mu.Lock()
	defer mu.Unlock()
	if next == 0 {
		next = lowest + rand.IntN(hi-lowest)
	}
	for tried := 0; tried < hi-lowest; {
		if next+count > hi {
			next = lowest
		}
		base := next
		ok := true
		for p := base; p < base+count; p++ {
			if !free(p, udp) {
				// Start again past the taken port.
				tried += p - base + 1
				next = p + 1
				ok = false
				break
			}
		}
		if ok {
			next = base + count
			return base, nil
		}
	}
	return 0, ErrNoPorts
}

// Addr returns "127.0.0.1:port" for one port of Range(1, false).
func Addr() (string, error) {
	p, err := Range(1, false)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// free reports whether port binds on 127.0.0.1 for TCP (and UDP) now.
func free(port int, udp bool) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	if udp {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range, or
// defaultEphemeralLow where that cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultEphemeralLow
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return defaultEphemeralLow
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= lowest {
		return defaultEphemeralLow
	}
	return lo
}
