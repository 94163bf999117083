// Package recovery brings a node's keyshares back from its 24-word mnemonic
// alone: [Run] is `ksb recover`.
//
// The mnemonic gives everything: the node's address (to find its
// attestations on the chain), its libp2p peer ID (holders hand a blob only
// to a peer that proves, through the Noise handshake, that it is the blob's
// owner), and the passphrase that opens the blobs. Run starts a short-lived
// libp2p host with the node's key, finds and fetches the blobs by one of two
// paths, verifies each, and writes OutDir/localstate-<vault>.json (mode
// 0600) for each vault.
//
// # Path 1: the chain
//
// Used when an RPC address is given and NoChain is not set. Run reads the
// chain's address prefix (unless HRP is given), this node's commitments
// (each a vault version: its size, copy count and the root over its r copy
// roots, with the custodies the chain assigned for its copies) and the
// active nodes, each query bounded by ChainTimeout ([DefaultChainTimeout],
// 10 s). With Options.Verified the same are read from verified state
// instead (package verify: every key proven against an app hash the light
// client verified; only each vault's newest commitment), and any failure
// ends the recovery without a fallback, so a lying RPC cannot steer it.
//
// For each vault it tries the committed versions live first, then newest
// first (commitment ids grow in commit order). For a version it asks the
// holders of its custodies — counted (fresh) ones first, most recently
// proven first, then pending, then stale; failed custodies and the owner
// itself are left out — 8 at a time over /ksb/fetch/2.0.0, at the multiaddrs
// the chain lists for them. The first copy that
//
//   - verifies against the commitment as the copy the chain names for that
//     holder's custody (custody.VerifyCopy: the copy's segment root and its
//     path to the committed root),
//   - opens with the mnemonic (envelope.Open: age scrypt, then xz), and
//   - parses as a keyshare (keyshare.Parse) whose vault key is that vault
//
// is written, and the other fetches for that vault are cancelled. A holder
// that refuses, sends garbage or a copy that does not verify, cannot be
// dialled, or sends nothing within HolderTimeout ([DefaultHolderTimeout],
// 30 s) is logged and skipped ([Report].Skipped says why). Every copy of a
// commitment is the owner's encryption of one plaintext, so a copy that
// verifies but does not open as a share of the vault condemns the version:
// Run then tries the next one, and says so in the progress lines and the
// log. Vaults are recovered concurrently; at most two blobs are decrypted at
// once (one scrypt is 256 MiB at the default work factor).
//
// A committed vault that no holder delivered is reported in an
// [*IncompleteError] listing the missing vaults; the others are still
// written. An address with no commitment at all is [ErrNoBackups] (a wrong
// mnemonic, or a wrong HRP, looks like this).
//
// # Path 2: gossip, without the chain
//
// Used with NoChain, or automatically when the RPC does not answer (a
// refused connection falls back at once, a chain that does not answer
// within ChainTimeout after that long) and Bootstrap peers are given; a
// chain that answers with an error is reported, not bypassed. Run's host then
// listens (Listen, default any interface on ephemeral TCP and QUIC ports, so
// that holders that are not among the bootstrap peers can dial back),
// connects to the bootstrap peers, waits up to 10 s for them to join the
// recovery topic, and runs p2p.Gossip.Recover: a recovery request signed by
// the node's key, with a nonce, republished every 3 s. Holders do not judge
// a request by its time (this machine's clock may be off); they remember
// nonces, answer an owner once per recovery and send its blobs at most every
// 10 s (docs/protocol.md, "Replays and amplification"). A holder that keeps
// blobs of this node opens /ksb/return/2.0.0 to this peer ID only, offers
// them (how many, and its clock), and sends them when Run accepts the offer.
// Holders answer an owner they consider active from their last view of the
// chain, or one they hold blobs for.
//
// Each returned blob is verified as above, with the vault the holder names
// for it: sha256 against its header, opens with the mnemonic, parses as a
// keyshare of that vault. Anything else is logged and skipped. Blobs of
// different vaults are opened in parallel (two at a time); copies of a blob
// that is being opened wait for its verdict, and so do the other copies of
// a version (the holders' entries name its commitment; the r copies of a
// commitment are different ciphertexts of one share), which are opened one
// at a time only while none has opened. Of the valid copies of one vault
// the newest version is kept: the highest commitment id (the chain numbers
// commitments in commit order, so no clock is compared). A holder can only
// make an older valid copy of the same vault win by naming a higher id for
// it; a vault's share does not change once its keygen is done. A copy of an
// older version than the one kept, or of the kept version, is not opened.
// The holder reported is one whose copy was opened; when the same bytes
// (same digest) come from a holder reporting a later receive time, that
// holder is credited instead (so the choice among identical bytes does not
// depend on arrival order).
//
// Run stops, and writes the kept blobs:
//
//   - once every vault heard of (a vault some holder sent a copy of) has a
//     verified copy, no holder that offered is still sending and no blob is
//     being opened, GossipGrace ([DefaultGossipGrace], 2 s) after the request
//     and after the last holder's offer — the bounded wait for holders later
//     than the others;
//   - otherwise (a vault heard of only from copies that failed, or a holder
//     still sending) GossipQuiet ([DefaultGossipQuiet], 10 s) after the last
//     new valid blob;
//   - with [ErrNoBackups] when no valid blob came within GossipFirstWait
//     ([DefaultGossipFirstWait], 45 s) — what a mnemonic no holder knows (a
//     wrong one) costs;
//   - after GossipTimeout ([DefaultGossipTimeout], 2 min) in all.
//
// While it waits, it says so on Progress every five seconds. There is no
// list of expected vaults without the chain: every vault a valid blob came
// back for is written, a vault no holder answered for within the grace is
// not, and nothing at all is [ErrNoBackups].
//
// # The clock
//
// Run compares this machine's clock (Options.Now) with the network's: on
// the chain path with the latest block's time (a block time behind this
// clock by more than the tolerance is believed only for a block made while
// Run watched, at most 3 s), on the gossip path with the median of the
// holders' clocks in their offers. [Report].Clock has the offset; beyond
// p2p.ClockTolerance (1 min) [ClockCheck.Skewed] is true and `ksb recover`
// warns: recovery does not depend on it, but a node run with that clock is
// not heard by its peers.
//
// # Files
//
// Each file is written to a temporary file in OutDir (created with mode 0700
// when the first file is written, so a run that writes nothing — refused,
// interrupted, nothing found — leaves no empty directory), synced, and
// hard-linked to localstate-<vault>.json, so a failure leaves nothing
// half-written. A file already there with exactly the recovered bytes is
// left as it is and reported as such ([VaultResult].Unchanged: a recovery
// run again succeeds); one with other bytes is refused ([ErrExists]) and
// left untouched, even one that appears during the run. With Force the
// temporary file is renamed over it instead. The vault key
// becomes part of a file name only if it is made of A-Z a-z 0-9 . _ : -
// ([FileName]). Neither the mnemonic nor any blob or plaintext is logged or
// sent anywhere; plaintext buffers are cleared once written.
//
// # ksb recover
//
//	ksb recover --out DIR [--rpc URL] [--bootstrap MULTIADDR ...] [--no-chain]
//	            [--hrp H] [--force] [--json] [--mnemonic-file FILE]
//	            [--gossip-first-wait D] [--gossip-quiet D] [--gossip-timeout D]
//	            [--gossip-grace D]
//	            [--verify (--genesis FILE | --trust-height H --trust-hash HASH)
//	             [--chain-id ID] [--trust-period D]]
//
//	--out DIR           where to write localstate-<vault>.json (required)
//	--rpc URL           chain RPC (default http://127.0.0.1:26657)
//	--bootstrap MADDR   a peer to ask over gossip, /ip4/…/tcp/…/p2p/<id>;
//	                    repeat or separate with commas; enables the fallback
//	--no-chain          do not use the chain, only gossip (needs --bootstrap)
//	--hrp H             address prefix (default: the chain's, else "thor")
//	--force             replace existing files that differ
//	--json              print the report as JSON instead of a table
//	--mnemonic-file F   the mnemonic (else $KSB_MNEMONIC, else a no-echo prompt)
//	--gossip-first-wait D  GossipFirstWait (default 45s)
//	--gossip-quiet D    GossipQuiet (default 10s)
//	--gossip-timeout D  GossipTimeout (default 2m0s)
//	--gossip-grace D    GossipGrace (default 2s)
//	--verify            read commitments and holders from verified state
//	                    (Options.Verified); repeat --rpc to add witnesses
//
// Progress lines go to standard error. Standard output gets a table with one
// row per vault (vault, holder used, bytes, time, file — with "(already
// present, identical)" when it was — or "NOT RECOVERED:" and why) and a
// closing line "recovered N of M vault(s) via chain|gossip in T", or, with
// --json, the report: path, owner, peer_id, fallback, vaults (vault,
// holder, peer_id, digest, height, received, bytes, duration_ms, file,
// unchanged, error), missing, skipped (vault, holder, peer_id, digest,
// error), duration_ms, clock (offset_ms, against, height, samples, skewed;
// when measured) and error. Standard output stays empty when Run fails
// before learning what is held (no report). When the clock is off beyond
// the tolerance, a warning saying so ends standard error. Exit status: 0
// when every vault found was recovered (or was already there, identical); 2 when some were
// not (they are named on standard error; the others are written); 130 when
// interrupted (SIGINT or SIGTERM); 3 with --verify when the chain's answer
// could not be proven (nothing fetched or written); 1 for everything else (bad flags, no
// mnemonic, chain unreachable without --bootstrap — the message suggests
// it —, no bootstrap peer reachable, no backups found).
package recovery
