// Package node is the ksb daemon: it wires the identity, the Badger store, the
// libp2p host and its protocols, gossip and the attestation chain client into
// one process that
//
//   - as an owner, watches the keyshare directory, seals every new share once,
//     pushes it to its holders and keeps the receipts, and once per drill
//     interval restores one copy from a random holder and posts the result
//     (a restore drill, drill.go);
//   - as a holder, accepts blobs pushed by active nodes, keeps them durably and
//     attests them on chain in batches, retried across chain outages;
//   - follows the chain for churn (active nodes, vaults, retirements).
//
// [New] builds a node from its home directory and configuration; [Node.Run]
// runs it until its context ends.
package node
