package attest

import (
	"fmt"
	"strconv"
	"strings"
)

// The state keys of issue 10 and 11 (docs/attestation.md, "State keys").
// Numbers in keys are fixed-width lower-case hex, so that byte order is
// numeric order: 16 digits for accounts, vault indices, commitment ids,
// epochs and heights, 2 for slots. Addresses and vault keys never contain
// '/'. Values are the deterministic protobuf encoding of the attestpb
// record named beside each (s/params stays JSON: Params).
//
// Every key coverage needs can be named from the one before it, so a
// client that verifies each value against the app hash (ICS23 has no range
// proofs) never needs a scan: KeyVault(pubkey) → VaultRecord (index,
// members) → KeyLatest(member, index) → commitment id → KeyCommitment(id) →
// CommitmentRecord (slots) → KeyCustody(id, slot) for each slot →
// CustodyRecord (holder) → KeyNode(holder), present iff the holder is
// active.
const (
	keyCounters    = prefState + "counters"   // attestpb.Counters
	keyEpoch       = prefState + "epoch"      // attestpb.EpochRecord
	prefAccount    = prefState + "account/"   // + account → attestpb.AccountRecord
	prefAccountFor = prefState + "accountof/" // + address → account, decimal
	prefVaultIdx   = prefState + "vaultidx/"  // + vault index → vault pubkey
	prefLatest     = prefState + "latest/"    // + owner/vault index → commitment id, decimal
	prefOwned      = prefState + "owned/"     // + owner/commitment id → "" (an owner's commitments)
	prefCommit     = prefState + "commit/"    // + commitment id → attestpb.CommitmentRecord
	prefCustody    = prefState + "custody/"   // + commitment id/slot → attestpb.CustodyRecord
	prefHeld       = prefState + "held/"      // + holder/commitment id/slot → "" (a holder's custodies)
	prefSource     = prefState + "source/"    // + source/commitment id/slot → "" (repairs a node must send)
	prefChallenge  = prefState + "chal/"      // + epoch/holder/commitment id/slot → attestpb.ChallengeRecord
	prefTimer      = prefState + "timer/"     // + height/kind/id → "" (work due at the end of that block)
	// prefNode (+ address → attestpb.NodeRecord) and prefVault (+ vault
	// pubkey → attestpb.VaultRecord) are in state.go.
)

func hex16(x uint64) string { return fmt.Sprintf("%016x", x) }
func hex2(x uint64) string  { return fmt.Sprintf("%02x", x) }

func parseHex(s string, width int) (uint64, bool) {
	if len(s) != width {
		return 0, false
	}
	x, err := strconv.ParseUint(s, 16, 64)
	return x, err == nil
}

// KeyParams is the key of the chain's parameters (JSON of Params).
func KeyParams() string { return keyParams }

// KeyCounters is the key of the chain's counters (attestpb.Counters): the
// next account number, vault index and commitment id.
func KeyCounters() string { return keyCounters }

// KeyNode is the key of an active node's record (attestpb.NodeRecord); it
// is absent for a node that is not active.
func KeyNode(address string) string { return prefNode + address }

// KeyVault is the key of a vault's record (attestpb.VaultRecord).
func KeyVault(pubkey string) string { return prefVault + pubkey }

// KeyVaultIndex is the key holding the public key of the vault with chain
// index index.
func KeyVaultIndex(index uint64) string { return prefVaultIdx + hex16(index) }

// KeyLatest is the key of the id (decimal) of owner's newest commitment for
// the vault with index vault.
func KeyLatest(owner string, vault uint64) string { return prefLatest + owner + "/" + hex16(vault) }

// KeyCommitment is the key of a commitment's record
// (attestpb.CommitmentRecord).
func KeyCommitment(id uint64) string { return prefCommit + hex16(id) }

// KeyCustody is the key of a custody's record (attestpb.CustodyRecord).
func KeyCustody(id CustodyID) string {
	return prefCustody + hex16(id.Commitment) + "/" + hex2(id.Slot)
}

// KeyAccount is the key of an account's record (attestpb.AccountRecord).
func KeyAccount(account uint64) string { return prefAccount + hex16(account) }

// KeyEpoch is the key of the current epoch's record (attestpb.EpochRecord).
func KeyEpoch() string { return keyEpoch }

// KeyChallenge is the key of holder's open challenge of custody id in epoch
// epoch (attestpb.ChallengeRecord); absent once answered or closed.
func KeyChallenge(epoch uint64, holder string, id CustodyID) string {
	return prefChallenge + hex16(epoch) + "/" + holder + "/" + hex16(id.Commitment) + "/" + hex2(id.Slot)
}

func keyAccountOf(address string) string { return prefAccountFor + address }

func keyOwned(owner string, id uint64) string { return prefOwned + owner + "/" + hex16(id) }

func keyHeld(holder string, id CustodyID) string {
	return prefHeld + holder + "/" + hex16(id.Commitment) + "/" + hex2(id.Slot)
}

func keySource(source string, id CustodyID) string {
	return prefSource + source + "/" + hex16(id.Commitment) + "/" + hex2(id.Slot)
}

// Timer kinds: what is due at the end of a block.
const (
	timerAttest = "a" // + commitment/slot: the custody fails if not attested
	timerSource = "s" // + commitment/slot: a new repair source is drawn if the replacement has not attested
	timerPrune  = "p" // + commitment: a superseded or retired commitment is deleted
	timerVault  = "v" // + vault index: a retired vault is deleted
)

func timerPrefix(height int64) string { return prefTimer + hex16(uint64(height)) + "/" }

func keyTimerCustody(height int64, kind string, id CustodyID) string {
	return timerPrefix(height) + kind + "/" + hex16(id.Commitment) + "/" + hex2(id.Slot)
}

func keyTimerID(height int64, kind string, id uint64) string {
	return timerPrefix(height) + kind + "/" + hex16(id)
}

// custodyFromSuffix parses "<commitment hex16>/<slot hex2>".
func custodyFromSuffix(s string) (CustodyID, bool) {
	c, slot, ok := strings.Cut(s, "/")
	if !ok {
		return CustodyID{}, false
	}
	cid, ok1 := parseHex(c, 16)
	sl, ok2 := parseHex(slot, 2)
	return CustodyID{Commitment: cid, Slot: sl}, ok1 && ok2
}
