package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/keyshare"
)

func init() { commands = append(commands, inspectCmd) }

// inspectOut is the JSON form of `ksb inspect --json`. It carries only public
// facts about the share.
type inspectOut struct {
	Kind        keyshare.Kind      `json:"kind"`
	Algorithm   keyshare.Algorithm `json:"algorithm"`
	VaultPubKey string             `json:"vault_pubkey"`
	Parties     int                `json:"parties"`
}

func inspectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Recognise a keyshare file and print its kind, algorithm, vault public key and party count",
		Long: "Recognise a go-tss KeygenLocalState or raw tss-lib save data file without changing it,\n" +
			"and print its kind, algorithm, vault public key and party count. Secret material is never printed.\n" +
			"A file that is not a keyshare is refused with the reason.",
		Args: cobra.ExactArgs(1),
	}
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		info, err := keyshare.ParseFile(args[0])
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		out := inspectOut{Kind: info.Kind, Algorithm: info.Algorithm, VaultPubKey: info.VaultPubKey, Parties: info.Parties}
		w := cmd.OutOrStdout()
		if *asJSON {
			return writeJSON(w, out)
		}
		_, err = fmt.Fprintf(w, "kind:         %s\nalgorithm:    %s\nvault_pubkey: %s\nparties:      %d\n",
			out.Kind, out.Algorithm, out.VaultPubKey, out.Parties)
		return err
	}
	return cmd
}
