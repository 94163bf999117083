package custody

import (
	"cmp"
	"slices"
)

// CoverageInput is what coverage is computed from: one vault and the
// records of its members' commitments, as the chain's state holds them (the
// app) or as verified query answers give them (the verifying client).
type CoverageInput struct {
	// Members are the vault's members' addresses, in the vault's order.
	Members []string
	// Threshold is the number of members needed to sign, 1 to
	// len(Members).
	Threshold int
	// Copies is r, the replication target: a member is covered with at
	// least r counted holders.
	Copies int
	// Active is the active set: the addresses of active nodes.
	Active []string
	// Commitments are the members' commitments for this vault, in any
	// order; those of non-members are ignored.
	Commitments []CommitmentRecord
}

// CommitmentRecord is one commitment and its custodies.
type CommitmentRecord struct {
	ID     uint64 // the chain's commitment id: newer commitments have larger ids
	Owner  string
	Height int64 // block that carried the Commit
	// Superseded: a newer version of the same (owner, vault) replaced it.
	Superseded bool
	Custodies  []CustodyRecord
	// LastDrillHeight is the block of the owner's last restore drill of
	// this commitment (0: none); LastDrillOK its outcome.
	LastDrillHeight int64
	LastDrillOK     bool
}

// CustodyRecord is one custody of a commitment.
type CustodyRecord struct {
	Slot            uint64
	CopyIndex       int
	Holder          string
	Status          Status
	Attested        bool
	LastProofHeight int64 // 0: never proven
}

// VaultCoverage says whether a vault can be recovered from backups.
type VaultCoverage struct {
	// Members are in CoverageInput.Members order.
	Members []MemberCoverage
	// Covered is the number of covered members.
	Covered int
	// Safe: Covered ≥ Threshold, i.e. even if every member machine were
	// lost at once, enough shares could be recovered to sign.
	Safe bool
}

// MemberCoverage is one member's backups.
type MemberCoverage struct {
	Member string
	// HasCommitment: the member has a live (not superseded) commitment; the
	// fields below describe its newest.
	HasCommitment bool
	Commitment    uint64
	CommitHeight  int64
	// Holders are the distinct counted holders, sorted.
	Holders []string
	// Custody lists every custody of the commitment, counted or not, by
	// slot.
	Custody []CustodyCoverage
	// Covered: len(Holders) ≥ r.
	Covered bool
	// LastDrillHeight and LastDrillOK are the commitment's last restore
	// drill (0 and false: none).
	LastDrillHeight int64
	LastDrillOK     bool
}

// CustodyCoverage is one custody as coverage shows it.
type CustodyCoverage struct {
	Slot            uint64
	CopyIndex       int
	Holder          string
	Status          Status
	Attested        bool
	LastProofHeight int64
	CommitHeight    int64
	// Counted: Attested, holder active and not the owner, status pending,
	// fresh or stale.
	Counted bool
}

// Coverage computes a vault's coverage: for each member, its newest
// commitment that is not superseded (largest id); its holders are the
// distinct holders of that commitment's counted custodies, where counted is
// attested ∧ holder active ∧ status not failed (nor unknown) ∧ holder not
// the owner; the member is covered with at least Copies holders, and the
// vault is safe when at least Threshold members are covered.
//
// It refuses (ErrInvalidArgument) a member listed twice, a threshold
// outside 1..len(Members) and Copies outside 1..MaxCopies.
func Coverage(in CoverageInput) (VaultCoverage, error) {
	if in.Copies < 1 || in.Copies > MaxCopies {
		return VaultCoverage{}, badArg("r = %d, want 1 to %d", in.Copies, MaxCopies)
	}
	if in.Threshold < 1 || in.Threshold > len(in.Members) {
		return VaultCoverage{}, badArg("threshold %d of %d members", in.Threshold, len(in.Members))
	}
	newest := make(map[string]*CommitmentRecord, len(in.Members))
	for _, m := range in.Members {
		if _, dup := newest[m]; dup {
			return VaultCoverage{}, badArg("member %s listed twice", m)
		}
		newest[m] = nil
	}
	for i := range in.Commitments {
		c := &in.Commitments[i]
		cur, member := newest[c.Owner]
		if !member || c.Superseded || cur != nil && cur.ID >= c.ID {
			continue
		}
		newest[c.Owner] = c
	}
	active := make(map[string]bool, len(in.Active))
	for _, a := range in.Active {
		active[a] = true
	}

	out := VaultCoverage{Members: make([]MemberCoverage, 0, len(in.Members))}
	for _, m := range in.Members {
		mc := MemberCoverage{Member: m, Holders: []string{}, Custody: []CustodyCoverage{}}
		if c := newest[m]; c != nil {
			mc.HasCommitment, mc.Commitment, mc.CommitHeight = true, c.ID, c.Height
			mc.LastDrillHeight, mc.LastDrillOK = c.LastDrillHeight, c.LastDrillOK
			for _, cu := range c.Custodies {
				counted := cu.Attested && active[cu.Holder] && cu.Holder != m &&
					cu.Status.Valid() && cu.Status != StatusFailed
				mc.Custody = append(mc.Custody, CustodyCoverage{
					Slot: cu.Slot, CopyIndex: cu.CopyIndex, Holder: cu.Holder, Status: cu.Status,
					Attested: cu.Attested, LastProofHeight: cu.LastProofHeight, CommitHeight: c.Height,
					Counted: counted,
				})
				if counted {
					mc.Holders = append(mc.Holders, cu.Holder)
				}
			}
			slices.SortStableFunc(mc.Custody, func(a, b CustodyCoverage) int { return cmp.Compare(a.Slot, b.Slot) })
			slices.Sort(mc.Holders)
			mc.Holders = slices.Compact(mc.Holders)
		}
		mc.Covered = len(mc.Holders) >= in.Copies
		if mc.Covered {
			out.Covered++
		}
		out.Members = append(out.Members, mc)
	}
	out.Safe = out.Covered >= in.Threshold
	return out, nil
}
