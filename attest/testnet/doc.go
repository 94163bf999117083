// Package testnet lays out a local ksb network on one machine: validator
// homes for the attestation chain, node homes with fresh mnemonics and
// config.toml files, the authority's mnemonic, and optionally keyshare files
// dealt to the nodes. It is what `ksb testnet init` runs.
//
// # Layout
//
//	D/chain0 … D/chainV-1   validator homes (attest.InitNetwork), one genesis
//	D/node0 … D/nodeN-1     mnemonic (0600), config.toml, keyshares/, data/
//	D/authority/mnemonic    the key Churn transactions need
//	D/assignments.json      with --keyshares: {"node0": ["/abs/file", …], …}
//
// # Ports
//
// All on 127.0.0.1, from the base port P upward: validator i uses P+2i (CometBFT
// p2p) and P+2i+1 (RPC); node j uses P+2V+2j for libp2p (TCP and QUIC/UDP) and
// P+2V+2j+1 for its admin endpoint. Node j's chain RPC is validator j mod V.
//
// # Genesis
//
// Every node is registered with its public key and its libp2p multiaddrs
// without a /p2p component: the peer ID is derived from the key (the /nodes
// query returns it as peer_id). With keyshares, each vault found among the
// files is registered with the nodes dealt its files as members and a
// threshold of ⌈2m/3⌉ of its m members.
package testnet
