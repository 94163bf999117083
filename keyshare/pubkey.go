package keyshare

import (
	"bytes"

	"github.com/btcsuite/btcd/btcutil/bech32"
)

// Amino prefixes Cosmos SDK chains put before a public key in bech32 "…pub1"
// strings.
var (
	aminoSecp256k1 = []byte{0xeb, 0x5a, 0xe9, 0x87, 0x21}
	aminoEd25519   = []byte{0x16, 0x24, 0xde, 0x64, 0x20}
)

// checkBech32PubKey requires a go-tss pub_key to be the bech32 amino encoding
// of vault, the point in the save data. Any human-readable prefix is accepted
// (thorpub, tthorpub, sthorpub, …).
func checkBech32PubKey(s string, vault point) error {
	_, data, err := bech32.DecodeNoLimit(s)
	if err != nil {
		return refusef("pub_key", ErrBadField, "not bech32: %v", err)
	}
	b, err := bech32.ConvertBits(data, 5, 8, false)
	if err != nil {
		return refusef("pub_key", ErrBadField, "bech32 payload: %v", err)
	}
	want := aminoSecp256k1
	if len(vault.enc) == 32 {
		want = aminoEd25519
	}
	want = append(want[:len(want):len(want)], vault.enc...)
	if !bytes.Equal(b, want) {
		return refusef("pub_key", ErrInconsistent, "not the vault key %x of local_data", vault.enc)
	}
	return nil
}
