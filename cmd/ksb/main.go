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

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/identity"
)

// commands is filled by each command file's init, so every subcommand lives
// in its own file.
var commands []func() *cobra.Command

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "ksb",
		Short:         "Keyshare backups: seal, push, attest and recover TSS keyshares",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

func main() {
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

// mnemonicFlag adds --mnemonic-file to cmd and returns a loader that reads the
// mnemonic from that file, KSB_MNEMONIC, or a no-echo terminal prompt, in that
// order. The mnemonic is never accepted as an argument.
func mnemonicFlag(cmd *cobra.Command) func() (string, error) {
	var file string
	cmd.Flags().StringVar(&file, "mnemonic-file", "", "file holding the 24-word mnemonic (else $"+identity.EnvVar+", else a terminal prompt)")
	return func() (string, error) {
		return identity.Read(identity.Source{File: file, Prompt: true})
	}
}
