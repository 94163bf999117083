// Package identity turns a node's 24-word BIP39 mnemonic into everything that
// identifies the node: the secp256k1 key at THORChain's derivation path
// m/44'/931'/0'/0/0, its compressed public key, the bech32 node address, the
// libp2p peer ID of that same key, and signatures made with it.
//
// A mnemonic is read from a file (refused if its group or others may read or
// write it, unless the caller accepts that), standard input, the KSB_MNEMONIC
// environment variable, or a no-echo terminal prompt (see [Read]); never from
// a command-line argument, where other users of the machine could see it in
// the process list.
//
// Every mnemonic is read by [ParseMnemonic], the one place that turns what a
// person wrote — numbered lists, words cut to their first four letters, any
// case and spacing — into the canonical form (24 full lower-case words, single
// spaces), so every spelling gives the same identity and the same envelope
// passphrase; a spelling with no single meaning is refused naming the exact
// problem (an invisible character by its Unicode name), never quoting a word.
package identity
