package envelope_test

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

	"github.com/ksb-project/ksb/envelope"
)

// Interop with Debian's age (1.1.1) and xz-utils: the tools an operator has
// when ksb is gone. They are required, not optional: `make deps` installs
// them, and a missing tool fails the test.

// toolTimeout bounds one run of a stock tool. age at work factor 18 takes
// about a second; a minute leaves room for a loaded CI machine while making
// a stuck prompt fail the test instead of hanging it.
const toolTimeout = time.Minute

func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"age", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps` (installs Debian's age and xz-utils): %v", tool, err)
		}
	}
}

// transcript collects what a program writes to its terminal and signals each
// arrival.
type transcript struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{} // receives after every read
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.buf.String()
}

func (tr *transcript) copyFrom(r io.Reader) {
	b := make([]byte, 1024)
	for {
		n, err := r.Read(b)
		tr.mu.Lock()
		tr.buf.Write(b[:n])
		tr.mu.Unlock()
		select {
		case tr.more <- struct{}{}:
		default:
		}
		if err != nil {
			close(tr.more)
			return
		}
	}
}

// runAge runs age with args, stdin and stdout, on a pseudo-terminal that is
// its controlling terminal (age reads passphrases from /dev/tty). It answers
// each of the prompts it expects with pass, waiting for the prompt first.
func runAge(t *testing.T, stdin io.Reader, stdout io.Writer, pass string, prompts int, args ...string) {
	t.Helper()
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pty: %v", err)
	}
	defer ptm.Close()
	cmd := exec.Command("age", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, tty
	// A new session whose controlling terminal is the pty (fd 2 in the child).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 2}
	if err := cmd.Start(); err != nil {
		tty.Close()
		t.Fatalf("starting age: %v", err)
	}
	tty.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	tr := &transcript{more: make(chan struct{}, 1)}
	go tr.copyFrom(ptm)
	deadline := time.NewTimer(toolTimeout)
	defer deadline.Stop()
	fail := func(format string, a ...any) {
		t.Helper()
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("age %v: "+format+"\nterminal: %q", append(append([]any{args}, a...), tr.String())...)
	}
	for i := 1; i <= prompts; i++ {
		for strings.Count(tr.String(), "passphrase") < i {
			select {
			case _, ok := <-tr.more:
				if !ok {
					fail("terminal closed before prompt %d", i)
				}
			case err := <-exited:
				t.Fatalf("age %v exited before prompt %d: %v\nterminal: %q", args, i, err, tr.String())
			case <-deadline.C:
				fail("no prompt %d within %v", i, toolTimeout)
			}
		}
		if _, err := io.WriteString(ptm, pass+"\n"); err != nil {
			fail("typing the passphrase: %v", err)
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("age %v: %v\nterminal: %q", args, err, tr.String())
		}
	case <-deadline.C:
		fail("did not finish within %v", toolTimeout)
	}
}

// stockOpen runs `age -d blob | xz -d` and returns what xz writes.
func stockOpen(t *testing.T, blob []byte, pass string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.age")
	if err := os.WriteFile(path, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, xzErr bytes.Buffer
	xzCmd := exec.Command("xz", "-d")
	xzCmd.Stdin, xzCmd.Stdout, xzCmd.Stderr = pr, &out, &xzErr
	if err := xzCmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	runAge(t, nil, pw, pass, 1, "-d", path)
	pw.Close() // age has exited: xz sees the end of its input
	if err := xzCmd.Wait(); err != nil {
		t.Fatalf("xz -d: %v: %s", err, xzErr.String())
	}
	return out.Bytes()
}

// stockSealCLI runs `xz | age -p` on plaintext, typing pass twice.
func stockSealCLI(t *testing.T, plaintext []byte, pass string) []byte {
	t.Helper()
	var z, xzErr bytes.Buffer
	xzCmd := exec.Command("xz", "-c")
	xzCmd.Stdin, xzCmd.Stdout, xzCmd.Stderr = bytes.NewReader(plaintext), &z, &xzErr
	if err := xzCmd.Run(); err != nil {
		t.Fatalf("xz: %v: %s", err, xzErr.String())
	}
	var blob bytes.Buffer
	runAge(t, bytes.NewReader(z.Bytes()), &blob, pass, 2, "-p")
	return blob.Bytes()
}

func TestInteropSealOpensWithStockAgeAndXZ(t *testing.T) {
	requireTools(t)
	in := testdata(t, "tsslib-ecdsa.json")
	blob := seal(t, in, fast)
	if out := stockOpen(t, blob, testMnemonic); !bytes.Equal(out, in) {
		t.Fatalf("age -d | xz -d gave %d bytes, differ from the %d sealed", len(out), len(in))
	}
	// Every copy SealCopies makes for the holders opens the same way.
	for i, c := range sealCopies(t, in, 3, fast) {
		if out := stockOpen(t, c, testMnemonic); !bytes.Equal(out, in) {
			t.Fatalf("copy %d: age -d | xz -d gave %d bytes, differ from the %d sealed", i, len(out), len(in))
		}
	}
}

// age's CLI always uses work factor 18, so this is the interop test at the
// default work factor.
func TestInteropStockAgePassphraseFileOpens(t *testing.T) {
	requireTools(t)
	in := testdata(t, "gotss-ecdsa.json")
	blob := stockSealCLI(t, in, testMnemonic)
	if _, wf := stanza(t, blob); wf != "18" {
		t.Fatalf("age -p wrote work factor %s, expected 18", wf)
	}
	out, err := envelope.Open(blob, testMnemonic, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(out, in) {
		t.Fatal("opened plaintext differs")
	}
}
