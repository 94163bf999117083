package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// KeepKey's published THORChain vector (python-keepkey tests): this 12-word
// mnemonic at m/44'/931'/0'/0/0 gives tthor1ls33ayg26kmltw7jjy55p32ghjna09zp6z69y8.
const keepkeyMnemonic = "alcohol woman abuse must during monitor noble actual mixed trade anger aisle"

func TestKeysShowJSON(t *testing.T) {
	r := runKSB(t, []string{"KSB_MNEMONIC=" + keepkeyMnemonic}, "keys", "show", "--hrp", "tthor", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
	}
	if len(got) != 3 {
		t.Errorf("keys = %v, want exactly address, pubkey, peer_id", got)
	}
	if got["address"] != "tthor1ls33ayg26kmltw7jjy55p32ghjna09zp6z69y8" {
		t.Errorf("address = %q", got["address"])
	}
	if len(got["pubkey"]) != 66 || !strings.HasPrefix(got["peer_id"], "16Uiu2") {
		t.Errorf("pubkey %q / peer_id %q malformed", got["pubkey"], got["peer_id"])
	}
}

func TestKeysShowRefusesBadMnemonic(t *testing.T) {
	for name, env := range map[string][]string{
		"none":         nil,
		"bad checksum": {"KSB_MNEMONIC=" + strings.Replace(keepkeyMnemonic, "aisle", "abandon", 1)},
		"not a word":   {"KSB_MNEMONIC=" + strings.Replace(keepkeyMnemonic, "alcohol", "alcohols", 1)},
	} {
		t.Run(name, func(t *testing.T) {
			r := runKSB(t, env, "keys", "show")
			if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, "mnemonic") {
				t.Fatalf("exit %d, stdout %q, stderr %q: want a mnemonic error", r.code, r.stdout, r.stderr)
			}
		})
	}
}
