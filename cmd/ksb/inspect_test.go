package main_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// inspectFixture is THORChain go-tss test data: one party of a 4-party EdDSA
// keygen.
const (
	inspectFixture = "testdata/keyshare-go-tss-eddsa.json"
	inspectVault   = "thorpub1zcjduepq665vjeq34n7ccpvdl8t6akgls3c6u2uq242vpag2d9knstxymxfqq2ufwe"
)

func TestInspectJSON(t *testing.T) {
	r := runKSB(t, nil, "inspect", inspectFixture, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
	}
	want := map[string]any{"kind": "go-tss", "algorithm": "eddsa", "vault_pubkey": inspectVault, "parties": 4.0}
	if len(got) != len(want) {
		t.Errorf("keys %v, want exactly kind, algorithm, vault_pubkey, parties", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
}

func TestInspectText(t *testing.T) {
	r := runKSB(t, nil, "inspect", inspectFixture)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, line := range []string{"kind:         go-tss", "algorithm:    eddsa", "vault_pubkey: " + inspectVault, "parties:      4"} {
		if !strings.Contains(r.stdout, line+"\n") {
			t.Errorf("output lacks %q:\n%s", line, r.stdout)
		}
	}
}

// secrets returns the fixture's secret share Xi (as decimal digits) and its
// encoded local_data, neither of which may ever be printed.
func secrets(t *testing.T, file []byte) []string {
	t.Helper()
	var f struct {
		LocalData []byte `json:"local_data"`
	}
	if err := json.Unmarshal(file, &f); err != nil {
		t.Fatal(err)
	}
	var sd struct{ Xi json.Number }
	if err := json.Unmarshal(f.LocalData, &sd); err != nil || len(sd.Xi) < 40 {
		t.Fatalf("fixture Xi %q: %v", sd.Xi, err)
	}
	return []string{string(sd.Xi), sd.Xi.String()[:20], base64.StdEncoding.EncodeToString(f.LocalData)[:40]}
}

func TestInspectNeverPrintsSecrets(t *testing.T) {
	data, err := os.ReadFile(inspectFixture)
	if err != nil {
		t.Fatal(err)
	}
	secret := secrets(t, data)
	// A file refused late, after its secrets were decoded: the vault key does
	// not match local_data.
	tampered := filepath.Join(t.TempDir(), "tampered.json")
	bad := strings.Replace(string(data), inspectVault, "thorpub1addwnpepqgudlwpmp78qk5q3xhm4nhvys2y0h8grq5vqw654jpetg98x4w7ycf0rzzr", 1)
	if err := os.WriteFile(tampered, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"inspect", inspectFixture},
		{"inspect", inspectFixture, "--json"},
		{"inspect", tampered},
	} {
		r := runKSB(t, nil, args...)
		for _, s := range secret {
			if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
				t.Errorf("ksb %v printed secret material %q", args, s)
			}
		}
	}
	if r := runKSB(t, nil, "inspect", tampered); r.code == 0 || !strings.Contains(r.stderr, "pub_key") {
		t.Errorf("tampered file: exit %d, stderr %q; want a pub_key refusal", r.code, r.stderr)
	}
}

func TestInspectRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"garbage", []string{write("garbage.bin", "\x00\xffnot json")}, "not a keyshare file: malformed JSON"},
		{"empty", []string{write("empty.json", "")}, "not a keyshare file: empty"},
		{"other JSON", []string{write("config.json", `{"moniker": "node"}`)}, "not a keyshare file: neither go-tss"},
		{"truncated", []string{write("cut.json", `{"pub_key": "thorpub1`)}, "not a keyshare file: malformed JSON"},
		{"directory", []string{dir}, "not a keyshare file: not a regular file"},
		{"missing", []string{filepath.Join(dir, "nope.json")}, "no such file"},
		{"no argument", nil, "accepts 1 arg"},
		{"two arguments", []string{inspectFixture, inspectFixture}, "accepts 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runKSB(t, nil, append([]string{"inspect"}, tc.args...)...)
			if r.code == 0 || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q: want a refusal", r.code, r.stdout)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.stderr)
			}
		})
	}
}
