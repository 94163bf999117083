// Package identity turns a node's 24-word BIP39 mnemonic into everything that
// identifies the node: the secp256k1 key at THORChain's derivation path
// m/44'/931'/0'/0/0, its compressed public key, the bech32 node address, the
// libp2p peer ID of that same key, and signatures made with it.
//
// A mnemonic is read from a file, the KSB_MNEMONIC environment variable, or a
// no-echo terminal prompt (see [Read]); never from a command-line argument,
// where other users of the machine could see it in the process list.
//
// Mnemonics are normalised before use (Unicode NFKD, lower case, words joined by
// single spaces), so the same words typed differently give the same identity and
// the same envelope passphrase.
package identity
