package main_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// ksbBinary builds the ksb binary once per test process and returns its path.
// KSB_TEST_BINARY names a binary to test instead (to run these tests against
// another build, such as the code before a fix).
func ksbBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("KSB_TEST_BINARY"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "ksb-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ksb")
		// As make build does: the commit for --version, which the
		// toolchain does not record in a git worktree.
		cmd := exec.Command("go", "build", "-ldflags", "-X main.commit="+gitCommit(), "-o", binPath, ".")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building ksb: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

var (
	hooksOnce sync.Once
	hooksPath string
	hooksErr  error
	hooksOut  []byte
)

// ksbHooksBinary builds, once per test process, the ksb binary with the
// ksb_testhooks tag: its admin endpoint serves the test hooks (POST
// /debug/drop-copy makes a running holder lose a copy). KSB_TEST_HOOKS_BINARY
// names one to use instead.
func ksbHooksBinary(t testing.TB) string {
	t.Helper()
	hooksOnce.Do(func() {
		if p := os.Getenv("KSB_TEST_HOOKS_BINARY"); p != "" {
			hooksPath = p
			return
		}
		dir, err := os.MkdirTemp("", "ksb-hooks-bin-")
		if err != nil {
			hooksErr = err
			return
		}
		hooksPath = filepath.Join(dir, "ksb")
		cmd := exec.Command("go", "build", "-tags", "ksb_testhooks", "-o", hooksPath, ".")
		hooksOut, hooksErr = cmd.CombinedOutput()
	})
	if hooksErr != nil {
		t.Fatalf("building ksb with ksb_testhooks: %v\n%s", hooksErr, hooksOut)
	}
	return hooksPath
}

// gitCommit is the checked-out commit, or "" outside a git checkout.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(out))
}

// result is what one run of the binary did.
type result struct {
	stdout, stderr string
	code           int
}

// runKSB runs the ksb binary with args and extra environment variables
// (KEY=value) and returns its output and exit code. The parent's
// KSB_MNEMONIC is never inherited.
func runKSB(t testing.TB, env []string, args ...string) result {
	t.Helper()
	return runKSBInput(t, nil, env, args...)
}

// runKSBInput is runKSB with stdin as the command's standard input.
func runKSBInput(t testing.TB, stdin io.Reader, env []string, args ...string) result {
	t.Helper()
	return runBin(t, ksbBinary(t), stdin, env, args...)
}

// runBin is runKSBInput with the binary bin (ksbHooksBinary, say).
func runBin(t testing.TB, bin string, stdin io.Reader, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = stdin
	for _, kv := range os.Environ() {
		if !bytes.HasPrefix([]byte(kv), []byte("KSB_MNEMONIC=")) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running ksb %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}
