package chaos

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/ksb-project/ksb/identity"
)

const (
	// exitTimeout bounds how long a process may take to exit after SIGKILL,
	// or after SIGTERM before it is killed: a clean stop of a node drains
	// pushes for up to p2p.PushTimeout plus the admin server, and a validator
	// drains its RPC (up to ~15 s), so a minute only expires on a hang.
	exitTimeout = time.Minute
	// killTimeout bounds the exit after SIGKILL: the kernel's work only.
	killTimeout = 10 * time.Second
)

// proc is one ksb process (the holder or the validator), restarted in place;
// its output of every start is appended to one log file.
type proc struct {
	name   string
	bin    string
	args   []string
	log    string
	starts int

	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	exitErr error         // cmd.Wait's error, once done is closed
	stopped bool          // SIGSTOPped and not continued
}

func newProc(name, bin, log string, args ...string) *proc {
	return &proc{name: name, bin: bin, args: args, log: log}
}

// start runs the process (again), appending a marker line and its output to
// the log file.
func (p *proc) start() error {
	if p.running() {
		return fmt.Errorf("%s is already running", p.name)
	}
	p.starts++
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== chaos: start %d of %s at %s\n", p.starts, p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = envWithout(identity.EnvVar)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	p.cmd, p.done, p.exitErr, p.stopped = cmd, make(chan struct{}), nil, false
	go func(cmd *exec.Cmd, done chan struct{}) {
		p.exitErr = cmd.Wait()
		close(done)
	}(cmd, p.done)
	return nil
}

// running reports whether the process was started and has not exited.
func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exited returns a channel closed when the current process exits (a closed
// channel if there is none).
func (p *proc) exited() <-chan struct{} {
	if p.cmd == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

func (p *proc) signal(sig syscall.Signal) error {
	if !p.running() {
		return fmt.Errorf("%s is not running", p.name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.name, sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	return nil
}

// kill SIGKILLs the process and waits for it to exit.
func (p *proc) kill() error {
	if !p.running() {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
		p.stopped = false
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("%s did not exit %v after SIGKILL", p.name, killTimeout)
	}
}

// terminate sends SIGTERM (after SIGCONT if frozen) and waits for a clean
// exit; a process that has not exited after exitTimeout is killed. It
// returns an error unless the process exited with status 0.
func (p *proc) terminate() error {
	if !p.running() {
		return nil
	}
	if p.stopped {
		p.signal(syscall.SIGCONT)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		p.kill()
		return fmt.Errorf("%s did not exit %v after SIGTERM; killed", p.name, exitTimeout)
	}
	if p.exitErr != nil {
		return fmt.Errorf("%s exited after SIGTERM: %w", p.name, p.exitErr)
	}
	return nil
}

// exitError describes how the process ended, once it has.
func (p *proc) exitError() error {
	if p.running() || p.cmd == nil {
		return nil
	}
	if p.exitErr == nil {
		return errors.New("exited with status 0")
	}
	return p.exitErr
}

// logTail returns the last n bytes of the log file.
func (p *proc) logTail(n int64) string {
	f, err := os.Open(p.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return indent(string(b))
}

// logScanner finds panics in a log file, reading only what was appended
// since the last scan.
type logScanner struct {
	path   string
	offset int64
	line   int
}

// maxPanicLines caps what one scan reports of a panic (its first lines; the
// log file has the rest).
const maxPanicLines = 8

// scan returns the lines appended since the last scan that mention a panic
// ("panic: …" of the runtime, a recovered "panic in RPC HTTP handler", …),
// with their line numbers. A line still being written is read next time.
func (s *logScanner) scan() ([]string, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(s.offset, io.SeekStart); err != nil {
		return nil, err
	}
	var found []string
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // EOF: an incomplete last line is read next time
		}
		s.offset += int64(len(line))
		s.line++
		if bytes.Contains(bytes.ToLower(line), []byte("panic")) && len(found) < maxPanicLines {
			l := strings.TrimSpace(string(line))
			if len(l) > 400 {
				l = l[:400] + "…"
			}
			found = append(found, fmt.Sprintf("%s:%d: %s", s.path, s.line, l))
		}
	}
	return found, nil
}

func envWithout(key string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, key+"=") {
			env = append(env, kv)
		}
	}
	return env
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    | " + strings.ReplaceAll(s, "\n", "\n    | ")
}
