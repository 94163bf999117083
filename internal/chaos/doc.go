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
// a churn. Owners speak the wire protocol through the project's client API
// (p2p.Push, p2p.Fetch), so the run follows protocol changes.
//
// # A cycle
//
// Every owner pushes blobs concurrently (Pushers streams at once each), one
// slot (owner, vault) per stream at a time, half of them 60 KiB and half
// 1 KiB–900 KiB of random bytes, while one fault is injected:
//
//   - kill: SIGKILL of the holder at a random moment, then a restart;
//   - stop: SIGSTOP of the holder for longer than the push deadline
//     (p2p.PushTimeout), then SIGCONT — or, one time in three, SIGKILL of the
//     frozen process and a restart;
//   - chain: the validator is stopped (SIGTERM, or one time in three SIGKILL),
//     the holder is SIGKILLed and restarted while the chain is down and takes
//     pushes from its saved chain view; the validator is started again after
//     the check.
//
// Then the pushes stop and every owner fetches its blobs from the holder and
// checks them. For each slot the holder must hold the blob of the last
// receipt, or of a later push whose outcome the owner never learnt (a push
// cut by the fault may have been stored without its receipt arriving); a
// missing blob, an older one, any other digest, or a blob that does not hash
// to its digest fails the run. So does a restart that does not come up
// (healthy on the admin endpoint, or the chain answering) within its bound, a
// validator that does not exit cleanly on SIGTERM, a holder that
// acknowledges nothing after it came back, and any panic in a log.
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
