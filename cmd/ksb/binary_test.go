package main_test

import (
	"bytes"
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
func ksbBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ksb-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ksb")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building ksb: %v\n%s", buildErr, buildOut)
	}
	return binPath
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
	cmd := exec.Command(ksbBinary(t), args...)
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
