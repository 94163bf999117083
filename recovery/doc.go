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
// chain's address prefix (unless HRP is given), this node's attestations
// (/attestations/owner/<address>) and the active nodes (/nodes), each query
// bounded by ChainTimeout ([DefaultChainTimeout], 10 s). For each attested
// vault it orders the attested digests newest first (by the block of their
// latest attestation) and, for the newest, asks every holder that attests it
// (8 at a time) over /ksb/fetch/1.0.0 for exactly that vault
// and digest, at the multiaddrs the chain lists for it. The first copy that
//
//   - hashes (sha256) to the attested digest,
//   - opens with the mnemonic (envelope.Open: age scrypt, then xz), and
//   - parses as a keyshare (keyshare.Parse) whose vault key is that vault
//
// is written, and the other fetches for that vault are cancelled. A holder
// that refuses, sends garbage or a blob that is not the attested one, cannot
// be dialled, or sends nothing within HolderTimeout ([DefaultHolderTimeout],
// 30 s) is logged and skipped ([Report].Skipped says why). Every copy of a
// digest is the same bytes, so a copy that hashes right but does not open as
// a share of the vault condemns the digest: Run then tries the next newest
// attested digest of the vault (a holder can attest a digest it never had;
// it cannot make it open), and says so in the progress lines and the log.
// Vaults are recovered concurrently; at most two blobs are decrypted at once
// (one scrypt is 256 MiB at the default work factor).
//
// An attested vault that no holder delivered is reported in an
// [*IncompleteError] listing the missing vaults; the others are still
// written. An address with no attestation at all is [ErrNoBackups] (a wrong
// mnemonic, or a wrong HRP, looks like this).
//
// # Path 2: gossip, without the chain
//
// Used with NoChain, or automatically when the RPC does not answer (no
// connection, or no answer within ChainTimeout) and Bootstrap peers are
// given; a chain that answers with an error is reported, not bypassed.
// Run's host then listens (Listen, default any interface on ephemeral TCP
// and QUIC ports, so that holders that are not among the bootstrap peers can
// dial back), connects to the bootstrap peers, waits up to 10 s for them to
// join the recovery topic and then one gossipsub heartbeat (1.2 s: gossipsub
// sends a node's own messages only to its mesh, which forms on the
// heartbeat), and runs p2p.Gossip.Recover: a recovery request signed by the
// node's key, with a nonce and the time (holders refuse replays and
// requests older than two minutes), republished every 3 s (holders answer
// one request per owner every 10 s and drop the rest).
// Holders that keep blobs of this node send them back over
// /ksb/return/1.0.0, to this peer ID only. Holders answer an owner they
// consider active from their last view of the chain, or one they hold blobs
// for.
//
// Each returned blob is verified as above, with the vault the holder names
// for it: sha256 against its header, opens with the mnemonic, parses as a
// keyshare of that vault. Anything else is logged and skipped. Of the valid
// blobs of one vault the newest is kept: the one with the latest receive
// time its holder reports; an exact tie goes to the smaller digest, so the
// choice does not depend on arrival order. (A holder can only make an older
// valid blob of the same vault win this way; a vault's share does not change
// once its keygen is done.) A blob older than the one already kept for its
// vault is not opened. Run stops when no valid blob has come within
// GossipFirstWait ([DefaultGossipFirstWait], 45 s) of the first request —
// what a mnemonic no holder knows (a wrong one) costs —, once no new valid
// blob has arrived for GossipQuiet ([DefaultGossipQuiet], 10 s, three
// republish intervals and a second) after one did, or after GossipTimeout
// ([DefaultGossipTimeout], 2 min) in all; then it writes the kept blobs.
// While it waits, it says so on Progress every five seconds. When a second copy of the kept blob
// comes from a holder reporting a later receive time, that holder is
// credited (so the choice does not depend on arrival order), and Progress
// says so.
// There is no list of expected vaults without the chain: every vault a
// valid blob came back for is written, and nothing at all is
// [ErrNoBackups].
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
//
// Progress lines go to standard error. Standard output gets a table with one
// row per vault (vault, holder used, bytes, time, file — with "(already
// present, identical)" when it was — or "NOT RECOVERED:" and why) and a
// closing line "recovered N of M vault(s) via chain|gossip in T", or, with
// --json, the report: path, owner, peer_id, fallback, vaults (vault,
// holder, peer_id, digest, height, received, bytes, duration_ms, file,
// unchanged, error), missing, skipped (vault, holder, peer_id, digest,
// error), duration_ms and error. Standard output stays empty when Run fails
// before learning what is held (no report). Exit status: 0 when every vault
// found was recovered (or was already there, identical); 2 when some were
// not (they are named on standard error; the others are written); 130 when
// interrupted (SIGINT or SIGTERM); 1 for everything else (bad flags, no
// mnemonic, chain unreachable without --bootstrap — the message suggests
// it —, no bootstrap peer reachable, no backups found).
package recovery
