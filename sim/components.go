package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// settle is how long memory is left to settle after a step before it is
// read: Badger and libp2p start goroutines that allocate their first
// buffers a moment after Open and New return.
const settle = 2 * time.Second

// Cost is what one component adds to the process.
type Cost struct {
	// RSS is resident memory in bytes, GoMemory the Go runtime's mapped
	// memory (runtime/metrics /memory/classes/total:bytes), Heap the live
	// heap after a GC, all per unit.
	RSS      float64 `json:"rss"`
	GoMemory float64 `json:"go_memory"`
	Heap     float64 `json:"heap"`
	// Goroutines and FDs per unit.
	Goroutines float64 `json:"goroutines"`
	FDs        float64 `json:"fds"`
}

// Components are the measured costs of a node's parts, each from K units
// at once in this process.
type Components struct {
	K int `json:"k"`
	// Store is one Badger store as the node opens it (store.DefaultOptions:
	// 16 MiB memtables, two of them, no block cache), empty.
	Store Cost `json:"store"`
	// Host is one libp2p host as the node starts it (p2p.NewHost, TCP on
	// 127.0.0.1), idle.
	Host Cost `json:"host"`
	// Conn is one connection between two of those hosts (both ends, as in
	// a one-process simulation; a real node pays for one end).
	Conn  Cost `json:"conn"`
	Conns int  `json:"conns"`
}

type snapshot struct {
	rss, goMem, heap uint64
	goroutines, fds  int
}

func take() snapshot {
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(settle) // see settle: nothing to wait on, the allocations are other packages' background work
	runtime.GC()
	var s snapshot
	s.rss, _ = procStatus("VmRSS")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.goMem, s.heap = ms.Sys, ms.HeapAlloc
	s.goroutines = runtime.NumGoroutine()
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.fds = len(fds)
	}
	return s
}

func costOf(a, b snapshot, units int) Cost {
	u := float64(units)
	return Cost{
		RSS: (float64(b.rss) - float64(a.rss)) / u, GoMemory: (float64(b.goMem) - float64(a.goMem)) / u,
		Heap:       (float64(b.heap) - float64(a.heap)) / u,
		Goroutines: float64(b.goroutines-a.goroutines) / u, FDs: float64(b.fds-a.fds) / u,
	}
}

// MeasureComponents measures, in this process, what k Badger stores, k
// idle libp2p hosts and the k(k-1)/2 connections of their full mesh add to
// memory, goroutines and file descriptors, per unit. Run it in a process
// of its own (memory already freed by earlier work blurs the figures).
func MeasureComponents(ctx context.Context, k int, out io.Writer) (*Components, error) {
	if k < 2 {
		return nil, fmt.Errorf("%d units: need at least 2", k)
	}
	dir, err := os.MkdirTemp("", "ksb-sim-components-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c := &Components{K: k, Conns: k * (k - 1) / 2}

	s0 := take()
	var stores []*store.Store
	defer func() {
		for _, st := range stores {
			st.Close()
		}
	}()
	for i := range k {
		st, err := store.Open(store.DefaultOptions(filepath.Join(dir, strconv.Itoa(i))))
		if err != nil {
			return nil, err
		}
		stores = append(stores, st)
	}
	s1 := take()
	c.Store = costOf(s0, s1, k)
	fmt.Fprintf(out, "components: %d Badger stores: %.1f MiB RSS, %.1f MiB Go memory, %.0f goroutines, %.0f fds each\n",
		k, c.Store.RSS/mib, c.Store.GoMemory/mib, c.Store.Goroutines, c.Store.FDs)

	var hosts []host.Host
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	for range k {
		mn, err := envelope.GenerateMnemonic()
		if err != nil {
			return nil, err
		}
		id, err := identity.New(mn)
		if err != nil {
			return nil, err
		}
		h, err := p2p.NewHost(p2p.HostConfig{Identity: id, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	s2 := take()
	c.Host = costOf(s1, s2, k)
	fmt.Fprintf(out, "components: %d idle libp2p hosts: %.1f MiB RSS, %.1f MiB Go memory, %.0f goroutines, %.0f fds each\n",
		k, c.Host.RSS/mib, c.Host.GoMemory/mib, c.Host.Goroutines, c.Host.FDs)

	var errs []error
	for i, h := range hosts {
		var peers []peer.AddrInfo
		for _, o := range hosts[i+1:] {
			peers = append(peers, peer.AddrInfo{ID: o.ID(), Addrs: o.Addrs()})
		}
		if err := p2p.ConnectPeers(ctx, h, peers); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("connecting the mesh: %w", err)
	}
	s3 := take()
	c.Conn = costOf(s2, s3, c.Conns)
	fmt.Fprintf(out, "components: %d connections (full mesh of %d hosts, both ends in this process): %.1f KiB RSS, %.1f KiB Go memory, %.1f goroutines, %.1f fds each\n",
		c.Conns, k, c.Conn.RSS/1024, c.Conn.GoMemory/1024, c.Conn.Goroutines, c.Conn.FDs)
	return c, nil
}
