package chaos

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

func digestOf(s string) *[32]byte {
	d := sha256.Sum256([]byte(s))
	return &d
}

// TestJudge: what the holder may return for a slot, given its history.
func TestJudge(t *testing.T) {
	a, b, c, x := digestOf("a"), digestOf("b"), digestOf("c"), digestOf("x")
	cases := []struct {
		name string
		s    slot
		got  *[32]byte
		bad  string // "" if accepted, else a word of the verdict
	}{
		{"nothing pushed, nothing held", slot{}, nil, ""},
		{"receipted and held", slot{current: a, receipted: true}, a, ""},
		{"receipted, lost", slot{current: a, receipted: true}, nil, "LOST a receipted blob"},
		{"receipted, older blob back", slot{current: b, receipted: true}, a, "instead of"},
		{"receipted, a later push without receipt landed", slot{current: a, receipted: true, pending: [][32]byte{*b, *c}}, c, ""},
		{"receipted, later push did not land", slot{current: a, receipted: true, pending: [][32]byte{*b}}, a, ""},
		{"receipted, unknown blob", slot{current: a, receipted: true, pending: [][32]byte{*b}}, x, "instead of"},
		{"never receipted, push landed", slot{pending: [][32]byte{*a}}, a, ""},
		{"never receipted, unknown blob", slot{pending: [][32]byte{*a}}, x, "no push"},
		{"stored without receipt, then lost", slot{current: a}, nil, "LOST a stored blob"},
	}
	for _, tc := range cases {
		got := tc.s.judge(tc.got)
		if (got == "") != (tc.bad == "") || !strings.Contains(got, tc.bad) {
			t.Errorf("%s: judge = %q, want %q", tc.name, got, tc.bad)
		}
	}
}

// TestCompareMovesSlots: a check moves each slot to what the holder holds,
// so a blob stored without a receipt must be kept from then on; a blob that
// does not hash to its digest is corrupt.
func TestCompareMovesSlots(t *testing.T) {
	o := &owner{idx: 1, slots: []*slot{{vault: "v0"}, {vault: "v1"}}}
	a := sha256.Sum256([]byte("a"))
	o.slots[0].pending = [][32]byte{a}
	fetched := []p2p.Fetched{{Entry: store.Entry{Vault: "v0", Digest: a, Size: 1}, Blob: []byte("a")}}
	now := time.Now()
	if v, ps := o.compare(fetched, now, now, true); v != 1 || len(ps) != 0 {
		t.Fatalf("compare = %d, %v", v, ps)
	}
	if o.slots[0].current == nil || *o.slots[0].current != a || o.slots[0].receipted {
		t.Fatalf("slot after check: %+v", o.slots[0])
	}
	// The holder loses it: a stored blob is gone.
	if _, ps := o.compare(nil, now, now, true); len(ps) != 1 || !strings.Contains(ps[0], "LOST a stored blob") {
		t.Fatalf("compare after loss = %v", ps)
	}
	// A blob whose bytes do not match its digest.
	bad := []p2p.Fetched{{Entry: store.Entry{Vault: "v0", Digest: a, Size: 1}, Blob: []byte("b")}}
	if _, ps := o.compare(bad, now, now, true); len(ps) != 1 || !strings.Contains(ps[0], "CORRUPT") {
		t.Fatalf("compare of a corrupt blob = %v", ps)
	}
	// A blob for a vault the owner never pushed.
	odd := []p2p.Fetched{{Entry: store.Entry{Vault: "v9", Digest: a, Size: 1}, Blob: []byte("a")}}
	if _, ps := o.compare(append(fetched, odd...), now, now, true); len(ps) != 1 || !strings.Contains(ps[0], "never pushed") {
		t.Fatalf("compare with a stray blob = %v", ps)
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule("kill, stop,chain-down")
	if err != nil || len(s) != 3 || s[0] != Kill || s[1] != Stop || s[2] != ChainDown {
		t.Fatalf("ParseSchedule = %v, %v", s, err)
	}
	if _, err := ParseSchedule("kill,nap"); err == nil {
		t.Fatal("ParseSchedule accepted an unknown fault")
	}
}
