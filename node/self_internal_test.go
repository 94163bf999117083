package node

import (
	"testing"

	"github.com/ksb-project/ksb/attest"
)

// TestShareProblem: every cause of a share not held by r counted holders
// gets its reason (the metric's label) and a message, and a share fully
// held, retired or superseded gets none (issue 9, item 1).
func TestShareProblem(t *testing.T) {
	const me, vault = "thor1me", "thorpub1vault"
	live := []attest.Vault{{PubKey: vault, Members: []string{me, "thor1b"}}}
	cu := func(status string, attested bool) attest.Custody {
		return attest.Custody{Status: status, Attested: attested, Holder: "thor1h"}
	}
	committed := shareRecord{Vault: vault, Version: version{Copies: 3, Commitment: 7}}
	for name, tc := range map[string]struct {
		vaults []attest.Vault
		active bool
		rec    shareRecord
		c      attest.Commitment
		found  bool
		want   string
	}{
		"not active":        {live, false, committed, attest.Commitment{}, false, reasonNotActive},
		"vault unknown":     {nil, true, shareRecord{Vault: vault, Version: version{Copies: 3}}, attest.Commitment{}, false, reasonVaultUnknown},
		"not a member":      {[]attest.Vault{{PubKey: vault, Members: []string{"thor1b"}}}, true, shareRecord{Vault: vault, Version: version{Copies: 3}}, attest.Commitment{}, false, reasonNotMember},
		"not committed yet": {live, true, shareRecord{Vault: vault, Version: version{Copies: 3}}, attest.Commitment{}, false, reasonNotCommitted},
		"commitment lost":   {live, true, committed, attest.Commitment{}, false, reasonNotCommitted},
		"no holders":        {live, true, committed, attest.Commitment{CommitmentInfo: attest.CommitmentInfo{Live: true}}, true, reasonNoHolders},
		"two of three assigned": {live, true, committed, attest.Commitment{CommitmentInfo: attest.CommitmentInfo{Live: true},
			Custodies: []attest.Custody{cu("fresh", true), cu("fresh", true), cu("failed", true)}}, true, reasonUnderAssigned},
		"one not attested": {live, true, committed, attest.Commitment{CommitmentInfo: attest.CommitmentInfo{Live: true},
			Custodies: []attest.Custody{cu("fresh", true), cu("fresh", true), cu("pending", false)}}, true, reasonNotCounted},
		"held in full": {live, true, committed, attest.Commitment{CommitmentInfo: attest.CommitmentInfo{Live: true},
			Custodies: []attest.Custody{cu("fresh", true), cu("failed", true), cu("stale", true), cu("fresh", true)}}, true, ""},
		"superseded":    {live, true, committed, attest.Commitment{}, true, ""},
		"vault retired": {[]attest.Vault{{PubKey: vault, Members: []string{me}, Retired: true}}, true, shareRecord{Vault: vault, Version: version{Copies: 3}}, attest.Commitment{}, false, ""},
	} {
		view := newChainView(nil, tc.vaults, nil)
		reason, problem := shareProblem(view, &selfState{Active: tc.active}, me, tc.rec, tc.c, tc.found)
		if reason != tc.want || (reason == "") != (problem == "") {
			t.Errorf("%s: reason %q problem %q, want reason %q", name, reason, problem, tc.want)
		}
	}
}
