package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/sim"
)

func init() { commands = append(commands, simCmd) }

func simCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate networks of N nodes through a churn in one process and measure them",
		Long: `Runs, for each N of --nodes, a whole network in one process on 127.0.0.1: an embedded chain and N
nodes with real libp2p hosts and Badger stores (temporary directories). Keygen writes the
shares of vaults of at most --max-vault-members (synthesized tss-lib save data); each owner
commits its copies and pushes them to the holders the chain assigned, who attest; one proof
epoch runs (every custody challenged and proved); and a churn removes a tenth of the nodes
while the chain assigns replacement holders and the owners push to them. Each N runs in a
process of its own.

Per N it records the time to full coverage, to prove every custody in an epoch, to every
vault safe and to restored custody after the churn, chain bytes by transaction type, proofs
per epoch, block times, messages and bytes each node's libp2p streams sent (push, gossip),
the process's peak memory and CPU seconds; it prints a markdown table with least-squares fits
against N and, with --out, writes the table, results.json and one PNG per figure.

Sealing uses a LOW age work factor (--work-factor, 10 by default; production is 18) and the
chain SHORT custody epochs (--epoch-blocks, 30 by default; production is 259200).`,
		Args: cobra.NoArgs,
	}
	var (
		cfg        sim.Config
		nodes      []int
		out        string
		transport  string
		maxRSS     int
		components int
		inProcess  bool
		resultFile string
		fromFile   string
		verbose    bool
		cpuProfile string
		pprofAddr  string
	)
	f := cmd.Flags()
	f.IntSliceVar(&nodes, "nodes", []int{25, 50, 100, 200}, "comma-separated network `SIZES` N to run, each in a process of its own")
	f.StringVar(&out, "out", "", "`DIR` to write table.md, results.json and the plots (PNG) to (default: print the table only)")
	f.IntVar(&cfg.WorkFactor, "work-factor", sim.DefaultWorkFactor, "age scrypt work factor the nodes seal with, log2 N (LOW by default: production is 18)")
	f.IntVar(&cfg.MaxVaultMembers, "max-vault-members", sim.DefaultMaxVaultMembers, "most members of one keygen's vaults")
	f.IntVar(&cfg.Replication, "replication", 3, "replication target r")
	f.StringVar(&transport, "transport", string(sim.TransportBoth), "what nodes listen on: tcp, quic or tcp+quic")
	f.DurationVar(&cfg.BlockInterval, "block-interval", 0, "chain block interval (default: the chain's, 1s)")
	f.DurationVar(&cfg.PollInterval, "poll-interval", 0, "nodes' chain poll interval (default: a node's, 5s)")
	f.DurationVar(&cfg.BatchInterval, "batch-interval", 0, "nodes' attestation batch interval (default: a node's, 2s)")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 0, "nodes' gossip heartbeat interval (default: a node's, 30s)")
	f.IntVar(&cfg.JoinWave, "join-wave", sim.DefaultJoinWave, "nodes that start and join the network at once")
	f.Int64Var(&cfg.EpochBlocks, "epoch-blocks", sim.DefaultEpochBlocks, "custody epoch of the simulated chain, in blocks (SHORT: production is 259200)")
	f.Int64Var(&cfg.ProofWindow, "proof-window", 0, "blocks a challenge may be answered in (default: half the epoch)")
	f.DurationVar(&cfg.PhaseTimeout, "phase-timeout", sim.DefaultPhaseTimeout, "bound on each waiting phase")
	f.DurationVar(&cfg.MeshTimeout, "mesh-timeout", sim.DefaultMeshTimeout, "bound on the wait for each join wave's full mesh (the run goes on without it)")
	f.IntVar(&maxRSS, "max-rss", 20<<10, "stop a size, as failed, when its process's resident memory passes `MIB` mebibytes (0: no limit)")
	f.IntVar(&components, "components", 0, "also measure the memory of K Badger stores, K libp2p hosts and their full mesh, in a process of its own (0: do not)")
	f.BoolVar(&inProcess, "in-process", false, "run every size in this process (peak memory is then the largest so far)")
	f.StringVar(&fromFile, "from-results", "", "`FILE` (results.json of an earlier run) to table and plot instead of running")
	f.BoolVar(&verbose, "verbose", false, "log the nodes' and chain's activity to stderr")
	debug := f.Bool("debug", false, "with --verbose, log at debug level (dial errors, every push)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (with --in-process or one --nodes)")
	f.StringVar(&pprofAddr, "pprof", "", "serve Go's profiles (net/http/pprof: goroutines, heap, CPU) on `HOST:PORT` while the run lasts (with --in-process or one --nodes), to look inside a stalled size")
	f.StringVar(&resultFile, "result", "", "run the one size of --nodes and write its result as JSON to `FILE` (what each size's process does)")
	_ = f.MarkHidden("result")

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		start := time.Now()
		stdout := cmd.OutOrStdout()
		cfg.Transport = sim.Transport(transport)
		cfg.MaxRSS = uint64(maxRSS) << 20
		cfg.Progress = stdout
		var logw io.Writer = io.Discard
		if verbose {
			logw = cmd.ErrOrStderr()
		}
		level := slog.LevelInfo
		if *debug {
			level = slog.LevelDebug
		}
		cfg.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}))

		if pprofAddr != "" {
			stopPprof, err := servePprof(pprofAddr)
			if err != nil {
				return err
			}
			defer stopPprof()
			if !inProcess && resultFile == "" {
				inProcess = true // the profiles are of this process
			}
		}
		if cpuProfile != "" {
			pf, err := os.Create(cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(pf); err != nil {
				return err
			}
			defer func() { pprof.StopCPUProfile(); pf.Close() }()
			if !inProcess && resultFile == "" {
				inProcess = true // the profile is of this process
			}
		}
		if resultFile != "" {
			return simChild(ctx, cfg, nodes, components, resultFile)
		}
		var (
			results []*sim.Result
			comp    *sim.Components
		)
		if fromFile != "" {
			var err error
			if results, err = sim.ReadResults(fromFile); err != nil {
				return err
			}
		} else {
			for _, n := range nodes {
				c := cfg
				c.Nodes = n
				if err := c.Validate(); err != nil {
					return fmt.Errorf("--nodes %d: %w", n, err)
				}
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			tmp, err := os.MkdirTemp("", "ksb-sim-results-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			if components > 0 {
				path := filepath.Join(tmp, "components.json")
				child := exec.CommandContext(ctx, exe, "sim", "--components", strconv.Itoa(components), "--result", path)
				child.Stdout, child.Stderr = stdout, cmd.ErrOrStderr()
				if err := child.Run(); err != nil {
					return fmt.Errorf("measuring components: %w", err)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				comp = &sim.Components{}
				if err := json.Unmarshal(b, comp); err != nil {
					return err
				}
			}
			for _, n := range nodes {
				c := cfg
				c.Nodes = n
				var res *sim.Result
				if inProcess {
					res, err = sim.Run(ctx, c)
					if res == nil {
						return err
					}
				} else {
					path := filepath.Join(tmp, fmt.Sprintf("n%d.json", n))
					child := exec.CommandContext(ctx, exe, simChildArgs(c, path, verbose)...)
					child.Stdout, child.Stderr = stdout, cmd.ErrOrStderr()
					// Interrupted: the child stops its nodes and removes its
					// directory, as on SIGTERM, before it is killed.
					child.Cancel = func() error { return child.Process.Signal(syscall.SIGTERM) }
					child.WaitDelay = simChildStopDelay
					if res, err = sim.RunProcess(ctx, child, n, path); err != nil {
						return err
					}
				}
				results = append(results, res)
				if res.Error != "" {
					fmt.Fprintf(stdout, "[N=%d] stopped: %s\n", n, res.Error)
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		fmt.Fprintln(stdout)
		if err := sim.WriteTable(stdout, results); err != nil {
			return err
		}
		if comp != nil {
			fmt.Fprintf(stdout, "\nMemory per component (%d of each in one process): Badger store %.1f MiB RSS (%.1f MiB Go memory, %.0f goroutines); idle libp2p host %.1f MiB (%.0f goroutines); one connection, both ends, %.1f KiB (%.1f goroutines, %.1f fds)\n",
				comp.K, comp.Store.RSS/(1<<20), comp.Store.GoMemory/(1<<20), comp.Store.Goroutines, comp.Host.RSS/(1<<20), comp.Host.Goroutines,
				comp.Conn.RSS/1024, comp.Conn.Goroutines, comp.Conn.FDs)
		}
		took := time.Since(start).Round(time.Second)
		if out != "" {
			if err := writeSimOut(out, results, comp, took); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "\nwrote %s (table.md, results.json, plots)\n", out)
		}
		fmt.Fprintf(stdout, "ksb sim: took %v\n", took)
		for _, r := range results {
			if r.Error != "" {
				return exitStatus{err: fmt.Errorf("%d of %d sizes stopped early (see the table)", countFailed(results), len(results)), code: 1}
			}
		}
		return nil
	}
	return cmd
}

// simChildStopDelay bounds how long an interrupted size's process has to
// stop its nodes (each within a minute, in parallel) and clean up.
const simChildStopDelay = 90 * time.Second

func countFailed(rs []*sim.Result) int {
	n := 0
	for _, r := range rs {
		if r.Error != "" {
			n++
		}
	}
	return n
}

// simChildArgs are the arguments of the process that runs size c.Nodes.
func simChildArgs(c sim.Config, result string, verbose bool) []string {
	args := []string{"sim", "--result", result,
		"--nodes", strconv.Itoa(c.Nodes),
		"--work-factor", strconv.Itoa(c.WorkFactor),
		"--max-vault-members", strconv.Itoa(c.MaxVaultMembers),
		"--replication", strconv.Itoa(c.Replication),
		"--transport", string(c.Transport),
		"--block-interval", c.BlockInterval.String(),
		"--poll-interval", c.PollInterval.String(),
		"--batch-interval", c.BatchInterval.String(),
		"--heartbeat-interval", c.HeartbeatInterval.String(),
		"--phase-timeout", c.PhaseTimeout.String(),
		"--mesh-timeout", c.MeshTimeout.String(),
		"--join-wave", strconv.Itoa(c.JoinWave),
		"--epoch-blocks", strconv.FormatInt(c.EpochBlocks, 10),
		"--proof-window", strconv.FormatInt(c.ProofWindow, 10),
		"--max-rss", strconv.FormatUint(c.MaxRSS>>20, 10),
	}
	if verbose {
		args = append(args, "--verbose")
	}
	return args
}

// simChild is the process of one size (or of the component measurement).
func simChild(ctx context.Context, cfg sim.Config, nodes []int, components int, resultFile string) error {
	if components > 0 {
		c, err := sim.MeasureComponents(ctx, components, cfg.Progress)
		if err != nil {
			return err
		}
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return os.WriteFile(resultFile, b, 0o600)
	}
	if len(nodes) != 1 {
		return errors.New("--result runs exactly one size: give one --nodes")
	}
	cfg.Nodes = nodes[0]
	res, err := sim.Run(ctx, cfg)
	if res == nil {
		return err
	}
	return sim.WriteResult(resultFile, res)
}

// writeSimOut writes table.md, results.json and the plots into dir.
func writeSimOut(dir string, results []*sim.Result, comp *sim.Components, took time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	if comp != nil {
		if b, err = json.MarshalIndent(comp, "", "  "); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "components.json"), b, 0o644); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, "table.md"))
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "`ksb sim` results (this run took %v). See docs/performance.md, \"Churn simulation\".\n\n", took)
	if err := sim.WriteTable(f, results); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = sim.Plot(dir, results)
	return err
}

// servePprof serves net/http/pprof's handlers on addr until the returned
// function is called.
func servePprof(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}
