package main_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// sealMnemonic is a published BIP39 test vector (trezor/python-mnemonic)
// that passes the envelope's pre-seal checks.
const sealMnemonic = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"

// otherSealMnemonic is another published vector: the wrong mnemonic.
const otherSealMnemonic = "panda eyebrow bullet gorilla call smoke muffin taste mesh discover soft ostrich alcohol speed nation flash devote level hobby quick inner drive ghost inside"

var sealEnv = []string{"KSB_MNEMONIC=" + sealMnemonic}

// lowWF seals quickly; the flag pair is what the CLI requires for it.
var lowWF = []string{"--work-factor", "10", "--insecure-work-factor"}

const shareFixture = "testdata/keyshare-go-tss-eddsa.json"

func fixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(shareFixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entries lists a directory, to prove a refusal left nothing behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func wantFailure(t *testing.T, r result, stderrHas ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want failure; stdout %q", r.stdout)
	}
	for _, s := range stderrHas {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr %q lacks %q", r.stderr, s)
		}
	}
}

func wantMode0600(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
}

// sealFixture seals the fixture into dir/share.age at a low work factor.
func sealFixture(t *testing.T, dir string) string {
	t.Helper()
	blob := filepath.Join(dir, "share.age")
	r := runKSB(t, sealEnv, append([]string{"seal", shareFixture, "-o", blob}, lowWF...)...)
	if r.code != 0 {
		t.Fatalf("seal: exit %d: %s", r.code, r.stderr)
	}
	return blob
}

// At the default work factor, so the defaults are what is tested end to end.
func TestSealOpenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	blob := filepath.Join(dir, "share.age")
	r := runKSB(t, sealEnv, "seal", shareFixture, "-o", blob)
	if r.code != 0 {
		t.Fatalf("seal: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "go-tss eddsa") || !strings.Contains(r.stdout, "work factor 18") {
		t.Errorf("seal output %q", r.stdout)
	}
	sealed, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sealed, []byte("age-encryption.org/v1\n-> scrypt ")) || !bytes.Contains(sealed[:80], []byte(" 18\n")) {
		t.Fatalf("blob header %q", sealed[:80])
	}
	wantMode0600(t, blob)

	out := filepath.Join(dir, "localstate.json")
	r = runKSB(t, sealEnv, "open", blob, "-o", out)
	if r.code != 0 {
		t.Fatalf("open: exit %d: %s", r.code, r.stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fixture(t)) {
		t.Fatal("opened file differs from the sealed one")
	}
	wantMode0600(t, out)
	if !strings.Contains(r.stdout, "go-tss eddsa") {
		t.Errorf("open output %q", r.stdout)
	}
	if names := entries(t, dir); len(names) != 2 {
		t.Errorf("directory holds %v, want only the blob and the share", names)
	}
}

func TestSealRefusals(t *testing.T) {
	notShare := filepath.Join(t.TempDir(), "notes.json")
	if err := os.WriteFile(notShare, []byte(`{"hello":"world"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		env    []string
		args   []string
		stderr []string
	}{
		"low work factor without flag": {sealEnv, []string{shareFixture, "--work-factor", "10"}, []string{"--insecure-work-factor"}},
		"work factor above maximum":    {sealEnv, []string{shareFixture, "--work-factor", "21"}, []string{"invalid options", "21"}},
		"work factor zero":             {sealEnv, []string{shareFixture, "--work-factor", "0", "--insecure-work-factor"}, []string{"at least 1"}},
		"not a keyshare":               {sealEnv, []string{notShare}, []string{"not a keyshare"}},
		"missing input":                {sealEnv, []string{"no-such-file.json"}, []string{"no-such-file.json"}},
		"12-word mnemonic":             {[]string{"KSB_MNEMONIC=" + keepkeyMnemonic}, []string{shareFixture}, []string{"mnemonic refused", "12 words"}},
		"weak 24-word mnemonic": {
			[]string{"KSB_MNEMONIC=" + strings.Repeat("abandon ", 23) + "art"},
			[]string{shareFixture}, []string{"mnemonic refused", "entropy"},
		},
		"no mnemonic": {nil, []string{shareFixture}, []string{"no mnemonic"}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "share.age")
			r := runKSB(t, c.env, append(append([]string{"seal"}, c.args...), "-o", out)...)
			wantFailure(t, r, c.stderr...)
			if names := entries(t, dir); len(names) != 0 {
				t.Fatalf("refusal left %v behind", names)
			}
		})
	}
}

func TestSealRequiresOutput(t *testing.T) {
	wantFailure(t, runKSB(t, sealEnv, "seal", shareFixture), "output")
}

func TestSealRefusesExistingOutput(t *testing.T) {
	dir := t.TempDir()
	blob := sealFixture(t, dir)
	before, _ := os.ReadFile(blob)
	r := runKSB(t, sealEnv, append([]string{"seal", shareFixture, "-o", blob}, lowWF...)...)
	wantFailure(t, r, "exists", "--force")
	if after, _ := os.ReadFile(blob); !bytes.Equal(before, after) {
		t.Fatal("existing output was changed")
	}

	// Even --force does not let seal replace its own input.
	in := filepath.Join(dir, "share.json")
	if err := os.WriteFile(in, fixture(t), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runKSB(t, sealEnv, append([]string{"seal", in, "-o", in, "--force"}, lowWF...)...)
	wantFailure(t, r, "output is the input")
	if got, _ := os.ReadFile(in); !bytes.Equal(got, fixture(t)) {
		t.Fatal("the input was overwritten")
	}
}

func TestOpenRefusals(t *testing.T) {
	dir := t.TempDir()
	blob := sealFixture(t, dir)
	sealed, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.age")
	if err := os.WriteFile(truncated, sealed[:len(sealed)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		env    []string
		blob   string
		stderr []string
	}{
		"wrong mnemonic":  {[]string{"KSB_MNEMONIC=" + otherSealMnemonic}, blob, []string{"wrong mnemonic"}},
		"truncated blob":  {sealEnv, truncated, []string{"corrupted"}},
		"not an age file": {sealEnv, shareFixture, []string{"not a binary age file"}},
		"missing blob":    {sealEnv, filepath.Join(dir, "nope.age"), []string{"nope.age"}},
		"no mnemonic":     {nil, blob, []string{"no mnemonic"}},
	} {
		t.Run(name, func(t *testing.T) {
			outDir := t.TempDir()
			r := runKSB(t, c.env, "open", c.blob, "-o", filepath.Join(outDir, "share.json"))
			wantFailure(t, r, c.stderr...)
			if names := entries(t, outDir); len(names) != 0 {
				t.Fatalf("refusal left %v behind", names)
			}
		})
	}
}

func TestOpenRefusesExistingOutputUnlessForced(t *testing.T) {
	dir := t.TempDir()
	blob := sealFixture(t, dir)
	out := filepath.Join(dir, "share.json")
	if err := os.WriteFile(out, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runKSB(t, sealEnv, "open", blob, "-o", out)
	wantFailure(t, r, "exists", "--force")
	if got, _ := os.ReadFile(out); string(got) != "keep me" {
		t.Fatalf("existing output changed to %q", got)
	}

	r = runKSB(t, sealEnv, "open", blob, "-o", out, "--force")
	if r.code != 0 {
		t.Fatalf("open --force: exit %d: %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, fixture(t)) {
		t.Fatal("--force did not write the share")
	}
	wantMode0600(t, out)
	if names := entries(t, dir); len(names) != 2 {
		t.Errorf("directory holds %v, want only the blob and the share", names)
	}
}

// A backup made with stock tools, `xz | age -p` typing the mnemonic, opens
// with ksb open. age reads the passphrase from its terminal, so it runs on a
// pseudo-terminal here.
func TestOpenStockAgePassphraseFile(t *testing.T) {
	for _, tool := range []string{"age", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps` (installs Debian's age and xz-utils): %v", tool, err)
		}
	}
	dir := t.TempDir()
	var z bytes.Buffer
	xzCmd := exec.Command("xz", "-c", shareFixture)
	xzCmd.Stdout = &z
	if err := xzCmd.Run(); err != nil {
		t.Fatalf("xz: %v", err)
	}
	blob := filepath.Join(dir, "stock.age")
	f, err := os.Create(blob)
	if err != nil {
		t.Fatal(err)
	}
	agePassphrase(t, &z, f, sealMnemonic, "-p")
	f.Close()

	out := filepath.Join(dir, "share.json")
	r := runKSB(t, sealEnv, "open", blob, "-o", out)
	if r.code != 0 {
		t.Fatalf("open: exit %d: %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, fixture(t)) {
		t.Fatal("opened file differs from the original")
	}
}

// ageTimeout bounds the age run: it takes about a second at work factor 18;
// a minute leaves room for a loaded machine and turns a stuck prompt into a
// failure instead of a hang.
const ageTimeout = time.Minute

// agePassphrase runs `age -p` with stdin and stdout on a pseudo-terminal that
// is its controlling terminal, and types pass at both of its prompts.
func agePassphrase(t *testing.T, stdin io.Reader, stdout io.Writer, pass string, args ...string) {
	t.Helper()
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pty: %v", err)
	}
	defer ptm.Close()
	cmd := exec.Command("age", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 2}
	if err := cmd.Start(); err != nil {
		tty.Close()
		t.Fatalf("starting age: %v", err)
	}
	tty.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var mu sync.Mutex
	var term bytes.Buffer
	more := make(chan struct{}, 1)
	go func() {
		b := make([]byte, 1024)
		for {
			n, err := ptm.Read(b)
			mu.Lock()
			term.Write(b[:n])
			mu.Unlock()
			select {
			case more <- struct{}{}:
			default:
			}
			if err != nil {
				close(more)
				return
			}
		}
	}()
	seen := func() string { mu.Lock(); defer mu.Unlock(); return term.String() }
	deadline := time.After(ageTimeout)
	// age -p asks for the passphrase, then to confirm it.
	for i := 1; i <= 2; i++ {
		for strings.Count(seen(), "passphrase") < i {
			select {
			case _, ok := <-more:
				if !ok {
					t.Fatalf("age closed its terminal before prompt %d: %q", i, seen())
				}
			case err := <-exited:
				t.Fatalf("age exited before prompt %d: %v: %q", i, err, seen())
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("age: no prompt %d within %v: %q", i, ageTimeout, seen())
			}
		}
		if _, err := io.WriteString(ptm, pass+"\n"); err != nil {
			t.Fatalf("typing the passphrase: %v", err)
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("age: %v: %q", err, seen())
		}
	case <-deadline:
		_ = cmd.Process.Kill()
		t.Fatalf("age did not finish within %v: %q", ageTimeout, seen())
	}
}
