package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/recovery/recoverytest"
)

// Issue 9's process tests of the operator experience: each runs the ksb
// binary as an operator would.

// writeMnemonic writes text to a new file with mode perm.
func writeMnemonic(t *testing.T, text string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mnemonic")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantNoWord fails if out quotes any word of mnemonic.
func wantNoWord(t *testing.T, out, mnemonic string) {
	t.Helper()
	for _, w := range strings.Fields(mnemonic) {
		if w == "word" { // a word of sealMnemonic and of every message
			continue
		}
		if regexp.MustCompile(`\b` + w + `\b`).MatchString(out) {
			t.Errorf("output quotes the mnemonic word %q:\n%s", w, out)
		}
	}
}

// TestMnemonicFilePermissions is item 5: a mnemonic file its group or others
// can read is a warning for `ksb keys show`, and `ksb node` refuses it unless
// --allow-insecure-mnemonic-file, as ssh does with keys.
func TestMnemonicFilePermissions(t *testing.T) {
	open := writeMnemonic(t, sealMnemonic+"\n", 0o644)
	r := runKSB(t, nil, "keys", "show", "--mnemonic-file", open)
	if r.code != 0 || !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "mode 0644") || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("keys show, mode 0644: exit %d, stderr %q; want a warning naming the mode", r.code, r.stderr)
	}
	private := writeMnemonic(t, sealMnemonic+"\n", 0o600)
	if r := runKSB(t, nil, "keys", "show", "--mnemonic-file", private); r.code != 0 || r.stderr != "" {
		t.Fatalf("keys show, mode 0600: exit %d, stderr %q; want no warning", r.code, r.stderr)
	}

	home := t.TempDir()
	os.WriteFile(filepath.Join(home, config.FileName), nil, 0o600) // every setting at its default
	// A 12-word mnemonic cannot seal: `ksb node` stops right after reading
	// it, which shows whether it got past the permission check.
	mfile := filepath.Join(home, "mnemonic")
	os.WriteFile(mfile, []byte(keepkeyMnemonic+"\n"), 0o600)
	os.Chmod(mfile, 0o640)
	r = runKSB(t, nil, "node", "--home", home)
	if r.code == 0 || !strings.Contains(r.stderr, "mode 0640") || !strings.Contains(r.stderr, "--allow-insecure-mnemonic-file") || strings.Contains(r.stderr, "cannot seal") {
		t.Fatalf("node, mode 0640: exit %d, stderr %q; want a refusal naming the mode and the flag", r.code, r.stderr)
	}
	r = runKSB(t, nil, "node", "--home", home, "--allow-insecure-mnemonic-file")
	if r.code == 0 || !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "mode 0640") || !strings.Contains(r.stderr, "cannot seal backups") {
		t.Fatalf("node --allow-insecure-mnemonic-file: exit %d, stderr %q; want a warning, then the 12-word refusal", r.code, r.stderr)
	}
}

// TestMnemonicOnArgv is item 12: mnemonic words given as arguments are
// refused without echoing any of them, pointing to --mnemonic-file; and
// `--mnemonic-file -` reads standard input.
func TestMnemonicOnArgv(t *testing.T) {
	words := strings.Fields(sealMnemonic)
	for name, args := range map[string][]string{
		"keys show + 24 words":   append([]string{"keys", "show"}, words...),
		"keys show + 1 word":     {"keys", "show", words[0]},
		"root + 24 words":        words,
		"recover + 12 words":     append([]string{"recover", "--out", t.TempDir()}, words[:12]...),
		"seal + words and flags": append([]string{"seal", "-o", filepath.Join(t.TempDir(), "x")}, words...),
		"four-letter words":      {"keys", "show", "hams", "diag", "priv", "dutc"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runKSB(t, nil, args...)
			if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, "--mnemonic-file") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want a refusal pointing to --mnemonic-file", r.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stderr, "unknown command") {
				t.Errorf("stderr %q: cobra's echo", r.stderr)
			}
			wantNoWord(t, r.stderr, sealMnemonic+" hams diag priv dutc")
		})
	}

	want := keysShow(t, []string{"KSB_MNEMONIC=" + sealMnemonic})
	r := runKSBInput(t, strings.NewReader(sealMnemonic+"\n"), nil, "keys", "show", "--json", "--mnemonic-file", "-")
	if r.code != 0 {
		t.Fatalf("--mnemonic-file -: exit %d: %s", r.code, r.stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got["address"] != want["address"] {
		t.Fatalf("--mnemonic-file -: %q, %v; want address %s", r.stdout, err, want["address"])
	}
}

func keysShow(t *testing.T, env []string, args ...string) map[string]string {
	t.Helper()
	r := runKSB(t, env, append([]string{"keys", "show", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("keys show %v: exit %d: %s", args, r.code, r.stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("keys show: %v: %q", err, r.stdout)
	}
	return got
}

// TestMnemonicSpellingsCLI is items 13–15 through the binary: a numbered,
// abbreviated file with a byte-order mark gives the same identity as the
// canonical mnemonic, and an invisible character is named.
func TestMnemonicSpellingsCLI(t *testing.T) {
	want := keysShow(t, []string{"KSB_MNEMONIC=" + sealMnemonic})
	var b strings.Builder
	b.WriteString("\ufeff")
	for i, w := range strings.Fields(sealMnemonic) {
		if len(w) > 4 {
			w = w[:4]
		}
		fmt.Fprintf(&b, "%d) %s\r\n", i+1, strings.ToUpper(w))
	}
	got := keysShow(t, nil, "--mnemonic-file", writeMnemonic(t, b.String(), 0o600))
	if got["address"] != want["address"] || got["peer_id"] != want["peer_id"] {
		t.Fatalf("numbered, abbreviated: %v; want %v", got, want)
	}
	r := runKSB(t, []string{"KSB_MNEMONIC=" + strings.Replace(sealMnemonic, "toddler", "tod\u200bdler", 1)}, "keys", "show")
	if r.code == 0 || !strings.Contains(r.stderr, "word 10 contains an invisible character, U+200B ZERO WIDTH SPACE") {
		t.Fatalf("zero-width space: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestKeysShowHRP is item 16: --hrp follows bech32's rules, and an empty one
// is refused instead of silently becoming thor.
func TestKeysShowHRP(t *testing.T) {
	env := []string{"KSB_MNEMONIC=" + sealMnemonic}
	for _, bad := range []string{"th or", "", "THOR", "thör", strings.Repeat("t", identity.MaxHRPLen+1)} {
		r := runKSB(t, env, "keys", "show", "--hrp", bad)
		if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, "--hrp") {
			t.Errorf("--hrp %q: exit %d, stdout %q, stderr %q; want a refusal", bad, r.code, r.stdout, r.stderr)
		}
	}
	got := keysShow(t, env, "--hrp", "tthor")
	if hrp, _, err := identity.ParseAddress(got["address"]); err != nil || hrp != "tthor" {
		t.Fatalf("--hrp tthor: %v (%q, %v)", got, hrp, err)
	}
}

// TestKeysShowShortMnemonic is item 17: a valid 12- or 18-word mnemonic is
// shown, with a warning that it cannot seal backups.
func TestKeysShowShortMnemonic(t *testing.T) {
	eighteen := "letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter always" // trezor vector
	for _, m := range []string{keepkeyMnemonic, eighteen} {
		r := runKSB(t, []string{"KSB_MNEMONIC=" + m}, "keys", "show")
		n := len(strings.Fields(m))
		if r.code != 0 || !strings.Contains(r.stdout, "address:") || !strings.Contains(r.stderr, "warning") ||
			!strings.Contains(r.stderr, "cannot seal backups") || !strings.Contains(r.stderr, fmt.Sprintf("%d words", n)) {
			t.Errorf("%d words: exit %d, stdout %q, stderr %q; want the identity and a warning", n, r.code, r.stdout, r.stderr)
		}
	}
	if r := runKSB(t, []string{"KSB_MNEMONIC=" + sealMnemonic}, "keys", "show"); r.code != 0 || r.stderr != "" {
		t.Errorf("24 words: exit %d, stderr %q; want no warning", r.code, r.stderr)
	}
}

// TestOpenHighWorkFactor is item 18: testdata/age-p-wf21.age was made as
// rage or `age -p` make files on a fast machine, with scrypt work factor 21:
//
//	xz -c testdata/keyshare-go-tss-eddsa.json | <age.ScryptRecipient, SetWorkFactor(21), passphrase sealMnemonic>
//
// `ksb open` refuses it by default, naming the flag that raises the cap, and
// opens it with --max-work-factor 21 (2 GiB of memory for a few seconds).
func TestOpenHighWorkFactor(t *testing.T) {
	const blob = "testdata/age-p-wf21.age"
	out := filepath.Join(t.TempDir(), "share.json")
	r := runKSB(t, sealEnv, "open", blob, "-o", out)
	if r.code == 0 || !strings.Contains(r.stderr, "work factor 21") || !strings.Contains(r.stderr, "--max-work-factor 21") {
		t.Fatalf("default cap: exit %d, stderr %q; want a refusal naming --max-work-factor 21", r.code, r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("refusal left %s behind", out)
	}
	r = runKSB(t, sealEnv, "open", blob, "-o", out, "--max-work-factor", "23")
	if r.code == 0 || !strings.Contains(r.stderr, "22") {
		t.Fatalf("--max-work-factor 23: exit %d, stderr %q; want a refusal naming the highest, 22", r.code, r.stderr)
	}
	r = runKSB(t, sealEnv, "open", blob, "-o", out, "--max-work-factor", "21")
	if r.code != 0 {
		t.Fatalf("--max-work-factor 21: exit %d: %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, fixture(t)) {
		t.Fatal("opened file differs from the original")
	}
}

// TestVersion is item 8: --version names the module version, the commit,
// the Go version and the versions of libp2p, CometBFT, Badger and age, as
// go.mod requires them.
func TestVersion(t *testing.T) {
	r := runKSB(t, nil, "--version")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range []string{"github.com/libp2p/go-libp2p", "github.com/cometbft/cometbft", "github.com/dgraph-io/badger/v4", "filippo.io/age"} {
		m := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(dep) + ` (v\S+)`).FindStringSubmatch(string(mod))
		if m == nil {
			t.Fatalf("%s not in go.mod", dep)
		}
		if !strings.Contains(r.stdout, dep+" "+m[1]) {
			t.Errorf("--version lacks %s %s:\n%s", dep, m[1], r.stdout)
		}
	}
	if c := gitCommit(); c != "" && os.Getenv("KSB_TEST_BINARY") == "" && !strings.Contains(r.stdout, "commit   "+c) {
		t.Errorf("--version lacks the commit %s:\n%s", c, r.stdout)
	}
	for _, want := range []string{"ksb ", "github.com/ksb-project/ksb", "commit", "go1."} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--version lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestInit is item 9: `ksb init` writes a documented config.toml that loads
// with the given settings, the home and data directories with private modes,
// says what to do next, and never overwrites.
func TestInit(t *testing.T) {
	home := filepath.Join(t.TempDir(), "ksb")
	args := []string{"init", "--home", home, "--chain-rpc", "http://10.1.2.3:26657",
		"--listen", "/ip4/0.0.0.0/tcp/7540", "--listen", "/ip4/0.0.0.0/udp/7540/quic-v1"}
	r := runKSB(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	path := filepath.Join(home, config.FileName)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the written config does not load: %v", err)
	}
	want := config.Default()
	want.Chain.RPC = "http://10.1.2.3:26657"
	want.P2P.Listen = []string{"/ip4/0.0.0.0/tcp/7540", "/ip4/0.0.0.0/udp/7540/quic-v1"}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Fatalf("config\n%+v\nwant\n%+v", cfg, want)
	}
	for p, mode := range map[string]os.FileMode{
		home: 0o700, path: 0o600,
		filepath.Join(home, "data"): 0o700, filepath.Join(home, "keyshares"): 0o700,
	} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, want mode %o", p, err, mode)
		}
	}
	// Every setting is documented: a comment before each key.
	text, _ := os.ReadFile(path)
	lines := strings.Split(string(text), "\n")
	keys := 0
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		keys++
		if i == 0 || !strings.HasPrefix(lines[i-1], "#") {
			t.Errorf("setting %q has no comment above it", l)
		}
	}
	if keys < 20 {
		t.Errorf("%d settings written; want every setting", keys)
	}
	for _, next := range []string{filepath.Join(home, "mnemonic"), "chmod 600", "ksb keys show", "ksb node --home " + home} {
		if !strings.Contains(r.stdout, next) {
			t.Errorf("next steps lack %q:\n%s", next, r.stdout)
		}
	}

	// Never overwrites.
	os.WriteFile(path, append(text, []byte("# edited by the operator\n")...), 0o600)
	r = runKSB(t, nil, args...)
	if r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("second init: exit %d, stderr %q; want a refusal", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(path); !bytes.HasSuffix(after, []byte("# edited by the operator\n")) {
		t.Fatal("second init changed the config")
	}
	// Bad values are refused before anything is written.
	other := filepath.Join(t.TempDir(), "other")
	for _, bad := range [][]string{
		{"--listen", "not-a-multiaddr"},
		{"--chain-rpc", "ftp://x"},
		{"--hrp", "TH OR"},
	} {
		r = runKSB(t, nil, append([]string{"init", "--home", other}, bad...)...)
		if r.code == 0 {
			t.Errorf("init %v: exit 0", bad)
		}
		if _, err := os.Stat(other); !os.IsNotExist(err) {
			t.Errorf("init %v left %s behind", bad, other)
		}
	}
}

// nextSteps returns the lines of out that are commands ("  ksb …").
func commandLines(out string) [][]string {
	var cmds [][]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(l, "ksb ") {
			continue
		}
		if i := strings.Index(l, "#"); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		cmds = append(cmds, strings.Fields(l)[1:])
	}
	return cmds
}

// TestCoverageExitStatus is item 10: `ksb coverage` exits 2 while a live
// vault is not safe (with the table or JSON still printed), 0 once every
// vault is safe, 1 when it cannot ask; --exit-zero turns the check off.
func TestCoverageExitStatus(t *testing.T) {
	owner, err := identity.New(recoverMnemonic)
	if err != nil {
		t.Fatal(err)
	}
	share := fixture(t)
	info, err := keyshare.Parse(share)
	if err != nil {
		t.Fatal(err)
	}
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 3, Vaults: []string{info.VaultPubKey}})
	rpc := net.Chain.RPCURL()

	r := runKSB(t, nil, "coverage", "--rpc", rpc)
	if r.code != 2 || !hasLine(r.stdout, info.VaultPubKey, "no") || !strings.Contains(r.stderr, "not safe") {
		t.Fatalf("unsafe vault: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 2, the table and a note", r.code, r.stdout, r.stderr)
	}
	r = runKSB(t, nil, "coverage", "--rpc", rpc, "--json")
	var cov coverageJSON
	if r.code != 2 || json.Unmarshal([]byte(r.stdout), &cov) != nil || len(cov.Vaults) != 1 || cov.Vaults[0].Safe {
		t.Fatalf("unsafe vault --json: exit %d, stdout %q", r.code, r.stdout)
	}
	if r = runKSB(t, nil, "coverage", "--rpc", rpc, "--exit-zero"); r.code != 0 {
		t.Fatalf("--exit-zero: exit %d: %s", r.code, r.stderr)
	}

	net.Place(t, net.Commit(t, owner, recoverMnemonic, info.VaultPubKey, share))
	if r = runKSB(t, nil, "coverage", "--rpc", rpc); r.code != 0 || !hasLine(r.stdout, info.VaultPubKey, "yes") {
		t.Fatalf("safe vault: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r = runKSB(t, nil, "coverage", "--rpc", freeRPC(t)); r.code != 1 {
		t.Fatalf("unreachable chain: exit %d, want 1", r.code)
	}
}

// TestDevnetKeepCommandsWork is item 6: every command `ksb devnet --keep`
// prints works as printed while the devnet runs.
func TestDevnetKeepCommandsWork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "devnet.log")
	p := startProc(t, "devnet", log, "devnet", "--keep", "--nodes", "4", "--dir", filepath.Join(dir, "net"),
		"--work-factor", "10", "--insecure-work-factor")
	deadline := time.Now().Add(4 * time.Minute)
	var out string
	for {
		b, _ := os.ReadFile(log)
		out = string(b)
		if strings.Contains(out, "Ctrl-C stops it") && strings.Contains(out, "ksb status --home "+filepath.Join(dir, "net", "node3")) {
			break
		}
		select {
		case err := <-p.done:
			p.cmd = nil
			t.Fatalf("devnet exited: %v\n%s", err, out)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("devnet did not get to --keep:\n%s", out)
		}
	}
	kept := out[strings.Index(out, "Ctrl-C stops it"):]
	cmds := commandLines(kept)
	if len(cmds) < 5 {
		t.Fatalf("%d commands printed:\n%s", len(cmds), kept)
	}
	for _, args := range cmds {
		r := runKSB(t, nil, args...)
		if r.code != 0 {
			t.Errorf("ksb %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if err := p.signal(syscall.SIGINT); err != nil {
		t.Fatalf("devnet after SIGINT: %v\n%s", err, p.logTail())
	}
}
