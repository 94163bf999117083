package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/internal/safefile"
)

func init() { commands = append(commands, homeInitCmd) }

// Modes of what `ksb init` creates: the home holds the mnemonic and the
// store of other nodes' backups, so only the node's user may enter it.
const (
	homeMode   fs.FileMode = 0o700
	configMode fs.FileMode = 0o600
)

func homeInitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init --home H",
		Short: "Create a node home: a documented config.toml and the data and keyshare directories",
		Long: `Creates the home H of a production node: H (mode 0700), H/config.toml (mode 0600) with every
setting, its default and its meaning as comments, the store directory and the keyshare directory
(mode 0700, unless they exist already), then says what to do next. The flags set the settings
every node must choose; edit config.toml for the others. It never overwrites: if H/config.toml
exists, it stops and changes nothing. It does not create a mnemonic: the node's identity is the
mnemonic it already has.`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	home := f.String("home", "", "node home `DIR` to create (required)")
	rpc := f.String("chain-rpc", "", "CometBFT RPC `URL` of the ksb chain, http://HOST:PORT (default "+config.Default().Chain.RPC+")")
	listen := f.StringArray("listen", nil, "libp2p listen `MULTIADDR`, repeatable (default "+strings.Join(config.Default().P2P.Listen, " and ")+")")
	keyshares := f.String("keyshares-dir", "", "`DIR` keygen writes localstate-<vault>.json to (default H/"+config.Default().Backup.KeysharesDir+")")
	hrp := f.String("hrp", "", "bech32 `PREFIX` of node addresses (default "+config.Default().HRP+")")
	admin := f.String("admin-listen", "", "`HOST:PORT` of /healthz, /status and /metrics (default "+config.Default().Admin.Listen+")")
	_ = cmd.MarkFlagRequired("home")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *home == "" {
			return errors.New("--home is empty")
		}
		cfg := config.Default()
		if f.Changed("chain-rpc") {
			cfg.Chain.RPC = *rpc
		}
		if f.Changed("listen") {
			cfg.P2P.Listen = *listen
		}
		if f.Changed("keyshares-dir") {
			cfg.Backup.KeysharesDir = *keyshares
		}
		if f.Changed("hrp") {
			cfg.HRP = *hrp
		}
		if f.Changed("admin-listen") {
			cfg.Admin.Listen = *admin
		}
		// Everything is checked before anything is created.
		if err := cfg.Validate(); err != nil {
			return err
		}
		doc, err := config.Documented(cfg)
		if err != nil {
			return err
		}
		path := filepath.Join(*home, config.FileName)
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s exists: ksb init never overwrites a configuration; edit it, or move it away first", path)
		}
		homeExisted := exists(*home)
		if err := os.MkdirAll(*home, homeMode); err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if fi, err := os.Stat(*home); err == nil && fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "ksb: warning: %s has mode %04o: other users can enter it; chmod 700 %s\n", *home, fi.Mode().Perm(), *home)
		}
		var made []string
		for _, d := range []string{config.Path(*home, cfg.Store.Dir), config.Path(*home, cfg.Backup.KeysharesDir)} {
			if exists(d) {
				continue
			}
			if err := os.MkdirAll(d, homeMode); err != nil {
				return err
			}
			made = append(made, d)
		}
		if err := safefile.Write(path, doc, configMode, false); err != nil {
			return err
		}
		printNextSteps(w, *home, homeExisted, path, cfg, made)
		return nil
	}
	return cmd
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// printNextSteps says what was created and what the operator does next.
func printNextSteps(w io.Writer, home string, homeExisted bool, path string, cfg config.Node, made []string) {
	verb := "created"
	if homeExisted {
		verb = "initialised"
	}
	mnemonic := config.Path(home, cfg.Mnemonic)
	fmt.Fprintf(w, "%s %s (mode 0700):\n", verb, home)
	fmt.Fprintf(w, "  %s  (mode 0600) every setting with its default and meaning; chain.rpc = %s\n", path, cfg.Chain.RPC)
	for _, d := range made {
		fmt.Fprintf(w, "  %s/  (mode 0700)\n", d)
	}
	fmt.Fprintf(w, `
Next:
  1. Put this node's 24-word mnemonic in %[1]s, readable by you only
     (ksb node refuses a mnemonic file its group or others can read):
       (umask 077; cat > %[1]s)        # type or paste the words, then Ctrl-D
       chmod 600 %[1]s
  2. Check it gives this node's address (the chain must list it as an active node):
       ksb keys show --mnemonic-file %[1]s
  3. Make keygen write its localstate-<vault>.json files to %[2]s,
     or set backup.keyshares_dir in %[3]s to where it writes them.
  4. Start the daemon, then check it:
       ksb node --home %[4]s
       ksb status --home %[4]s
`, mnemonic, config.Path(home, cfg.Backup.KeysharesDir), path, home)
}
