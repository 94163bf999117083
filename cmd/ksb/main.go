// Command ksb backs up threshold-signature keyshares: it seals them with the
// node's mnemonic, pushes them to other nodes over libp2p, records custody on a
// CometBFT chain, and recovers them from the mnemonic alone.
//
// Subcommands only parse flags and call the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/identity"
)

// commands is filled by each command file's init, so every subcommand lives
// in its own file.
var commands []func() *cobra.Command

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "ksb",
		Short: "Keyshare backups: seal, push, attest and recover TSS keyshares",
		Long: `ksb makes sure a validator network's threshold-signature keyshares are never lost: each node seals
its shares with its 24-word mnemonic, pushes them to other active nodes, which hold them and attest
it on a chain, and recovers them from the mnemonic alone.

A node operator starts with
  ksb init --home H        a documented config.toml and the node's directories
  ksb node --home H        the daemon
  ksb status --home H      what it backed up, and where
  ksb coverage             whether every vault can be recovered (exit status for monitoring)
  ksb recover --out DIR    the shares back, from the mnemonic alone
The mnemonic is never an argument: --mnemonic-file FILE, --mnemonic-file - (standard input),
$KSB_MNEMONIC, or a prompt. docs/operations.md walks through all of it.`,
		Version:       versionText(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}")
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

func main() {
	if n := mnemonicArgs(os.Args[1:]); n > 0 {
		fmt.Fprint(os.Stderr, mnemonicArgsMessage(n))
		os.Exit(1)
	}
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ksb:", err)
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// exitCoder lets a command choose its exit status (default 1).
type exitCoder interface{ ExitCode() int }

// exitStatus is an error with the exit status it ends the command with.
type exitStatus struct {
	err  error
	code int
}

func (e exitStatus) Error() string { return e.err.Error() }
func (e exitStatus) Unwrap() error { return e.err }
func (e exitStatus) ExitCode() int { return e.code }

// exitInterrupted is the exit status of a command stopped by SIGINT or
// SIGTERM: 128 + SIGINT, what shells report for a process Ctrl-C ended.
const exitInterrupted = 130

// mnemonicFlag adds --mnemonic-file to cmd and returns a loader that reads the
// mnemonic from that file (or standard input for "-"), KSB_MNEMONIC, or a
// no-echo terminal prompt, in that order; a file its group or others can read
// is read with a warning. The mnemonic is never accepted as an argument.
func mnemonicFlag(cmd *cobra.Command) func() (string, error) {
	var file string
	cmd.Flags().StringVar(&file, "mnemonic-file", "", "`FILE` holding the 24-word mnemonic, - for standard input (else $"+identity.EnvVar+", else a terminal prompt)")
	return func() (string, error) {
		return identity.Read(identity.Source{File: file, Prompt: true, OnInsecureFile: warnInsecure(cmd)})
	}
}

// warnInsecure accepts a mnemonic file others can read, with a warning on
// the command's stderr (`ksb node` refuses instead; see nodeMnemonic).
func warnInsecure(cmd *cobra.Command) func(*identity.InsecureFileError) error {
	return func(e *identity.InsecureFileError) error {
		fmt.Fprintf(cmd.ErrOrStderr(), "ksb: warning: %v\n", e)
		return nil
	}
}

// mnemonicArgs counts the arguments in args that look like mnemonic words,
// when they are a mnemonic typed on the command line: two or more BIP39
// words (or four-letter abbreviations) among the positional arguments of
// the command they name, or any such word where the command takes none
// (cobra would echo it as an unknown command). Help and shell completion,
// which take command names, are left alone. It returns 0 otherwise.
func mnemonicArgs(args []string) int {
	probe := newRoot() // parsing flags changes them: not the root that runs
	probe.InitDefaultHelpCmd()
	probe.InitDefaultCompletionCmd()
	cmd, rest, err := probe.Find(args)
	if cmd == nil {
		cmd, rest = probe, args
	}
	if name := cmd.Name(); name == "help" || name == "completion" || strings.HasPrefix(name, "__complete") {
		return 0
	}
	positional := rest
	if cmd.ParseFlags(rest) == nil {
		positional = cmd.Flags().Args()
	} else {
		positional = nil
		for _, a := range rest {
			if !strings.HasPrefix(a, "-") {
				positional = append(positional, a)
			}
		}
	}
	words := 0
	for _, a := range positional {
		if identity.IsWord(a) {
			words++
		}
	}
	refused := err != nil || cmd.ValidateArgs(positional) != nil || (cmd.HasSubCommands() && !cmd.Runnable() && len(positional) > 0)
	if words >= 2 || (words > 0 && refused) {
		return words
	}
	return 0
}

// mnemonicArgsMessage is the refusal of a mnemonic on the command line. It
// quotes none of the words.
func mnemonicArgsMessage(words int) string {
	what := fmt.Sprintf("%d arguments are BIP39 words, as a mnemonic's are", words)
	if words == 1 {
		what = "an argument is a BIP39 word, as a mnemonic's are"
	}
	return fmt.Sprintf(`ksb: refusing to run: %s (not shown here).
A mnemonic on the command line is visible to every user of this machine (ps) and is kept in your
shell history: delete it from the history, and treat the mnemonic as exposed if others use this machine.
Give it with --mnemonic-file FILE (mode 0600), --mnemonic-file - (standard input), $%s,
or type it at the prompt.
`, what, identity.EnvVar)
}
