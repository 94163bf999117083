// Package custody holds the pure rules of verifiable custody, shared by the
// node (owner and holder), the chain's application and the verifying
// client: Merkle commitments to sealed copies, possession proofs and their
// verification, the derivation of holder assignments and challenges from
// block randomness, the custody status rules, and coverage. It does no I/O,
// starts no goroutines, keeps no state, and every function is deterministic:
// the chain's replicas must all compute the same answers.
//
// # Commitments
//
// An owner seals one share version into r copies (envelope.SealCopies: one
// scrypt, a fresh age file key per copy, all of one size). Each copy is cut
// into [SegmentSize]-byte segments, the last one shorter, and committed by
// its copy root, the RFC 6962 Merkle root over the segments: leaf =
// sha256(0x00 ‖ segment), node = sha256(0x01 ‖ left ‖ right), computed with
// CometBFT's crypto/merkle (HashFromByteSlices), whose tree splits n leaves
// at the largest power of two below n and whose 0x00/0x01 prefixes keep a
// leaf from ever being taken for a node. The commitment root is the same
// tree over the r copy roots, so the chain stores 32 bytes per share
// version whatever r is:
//
//	commit root = MerkleRoot(copyRoot(copy 0), …, copyRoot(copy r-1))
//	copyRoot(c) = MerkleRoot(c[0:64], c[64:128], …)
//
// [NewCommitment] computes it; [CommitPath] gives the path from copy root i
// to the commitment root, which the owner sends with copy i. A holder stores
// the blob, its copy index and that path, and checks them on receipt with
// [VerifyCopy] (as a replacement does with a repaired copy, and recovery
// with a fetched one).
//
// # Proofs
//
// A [Proof] is the challenged segment, its path to the copy root (copy path)
// and the copy root's path to the commitment root (commit path): for the
// 27 KB sealed 20-party ECDSA share and r = 3, 64 + 9·32 + 2·32 = 416 bytes
// plus indices. The holder builds it from what it stores ([ProveHeld]);
// [Verify] checks it against the committed root, size and r, the custody's
// copy index and the challenged segment, refusing with a [*ProofError]
// whose cause says what was wrong. Because each copy has its own root and
// the proof must be for the custody's own copy index, a holder cannot answer
// from another holder's copy.
//
// # Randomness
//
// Holders are assigned by [Assign], from [AssignSeed] (chain ID, the hash of
// the block carrying the commitment, the commitment id), a partial
// Fisher–Yates shuffle of the sorted candidates driven by [Stream], SHA-256
// in counter mode. A repair's replacement comes from [RepairSeed] (chain ID,
// block hash, commitment id, slot) and its source from [SourceSeed] (the
// same and the attempt number), each through Assign. Challenges come from
// [EpochSeed] (chain ID, epoch, hash of the epoch's first block):
// [Challenges] picks each holder's challenged custodies, [SegmentIndex] the
// segment of each. Every derivation hashes its own domain tag
// ("ksb/assign/v1", "ksb/repair/v1", "ksb/source/v1", "ksb/epoch/v1",
// "ksb/challenge/v1", "ksb/segment/v1", "ksb/stream/v1") and length-prefixed fields, so no value
// derived for one purpose equals one derived for another.
//
// Why a block hash is unpredictable enough for holders: a CometBFT block
// hash is the Merkle root of its header, which commits to the block's
// transactions, its time, the previous block's commit (the validators'
// signatures), and the application hash after the previous block. Nobody
// but the proposer knows it before the proposer builds the block, and a
// holder learns an epoch's challenges only when the epoch's first block is
// finalized. From then it has proof_window blocks to answer. So a holder
// cannot keep only the segments it will be asked for: before the epoch each
// of its Leaves(size) segments is equally likely, and a holder that kept a
// fraction f of a copy answers a challenge with probability f. (Fetching the
// missing copy within the window would need someone who still has that
// exact copy, and only its holder does: copies differ in every segment.)
//
// What a grinding proposer could do: the proposer of an epoch's first block
// chooses, within CometBFT's rules, which transactions it includes and in
// what order, and so can try many candidate blocks and propose the one whose
// hash gives the challenges it likes: spare a holder it colludes with, or
// steer challenges towards segments that holder kept. Each try costs one
// header hash; a holder that lost a fraction f of a copy challenged on k
// segments escapes with probability (1−f)^k per try, so a proposer can hide
// a partial loss for the epochs whose first block it proposes. It cannot
// hide a total loss (no segment is left to steer to), cannot affect epochs
// other validators open, and the custody is challenged again every round,
// so the loss shows once an honest validator opens an epoch. On ksb's chain
// the validators are the operators' own (one embedded validator by default),
// so grinding means a validator colluding with a holder against the owners
// who trust that chain; a verifiable random function or threshold beacon as
// the seed would remove it and is left for later.
//
// # Statuses and coverage
//
// A custody is [StatusPending] until its first valid proof, [StatusFresh]
// after each, [StatusStale] after a miss and [StatusFailed] after a second
// miss in a row ([Status.Missed], [Status.Proved]); a holder that misses
// every challenge of two consecutive epochs fails as a whole
// ([HolderFails]). [Coverage] counts, for each member of a vault, the
// distinct holders of its newest live commitment's custodies that are
// attested, active and not failed: the member is covered with r of them,
// and the vault is safe when at least its threshold of members are covered.
//
// Every limit is a named constant: [SegmentSize], [MaxSize], [MaxCopies].
// Errors are in errors.go.
package custody
