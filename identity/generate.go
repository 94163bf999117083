package identity

import (
	"fmt"

	bip39 "github.com/cosmos/go-bip39"
)

// Generate returns a fresh 24-word mnemonic (256 bits of entropy from
// crypto/rand). Callers that seal backups with it should still run the
// envelope's mnemonic checks, as for any mnemonic.
func Generate() (string, error) {
	ent, err := bip39.NewEntropy(256)
	if err != nil {
		return "", fmt.Errorf("entropy: %w", err)
	}
	return bip39.NewMnemonic(ent)
}
