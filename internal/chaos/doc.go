// Package chaos is ksb's crash-consistency run: it checks, from outside, the
// promise a holder's receipt makes — the blob is durable — against real
// `ksb node` and `ksb chain start` processes on 127.0.0.1 that are killed,
// frozen and restarted at random moments.
//
// # The network
//
// Run lays out a testnet (attest/testnet, as `ksb testnet init` does) of one
// validator and 1+Owners nodes. node0 is the holder, run as a `ksb node`
// process of the binary under test. The other nodes are the owners: active
// nodes registered on the chain, run inside this process as libp2p hosts with
// their own mnemonics, and members of Vaults vaults the authority creates by
// a churn. Owners speak the chain's and the wire protocol through the
// project's client API (attest.Sender, p2p.Push, p2p.Fetch), so the run
// follows protocol changes: each blob is a share version the owner commits
// on chain first (r copies of one size; r is the number of owners, so the
// chain assigns every candidate — the holder and the other owners — a copy),
// and the owner pushes the holder the copy the chain assigned it. The holder
// reads its custodies every block.
//
// # A cycle
//
// Every owner pushes blobs concurrently (Pushers streams at once each), one
// slot (owner, vault) per stream at a time, half of them 60 KiB and half
// 1 KiB–900 KiB of random bytes. A slot commits its next version only once
// the holder receipted the previous one (the chain keeps two superseded
// versions, so a receipted version is never deleted under the check), and
// pushes its last receipted copy again when it cannot commit (the chain is
// down): a holder restarted without the chain takes only copies of
// custodies its saved chain view knows. After a random time (the holder must have
// acknowledged pushes by then: it came back from the last fault) one fault
// hits the holder while the pushes go on:
//
//   - kill: SIGKILL, then a restart;
//   - stop: SIGSTOP for longer than the push deadline (p2p.PushTimeout),
//     then SIGCONT — or, one time in three, SIGKILL of the frozen process and
//     a restart;
//   - chain-down: the validator is stopped (SIGTERM, which it must survive
//     with a clean exit, or one time in three SIGKILL); the holder is
//     SIGKILLed and restarted without the chain, must take pushes from its
//     saved chain view, and is SIGKILLed and restarted again; the validator
//     is started again after the check.
//
// Once the holder is back (healthy on its admin endpoint) the pushes stop
// and every owner at once fetches its blobs and checks them, so every blob
// checked was receipted before a fault. For each slot the holder must hold,
// as its newest version of the vault (the highest commitment id), the blob
// of the last receipt, or of a push since then whose outcome the
// owner never learnt (a push cut by the fault may have been stored without
// its receipt arriving, or be stored a moment later). A missing blob, an
// older one, any other digest, or a blob that does not hash to its digest
// fails the run — after a second fetch 2 s later confirms it (a blob replaced
// while the holder answers is left out of that answer). So do a restart that
// does not come up within its bound, a validator that does not exit cleanly
// on SIGTERM, a holder that acknowledges nothing after it came back, and any
// line of a process log that mentions a panic.
//
// # Bounds and reproducibility
//
// The run stops after Cycles cycles or once Duration has passed, whichever is
// first; every wait has its own bound. The schedule — which fault, when, how
// long, the blob sizes — comes from Seed, which Run reports; the same seed
// gives the same schedule (process timing still varies).
//
// A SIGKILL does not lose what a process wrote to the page cache, so this run
// cannot tell a holder that fsyncs from one that does not; it catches a holder
// that acknowledges before the blob is written (the build tag
// ksb_unsafe_ack makes such a holder, see package store).
package chaos
