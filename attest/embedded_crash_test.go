package attest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
)

// TestEmbeddedRestartsAfterEmptyLogs is issue 14.2 for the chain: a
// validator killed while Badger created a log file of the application state
// leaves it empty, and Badger v4.9.6 then refuses to open the state
// ("Create a new file", dgraph-io/badger#2207). The validator must start by
// itself, with its state.
func TestEmbeddedRestartsAfterEmptyLogs(t *testing.T) {
	home := t.TempDir()
	e := startEmbedded(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := attest.NewClient(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attest.NewSender(c, testIDs[1]).Send(ctx, update(1)); err != nil {
		t.Fatal(err)
	}
	h1, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(home, "data", "ksb-app")
	for _, name := range []string{"99998.mem", "999998.vlog"} {
		if err := os.WriteFile(filepath.Join(state, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e2 := startEmbedded(t, home)
	c2, _ := attest.NewClient(e2.RPCURL())
	waitHeight(t, ctx, c2, h1+1)
	nodes, err := c2.Nodes(ctx)
	if err != nil || !slices.ContainsFunc(nodes, func(n attest.Node) bool {
		return n.Address == addr(1) && slices.Equal(n.Multiaddrs, update(1).Multiaddrs)
	}) {
		t.Fatalf("nodes after restart = %+v, %v; want node 1's update committed before", nodes, err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (log handlers).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStopWithQueriesInFlight is issue 14.5: stopping the validator (SIGTERM
// of `ksb chain start`) while RPC queries are being answered must not log a
// recovered "panic in RPC HTTP handler … pebble: closed": the RPC server has
// to stop, and its handlers to finish, before the stores close.
func TestStopWithQueriesInFlight(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{
		Home: t.TempDir(), ChainID: testChainID, Genesis: testGenesis(), BlockInterval: testBlockInterval, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	c, _ := attest.NewClient(e.RPCURL())
	res, err := attest.NewSender(c, testIDs[1]).Send(ctx, update(1))
	if err != nil {
		t.Fatal(err)
	}

	// Queries that read each store: the transaction index, the block
	// store, the state store and the application's state.
	paths := []string{
		"/tx?hash=0x" + res.Hash,
		fmt.Sprintf("/block?height=%d", res.Height),
		fmt.Sprintf("/block_results?height=%d", res.Height),
		"/validators",
		"/abci_query?path=" + url.QueryEscape(`"/coverage"`),
		"/status",
	}
	const clients = 6
	var (
		wg       sync.WaitGroup
		answered atomic.Int64
		stop     = make(chan struct{})
		warm     = make(chan struct{})
		warmOnce sync.Once
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One keep-alive connection per client, as a node's chain
			// client has: its requests keep coming after the listener
			// closes.
			hc := &http.Client{Timeout: 10 * time.Second}
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := hc.Get(e.RPCURL() + paths[n%len(paths)])
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if answered.Add(1) == 10*clients {
					warmOnce.Do(func() { close(warm) })
				}
			}
		}()
	}
	select {
	case <-warm:
	case <-ctx.Done():
		t.Fatal("queries never answered")
	}
	if err := e.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	close(stop)
	wg.Wait()
	if l := logs.String(); strings.Contains(strings.ToLower(l), "panic") {
		var lines []string
		for _, line := range strings.Split(l, "\n") {
			if strings.Contains(strings.ToLower(line), "panic") && len(lines) < 3 {
				lines = append(lines, line[:min(len(line), 300)])
			}
		}
		t.Fatalf("stopping with %d queries answered logged %d panics, the first:\n%s", answered.Load(),
			strings.Count(strings.ToLower(l), "panic in rpc"), strings.Join(lines, "\n"))
	}
	t.Logf("%d queries answered; stop logged no panic", answered.Load())
}
