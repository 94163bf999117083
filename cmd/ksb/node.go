package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/node"
)

func init() { commands = append(commands, nodeCmd, statusCmd) }

// statusTimeout bounds `ksb status`'s request to the node's admin endpoint,
// which itself bounds its chain queries.
const statusTimeout = 45 * time.Second

func nodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node --home H",
		Short: "Run the ksb daemon: back up this node's keyshares and hold other nodes' backups",
		Long: `Runs the daemon of the node whose home is H: it reads H/config.toml and the mnemonic
(--mnemonic-file, else $KSB_MNEMONIC, else the file named by the config, H/mnemonic by default),
watches the keyshare directory, pushes sealed shares to holders, holds and attests other
nodes' shares, and serves /healthz, /status and /metrics on the admin address.
It stops cleanly on SIGINT or SIGTERM.

A mnemonic file that its group or other users can read or write is refused, as ssh refuses
such a private key: chmod 600 it (or pass --allow-insecure-mnemonic-file to run anyway).
Make a home with ksb init.`,
		Args: cobra.NoArgs,
	}
	home := cmd.Flags().String("home", "", "node home `DIR` (holds config.toml; make one with ksb init)")
	mfile := cmd.Flags().String("mnemonic-file", "", "mnemonic `FILE`, - for standard input (overrides $KSB_MNEMONIC and the config)")
	insecure := cmd.Flags().Bool("allow-insecure-mnemonic-file", false, "run even if the mnemonic file can be read or written by its group or others (warns)")
	cmd.MarkFlagRequired("home")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := config.Load(filepath.Join(*home, config.FileName))
		if err != nil {
			return err
		}
		onInsecure := func(e *identity.InsecureFileError) error {
			return fmt.Errorf("%w\n(ksb node refuses it, as ssh refuses a private key others can read; --allow-insecure-mnemonic-file runs anyway)", e)
		}
		if *insecure {
			onInsecure = warnInsecure(cmd)
		}
		m, err := nodeMnemonic(*home, cfg, *mfile, onInsecure)
		if err != nil {
			return err
		}
		if err := envelope.CheckMnemonic(m); err != nil {
			return fmt.Errorf("this mnemonic cannot seal backups: %w", err)
		}
		log, err := newLogger(cmd.ErrOrStderr(), cfg.Log)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		go func() {
			<-ctx.Done()
			stop() // a second signal kills the process during a slow shutdown
		}()
		now, err := testClock()
		if err != nil {
			return err
		}
		n, err := node.New(ctx, node.Options{Home: *home, Config: cfg, Mnemonic: m, Logger: log, Clock: now})
		if err != nil {
			return err
		}
		return n.Run(ctx)
	}
	return cmd
}

// nodeMnemonic finds the node's mnemonic: --mnemonic-file, else
// $KSB_MNEMONIC, else the config's mnemonic file in the home. onInsecure
// decides about a file others can read (see identity.Source).
func nodeMnemonic(home string, cfg config.Node, file string, onInsecure func(*identity.InsecureFileError) error) (string, error) {
	if file == "" && os.Getenv(identity.EnvVar) == "" {
		file = config.Path(home, cfg.Mnemonic)
	}
	return identity.Read(identity.Source{File: file, OnInsecureFile: onInsecure})
}

func newLogger(w io.Writer, c config.Log) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level %q: %w", c.Level, err)
	}
	o := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o)), nil
	}
	return slog.New(slog.NewJSONHandler(w, o)), nil
}

func statusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status --home H",
		Short: "Show a running node's shares with their commitments and custodies, and the copies it holds",
		Long: `Asks the running node of home H, at the admin address of H/config.toml, for its status: the
keyshare directory it watches (and how many *.json files are in it); each of its own shares with its
commitment on chain and, per custody, the holder the chain assigned, its status (pending, fresh,
stale, failed), whether it attested, its last proof height and the holder's receipt; each copy it
holds for other nodes with its custody's status and last proof; the custody epoch and this node's
open challenges; and what is queued for the chain.`,
		Args: cobra.NoArgs,
	}
	home := cmd.Flags().String("home", "", "node home `DIR` (holds config.toml)")
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	cmd.MarkFlagRequired("home")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := config.Load(filepath.Join(*home, config.FileName))
		if err != nil {
			return err
		}
		if cfg.Admin.Listen == "" {
			return errors.New("admin.listen is empty in the config: the node serves no status")
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), statusTimeout)
		defer cancel()
		st, raw, err := fetchStatus(ctx, cfg.Admin.Listen)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if *asJSON {
			_, err := w.Write(raw)
			return err
		}
		printStatus(w, st)
		return nil
	}
	return cmd
}

func fetchStatus(ctx context.Context, addr string) (*node.Status, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("node not reachable at %s (is `ksb node` running?): %w", addr, err)
	}
	defer resp.Body.Close()
	// A status of thousands of held blobs is a few hundred KB.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("node status: %s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	var st node.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, nil, fmt.Errorf("node status: %w", err)
	}
	return &st, raw, nil
}

// clockLine words the node's clock offset for `ksb status`.
func clockLine(c node.ClockStatus) string {
	if c.OffsetSeconds == nil {
		return "offset not measured yet"
	}
	if !c.OK {
		return "OFF: " + c.Error
	}
	return fmt.Sprintf("%+.1fs from the %s (within ±%gs)", *c.OffsetSeconds, c.Against, c.ToleranceSeconds)
}

func printStatus(w io.Writer, st *node.Status) {
	fmt.Fprintf(w, "node      %s\npeer id   %s\n", st.Address, st.PeerID)
	chain := "reachable"
	if !st.Chain.Reachable {
		chain = "UNREACHABLE: " + st.Chain.Error
	}
	fmt.Fprintf(w, "chain     %s (%s)\n", st.Chain.RPC, chain)
	fmt.Fprintf(w, "clock     %s\n", clockLine(st.Clock))
	if st.Chain.Reachable {
		fmt.Fprintf(w, "epoch     %d, %d open challenge(s) of this node\n", st.Epoch, st.OpenChallenges)
	}
	if st.Active {
		fmt.Fprintf(w, "role      active node, member of %d live vault(s)\n", len(st.MemberOf))
	} else {
		fmt.Fprintf(w, "role      NOT AN ACTIVE NODE: the chain's active set does not list %s; nothing is committed, pushed or held\n", st.Address)
	}
	keyshares := fmt.Sprintf("%d *.json file(s)", st.Keyshares.Files)
	if st.Keyshares.Error != "" {
		keyshares = "UNREADABLE: " + st.Keyshares.Error
	}
	fmt.Fprintf(w, "keyshares %s (%s)\n", st.Keyshares.Dir, keyshares)
	if o := st.OtherInstance; o != nil {
		fmt.Fprintf(w, "instance  ANOTHER LIVE INSTANCE of this identity answers at %s (since %s): releasing nothing it holds; stop one of the two\n",
			o.Addr, o.Since.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "MY SHARES\tKIND\tCOPY SIZE\tCOMMITMENT\tCOUNTED\tLAST DRILL\n")
	for _, s := range st.Shares {
		commit := "not committed yet"
		if s.Commitment != 0 {
			commit = fmt.Sprintf("%d at %d", s.Commitment, s.CommitHeight)
			if !s.Live {
				commit += " (superseded or retired)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s/%s\t%d\t%s\t%d/%d\t%s\n", s.Vault, s.Kind, s.Algorithm, s.Size, commit, s.Counted, s.Copies,
			drillString(s.LastDrillHeight, s.LastDrillOK))
		if s.Problem != "" {
			fmt.Fprintf(tw, "  ! %s\n", s.Problem)
		}
		for _, c := range s.Custodies {
			proof := "never proven"
			if c.LastProofHeight != 0 {
				proof = fmt.Sprintf("proven at %d", c.LastProofHeight)
			}
			att := "not attested"
			if c.Attested {
				att = "attested"
			}
			status := c.Status
			if c.FailReason != "" {
				status += " (" + c.FailReason + ")"
			}
			receipt := "no receipt"
			if !c.ReceiptTime.IsZero() {
				receipt = "receipt " + c.ReceiptTime.Format(time.RFC3339)
			}
			drill := ""
			if c.LastDrillHeight != 0 {
				drill = drillString(c.LastDrillHeight, c.LastDrillOK)
			}
			fmt.Fprintf(tw, "  slot %d copy %d  %s\t%s\t%s, %s\t%s\t\t%s\n", c.Slot, c.CopyIndex, c.Holder, status, att, proof, receipt, drill)
		}
	}
	fmt.Fprintf(tw, "\nHELD FOR\tCUSTODY\tVAULT\tSIZE\tSTATUS\n")
	for _, h := range st.Held {
		status := h.Status
		switch {
		case status == "":
			status = "not on chain"
		case h.LastProof != 0:
			status += fmt.Sprintf(", proven at %d", h.LastProof)
		}
		if h.Status != "" && !h.Attested {
			status += ", not attested"
		}
		fmt.Fprintf(tw, "%s\t%s copy %d\t%s\t%d\t%s\n", h.Owner, h.Custody, h.CopyIndex, h.Vault, h.Size, status)
	}
	tw.Flush()
	fmt.Fprintf(w, "\npending attestations %d, releases %d\n", st.PendingAttestations, st.PendingReleases)
}

// drillString says how the last restore drill went: "none yet", "ok at H"
// or "FAILED at H".
func drillString(height int64, ok bool) string {
	switch {
	case height == 0:
		return "none yet"
	case ok:
		return fmt.Sprintf("ok at %d", height)
	default:
		return fmt.Sprintf("FAILED at %d", height)
	}
}
