package p2p_test

import (
	"context"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// benchBlobSize is the size of the 20-party tss-lib ECDSA fixture.
const benchBlobSize = 60 << 10

// benchQuota lets the benchmark owner keep every copy it pushes: each push
// is a new custody.
var benchQuota = p2p.WithQuota(1<<20, 1<<40)

// BenchmarkIngest measures a holder ingesting 60 KB copies over
// /ksb/push/2.0.0 (header, custody check against the chain view, copy,
// Merkle root check against the commitment, quota check, Badger write
// synced to disk, signed receipt), next to a raw libp2p stream copy of the same bytes
// between the same two hosts with the same round trip (one stream per blob,
// one byte back), and next to the push with an in-memory store (no disk, no
// fsync) to show what durability costs. One push at a time, as an owner
// pushes.
func BenchmarkIngest(b *testing.B) {
	for _, tr := range []string{"/tcp/", "/quic-v1"} {
		b.Run(strings.Trim(tr, "/"), func(b *testing.B) { benchIngest(b, tr) })
	}
}

func benchIngest(b *testing.B, transport string) {
	var o *owner
	side("owner", func() { o = newOwner(b) })
	data := blob(benchBlobSize, 42)

	m := newMembers(o.id)
	b.Run("raw-stream", func(b *testing.B) {
		var hd *holder
		side("holder", func() { hd = newHolder(b, m) })
		const proto = protocol.ID("/ksb/bench-raw/1.0.0")
		hd.h.SetStreamHandler(proto, func(s network.Stream) {
			buf := make([]byte, benchBlobSize)
			if _, err := io.ReadFull(s, buf); err != nil {
				s.Reset()
				return
			}
			s.Write([]byte{1})
			s.Close()
		})
		side("owner", func() { connectOver(b, o.h, hd.h, transport) })
		b.SetBytes(benchBlobSize)
		b.ResetTimer()
		cpu := cpuTime(b)
		side("owner", func() {
			for i := 0; i < b.N; i++ {
				s, err := o.h.NewStream(context.Background(), hd.h.ID(), proto)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Write(data); err != nil {
					b.Fatal(err)
				}
				s.CloseWrite()
				var ack [1]byte
				if _, err := io.ReadFull(s, ack[:]); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "copies/s")
		reportCPU(b, cpu)
	})

	push := func(b *testing.B, hd *holder) {
		side("owner", func() { connectOver(b, o.h, hd.h, transport) })
		tmpl := newBenchShare(b, m, o.id, 42)
		b.SetBytes(benchBlobSize)
		b.ResetTimer()
		cpu := cpuTime(b)
		side("owner", func() {
			for i := 0; i < b.N; i++ {
				// A new commitment every time: every push is a real write.
				c := tmpl.recommit(hd)
				if _, err := p2p.Push(context.Background(), o.h, hd.h.ID(), o.id, c); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
		reportCPU(b, cpu)
	}
	b.Run("push-badger-fsync", func(b *testing.B) {
		var hd *holder
		side("holder", func() { hd = newHolder(b, m, benchQuota) })
		push(b, hd)
	})
	b.Run("push-badger-inmemory", func(b *testing.B) {
		var hd *holder
		side("holder", func() {
			id := newIdentity(b)
			st, err := store.Open(store.DefaultOptions("").WithInMemory(true).WithLogger(quietLogger()))
			if err != nil {
				b.Fatal(err)
			}
			h := newHost(b, id)
			svc, err := p2p.NewService(h, id, st, m, p2p.WithLogger(quietLogger()), benchQuota)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { svc.Close(); st.Close() })
			hd = &holder{id: id, h: h, st: st, svc: svc}
		})
		push(b, hd)
	})
}

// BenchmarkIngestParallel is BenchmarkIngest with benchOwners owners pushing
// to one holder at once, as during a churn, next to the same number of
// concurrent raw stream copies.
func BenchmarkIngestParallel(b *testing.B) {
	for _, tr := range []string{"/tcp/", "/quic-v1"} {
		b.Run(strings.Trim(tr, "/"), func(b *testing.B) { benchIngestParallel(b, tr) })
	}
}

func benchIngestParallel(b *testing.B, transport string) {
	const benchOwners = 8
	owners := make([]*owner, benchOwners)
	m := newMembers()
	for i := range owners {
		side("owner", func() { owners[i] = newOwner(b) })
		m.add(owners[i].id)
	}
	// Each owner sends one 60 KB copy of its own, prepared before the
	// clock starts: the timed loop is the transfer (and, for the push,
	// the protocol), not the making of test data.
	shares := make([]*benchShare, benchOwners)
	for i, o := range owners {
		shares[i] = newBenchShare(b, m, o.id, byte(i))
	}
	run := func(b *testing.B, hd *holder, one func(o *owner, sh *benchShare) error) {
		side("owner", func() {
			for _, o := range owners {
				connectOver(b, o.h, hd.h, transport)
			}
		})
		var next atomic.Int64
		b.SetBytes(benchBlobSize)
		b.SetParallelism(max(1, benchOwners/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		cpu := cpuTime(b)
		b.RunParallel(func(pb *testing.PB) {
			k := int(next.Add(1)-1) % benchOwners
			o, sh := owners[k], shares[k]
			side("owner", func() {
				for pb.Next() {
					if err := one(o, sh); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "blobs/s")
		reportCPU(b, cpu)
	}
	b.Run("raw-stream", func(b *testing.B) {
		var hd *holder
		side("holder", func() { hd = newHolder(b, m) })
		const proto = protocol.ID("/ksb/bench-raw/1.0.0")
		hd.h.SetStreamHandler(proto, func(s network.Stream) {
			buf := make([]byte, benchBlobSize)
			if _, err := io.ReadFull(s, buf); err != nil {
				s.Reset()
				return
			}
			s.Write([]byte{1})
			s.Close()
		})
		run(b, hd, func(o *owner, sh *benchShare) error {
			s, err := o.h.NewStream(context.Background(), hd.h.ID(), proto)
			if err != nil {
				return err
			}
			defer s.Close()
			if _, err := s.Write(sh.copy.Blob); err != nil {
				return err
			}
			s.CloseWrite()
			var ack [1]byte
			_, err = io.ReadFull(s, ack[:])
			return err
		})
	})
	b.Run("push-badger-fsync", func(b *testing.B) {
		var hd *holder
		side("holder", func() { hd = newHolder(b, m, benchQuota) })
		run(b, hd, func(o *owner, sh *benchShare) error {
			// A new commitment every time (a map insert in the fake
			// chain): every push is a real write.
			_, err := p2p.Push(context.Background(), o.h, hd.h.ID(), o.id, sh.recommit(hd))
			return err
		})
	})
}

// BenchmarkIngestFloor measures, for the same run as BenchmarkIngest, what
// a durable signed receipt costs at least on this machine: a bare write of
// a 60 KB blob and fsync to a file in a temporary directory on the disk
// the holders' stores use (the disk's fsync rate, the physical limit of
// acknowledging one push at a time), and one receipt signature. A serial
// push can at best take a raw round trip plus these two.
func BenchmarkIngestFloor(b *testing.B) {
	b.Run("fsync-60KB", func(b *testing.B) {
		f, err := os.CreateTemp(b.TempDir(), "fsync")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		data := blob(benchBlobSize, 7)
		b.SetBytes(benchBlobSize)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := f.WriteAt(data, int64(i%64)*benchBlobSize); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
	})
	b.Run("sign-receipt", func(b *testing.B) {
		id := newIdentity(b)
		msg := make([]byte, 200) // a receipt's signed message is about this size
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			msg[0] = byte(i)
			id.Sign(msg)
		}
	})
}

// side runs f with the pprof label side=name, which every goroutine f
// starts inherits (a host's connection and stream handlers, a store's
// committer, Badger's): a CPU profile of a benchmark then splits into the
// owners' work and the holder's (go tool pprof -tagfocus side=holder). GC
// and runtime work is unlabelled.
func side(name string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("side", name), func(context.Context) { f() })
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time used since start per operation, in core
// milliseconds, owners and holder together (the whole process: these
// benchmarks run both sides in it, on the same cores).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Millisecond)/float64(b.N), "core-ms/op")
}

// benchShare is one owner's 60 KB copy and its commitment, computed once;
// recommit registers it in the fake chain as a new commitment (a new
// custody) for a holder, as if the owner had sealed and committed a new
// share version of the same bytes, so that a benchmark's timed loop pushes
// new custodies without hashing test data. The copy carries its root, as
// an owner's push does (node/owner.go).
type benchShare struct {
	m     *members
	owner *identity.Identity
	cm    custody.Commitment
	copy  p2p.Copy
}

func newBenchShare(b *testing.B, m *members, o *identity.Identity, seed byte) *benchShare {
	b.Helper()
	data := blob(benchBlobSize, seed)
	cm, err := custody.NewCommitment([][]byte{data})
	if err != nil {
		b.Fatal(err)
	}
	path, err := custody.CommitPath(cm.CopyRoots, 0)
	if err != nil {
		b.Fatal(err)
	}
	return &benchShare{m: m, owner: o, cm: cm, copy: p2p.Copy{
		CommitPath: path, Owner: o.PubKey(), Blob: data, CopyRoot: cm.CopyRoots[0],
	}}
}

func (sh *benchShare) recommit(hd *holder) p2p.Copy {
	m := sh.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	id := custody.CustodyID{Commitment: m.next}
	m.custodies[id] = p2p.Custody{
		ID: id, Holder: hd.id.Address(identity.DefaultHRP), Owner: sh.owner.Address(identity.DefaultHRP),
		Vault: vaultA, Size: sh.cm.Size, Root: sh.cm.Root, Copies: 1, Live: true,
	}
	c := sh.copy
	c.Custody = id
	return c
}
