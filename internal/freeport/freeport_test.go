package freeport_test

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/internal/freeport"
)

// TestRange: ranges are free for TCP and UDP, never overlap within a
// process, and lie below the kernel's ephemeral range (where port-0
// listeners and outbound connections of other processes take ports).
func TestRange(t *testing.T) {
	lo := 1 << 16
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		lo, _ = strconv.Atoi(strings.Fields(string(b))[0])
	}
	seen := map[int]bool{}
	for range 20 {
		base, err := freeport.Range(8, true)
		if err != nil {
			t.Fatal(err)
		}
		for p := base; p < base+8; p++ {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			if p >= lo {
				t.Fatalf("port %d is in the ephemeral range (from %d)", p, lo)
			}
			addr := fmt.Sprintf("127.0.0.1:%d", p)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
	}
}

// TestRangeSkipsTakenPorts: a port held by a listener is never handed out.
func TestRangeSkipsTakenPorts(t *testing.T) {
	base, err := freeport.Range(1, false)
	if err != nil {
		t.Fatal(err)
	}
	// The next port this process would try, taken meanwhile.
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+1))
	if err != nil {
		t.Skipf("port %d taken already: %v", base+1, err)
	}
	defer l.Close()
	got, err := freeport.Range(2, false)
	if err != nil {
		t.Fatal(err)
	}
	if got <= base+1 && base+1 < got+2 {
		t.Fatalf("range %d+2 includes the held port %d", got, base+1)
	}
}

func TestRangeCount(t *testing.T) {
	for _, n := range []int{0, -1, 1001} {
		if _, err := freeport.Range(n, false); err == nil {
			t.Errorf("Range(%d) did not fail", n)
		}
	}
}
