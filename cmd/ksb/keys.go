package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/envelope"
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
		Long: `Prints the identity the mnemonic gives: the node address (bech32, --hrp), the compressed
secp256k1 public key and the libp2p peer ID, all from the key at m/44'/931'/0'/0/0.
The mnemonic may be written as people write it down: numbered ("1. word" or "1) word"), words
cut to their first four letters, any case or spacing. A valid mnemonic that cannot seal backups
(12 or 18 words, too little byte entropy) is shown with a warning: ksb node and ksb seal refuse it.`,
		Args: cobra.NoArgs,
	}
	load := mnemonicFlag(show)
	hrp := show.Flags().String("hrp", identity.DefaultHRP, "bech32 `PREFIX` of the address (BIP-173: 1 to 51 characters '!' to '~', lower case)")
	asJSON := show.Flags().Bool("json", false, "print JSON")
	show.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := identity.ValidateHRP(*hrp); err != nil {
			return fmt.Errorf("--hrp: %w", err)
		}
		m, err := load()
		if err != nil {
			return err
		}
		id, err := identity.New(m)
		if err != nil {
			return err
		}
		if err := envelope.CheckMnemonic(m); err != nil {
			// The identity is still shown: an operator may want the address
			// of any mnemonic. But the daemon and ksb seal will refuse it.
			fmt.Fprintf(cmd.ErrOrStderr(), "ksb: warning: this mnemonic cannot seal backups (ksb node and ksb seal refuse it): %v\n", err)
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
