// Package sim runs a whole ksb network in one process through a churn and
// measures it: `ksb sim` and `make sim` (docs/performance.md, "Churn
// simulation").
//
// [Run] simulates one network of N nodes on 127.0.0.1, everything real but
// the keyshares' cryptography and the scrypt cost: an embedded CometBFT
// validator running the ksb application (attest.StartEmbedded), and N
// daemons (node.New, node.Run) each with its own libp2p host, Badger store
// in a temporary directory and chain client, configured as a node's default
// configuration except the intervals Config names. The phases, each
// recorded as a [Phase]:
//
//   - start: N fresh mnemonics and homes, the chain started (genesis names
//     the authority, r and SHORT custody epochs, Config.EpochBlocks, with
//     every custody challenged every epoch);
//   - join: the nodes start and the authority's Churn adds them to the
//     network in waves (Config.JoinWave), each wave waiting until every node
//     so far has exchanged bytes with every other (each connection runs
//     identify), as nodes join a running network;
//   - keygen: the nodes are split into ⌈N/40⌉ keygens; each writes an ECDSA
//     and an EdDSA share file into every member's keyshare directory
//     (synthesized tss-lib save data of the keygen's size,
//     fixtures.SynthECDSAVault and SynthEdDSAVault), and the authority's
//     Churn creates the vaults on chain;
//   - backup: each owner seals r copies, commits them (one Commit), pushes
//     copy i to the holder the chain assigned slot i (push v2), and the
//     holders attest; until the chain's coverage shows every vault safe and
//     every member's share with r counted holders;
//   - proof epoch: until the next epoch starts, then until every counted
//     custody has been proved in it (each holder answers its challenges in
//     one Prove from its stored copies); a miss fails the step. The proofs
//     and Prove bytes come from the chain scan ([ProofEpoch]);
//   - churn: the authority's Churn removes a tenth of the nodes, whose
//     daemons stop; the chain fails their custodies and assigns
//     replacements in the same block. The step records when every vault is
//     safe and waits until every remaining node's shares are back at r
//     counted holders (each owner pushes to its replacements at its next
//     reconcile). The shares of removed nodes left under r are counted, not
//     waited for: their owners are gone and the chain names a remaining
//     holder as each replacement's source (/ksb/repair);
//   - accounting: every block from keygen to the end is read over the
//     chain's RPC and its transactions classified by message type
//     (attest.DecodeTx); the nodes' traffic counters are read.
//
// Per run it records the time to full coverage, to prove every custody in
// an epoch, to every vault safe and to restored custody after the churn,
// chain bytes by transaction type, block times, the messages and bytes each
// node's libp2p streams sent (a metrics.Reporter per host: stream payload
// and protocol negotiation, not Noise, yamux or QUIC framing; one message is
// one Write on a stream), the process's peak resident memory (VmHWM, reset
// at the start of the run), CPU seconds (getrusage), goroutines and file
// descriptors. [RunProcess] runs a size in a process of its own so these
// are the size's alone; [WriteTable] and [Plot] turn results into a
// markdown table and PNG plots (gonum.org/v1/plot) with least-squares fits
// against N ([FitLinear]). [MeasureComponents] measures what one Badger
// store, one libp2p host and one connection cost.
//
// Sealing runs at a LOW age work factor ([DefaultWorkFactor], 2^10 instead
// of 2^18), which the progress output and the docs say: the scrypt cost of
// a production seal (about 0.7 s per share) is measured apart and would
// dominate two shared cores.
package sim
