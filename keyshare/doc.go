// Package keyshare recognises threshold-signature keyshare files, so that ksb
// seals and backs up real shares and nothing else. It reads a file without
// altering it: the bytes that are sealed are exactly the bytes on disk.
//
// Two formats are recognised:
//
//   - THORChain go-tss KeygenLocalState (Bifrost's localstate-<vault>.json):
//     a JSON object with pub_key (the vault public key as a bech32 "thorpub1…"
//     string), local_data (the tss-lib save data, either as base64 of its JSON
//     or as a JSON object), participant_keys and local_party_key.
//   - Raw tss-lib (bnb-chain/tss-lib) LocalPartySaveData JSON, ECDSA (with
//     ECDSAPub, a secp256k1 point) or EdDSA (with EDDSAPub, an Ed25519 point).
//
// [Parse] checks what makes a file a share rather than look-alike JSON: the
// fields tss-lib needs are present with the right types, every per-party list
// has one entry per party, the vault point and every party's public share are
// on the curve (for Ed25519, in its prime-order subgroup), and for go-tss the party count and the bech32 pub_key agree
// with the save data. Big integers are JSON numbers of up to 617 digits; only
// curve coordinates are converted (with math/big, never float64) and only
// after their length is checked, so hostile input cannot make parsing slow.
//
// What Parse does not check: that the secret share matches the public shares,
// or that the Paillier and ring-Pedersen parameters are sound. That needs the
// share's secrets and heavy arithmetic; tss-lib checks what it needs when it
// uses the share.
package keyshare
