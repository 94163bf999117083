package sim

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sampleInterval is how often the meter reads memory, goroutines and file
// descriptors: often enough to catch a peak that lasts a second, rarely
// enough to cost nothing next to hundreds of nodes.
const sampleInterval = 500 * time.Millisecond

// Resources are the process's figures over one run.
type Resources struct {
	// PeakRSS is the peak resident set size in bytes: the kernel's VmHWM
	// after a reset at the start of the run (PeakRSSReset says whether the
	// reset worked; if not, the peak may be an earlier run's in the same
	// process).
	PeakRSS      uint64 `json:"peak_rss"`
	PeakRSSReset bool   `json:"peak_rss_reset"`
	// BaseRSS is the resident set size at the start of the run, before the
	// chain and the nodes.
	BaseRSS uint64 `json:"base_rss"`
	// PeakGoMemory is the peak of all memory the Go runtime had mapped
	// (runtime/metrics /memory/classes/total:bytes), sampled.
	PeakGoMemory uint64 `json:"peak_go_memory"`
	// PeakGoroutines and PeakFDs are sampled peaks; FDLimit is the process's
	// open-file limit.
	PeakGoroutines int    `json:"peak_goroutines"`
	PeakFDs        int    `json:"peak_fds"`
	FDLimit        uint64 `json:"fd_limit"`
	// LoadAvg is the machine's mean one-minute load average over the run
	// (/proc/loadavg, sampled): the simulation shares two cores with
	// whatever else runs, and a load above 2 means it did not have them.
	LoadAvg float64 `json:"load_avg"`
	// UserCPU and SystemCPU are the CPU seconds the process used during the
	// run (getrusage).
	UserCPU   float64 `json:"user_cpu_s"`
	SystemCPU float64 `json:"system_cpu_s"`
}

// CPU is user plus system CPU seconds.
func (r Resources) CPU() float64 { return r.UserCPU + r.SystemCPU }

// meter samples the process's resources from start to stop and cancels a
// run whose resident set grows past a limit.
type meter struct {
	start      syscall.Rusage
	res        Resources
	limit      uint64
	onOverflow func(error)

	mu       sync.Mutex
	loadSum  float64
	loadSamp int
	stop     chan struct{}
	done     chan struct{}
}

// startMeter resets the kernel's peak RSS, notes the CPU time so far and
// starts sampling. If maxRSS > 0 and the resident set exceeds it, onOverflow
// is called once with the reason.
func startMeter(maxRSS uint64, onOverflow func(error)) *meter {
	m := &meter{limit: maxRSS, onOverflow: onOverflow, stop: make(chan struct{}), done: make(chan struct{})}
	// "5" resets VmHWM to the current RSS (proc(5), clear_refs).
	m.res.PeakRSSReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	m.res.BaseRSS, _ = procStatus("VmRSS")
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &m.start)
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		m.res.FDLimit = lim.Cur
	}
	go m.loop()
	return m
}

func (m *meter) loop() {
	defer close(m.done)
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/sched/goroutines:goroutines"}}
	overflowed := false
	for {
		metrics.Read(samples)
		m.mu.Lock()
		if samples[0].Value.Kind() == metrics.KindUint64 {
			m.res.PeakGoMemory = max(m.res.PeakGoMemory, samples[0].Value.Uint64())
		}
		if samples[1].Value.Kind() == metrics.KindUint64 {
			m.res.PeakGoroutines = max(m.res.PeakGoroutines, int(samples[1].Value.Uint64()))
		}
		if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
			m.res.PeakFDs = max(m.res.PeakFDs, len(fds))
		}
		if l, err := loadAvg(); err == nil {
			m.loadSum += l
			m.loadSamp++
		}
		m.mu.Unlock()
		if rss, err := procStatus("VmRSS"); err == nil && m.limit > 0 && rss > m.limit && !overflowed {
			overflowed = true
			m.onOverflow(fmt.Errorf("resident memory %d MiB passed the limit of %d MiB", rss>>20, m.limit>>20))
		}
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// finish stops sampling and returns the figures.
func (m *meter) finish() Resources {
	close(m.stop)
	<-m.done
	var end syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &end)
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.res
	r.UserCPU = seconds(end.Utime) - seconds(m.start.Utime)
	r.SystemCPU = seconds(end.Stime) - seconds(m.start.Stime)
	r.PeakRSS, _ = procStatus("VmHWM")
	if m.loadSamp > 0 {
		r.LoadAvg = m.loadSum / float64(m.loadSamp)
	}
	return r
}

func seconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// loadAvg is the one-minute load average.
func loadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f, _, _ := strings.Cut(string(b), " ")
	return strconv.ParseFloat(f, 64)
}

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(field string) (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || name != field {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/self/status %s: %w", field, err)
		}
		return v << 10, nil
	}
	return 0, fmt.Errorf("/proc/self/status has no %s", field)
}

// waitFor calls cond every poll until it returns true, an error, or ctx
// ends.
func waitFor(ctx context.Context, poll time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}
