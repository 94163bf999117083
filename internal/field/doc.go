// Package field is the one definition of the fields a blob is known by: the
// owner's key and address, the vault key, the digest and the size. The push
// protocol (p2p), the store and the attestation chain's transaction checks
// (attest) all validate these fields with the functions here, so nothing a
// holder accepts on a stream or keeps in its store is refused for its form
// when the holder attests it. (A vault key the push handler allowed but the
// chain did not once blocked a holder's attestation queue for good.)
//
// Layers may add limits of their own on top — the store keeps blobs under
// 1 MiB, far below MaxSize — but never accept what a function here refuses.
package field
