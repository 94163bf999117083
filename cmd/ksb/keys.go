package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/identity"
)

func init() { commands = append(commands, keysCmd) }

// keysShow is the JSON form of `ksb keys show --json`.
type keysShow struct {
	Address string `json:"address"`
	PubKey  string `json:"pubkey"`
	PeerID  string `json:"peer_id"`
}

func keysCmd() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Show the identity a mnemonic gives"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the node address, public key and libp2p peer ID of the mnemonic",
		Args:  cobra.NoArgs,
	}
	load := mnemonicFlag(show)
	hrp := show.Flags().String("hrp", identity.DefaultHRP, "bech32 prefix of the address")
	asJSON := show.Flags().Bool("json", false, "print JSON")
	show.RunE = func(cmd *cobra.Command, _ []string) error {
		m, err := load()
		if err != nil {
			return err
		}
		id, err := identity.New(m)
		if err != nil {
			return err
		}
		addr, err := identity.AddressFromPubKey(id.PubKey(), *hrp)
		if err != nil {
			return err
		}
		out := keysShow{Address: addr, PubKey: id.PubKeyHex(), PeerID: id.PeerID().String()}
		w := cmd.OutOrStdout()
		if *asJSON {
			return writeJSON(w, out)
		}
		fmt.Fprintf(w, "address: %s\npubkey:  %s\npeer_id: %s\n", out.Address, out.PubKey, out.PeerID)
		return nil
	}
	keys.AddCommand(show)
	return keys
}
