package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// WriteResult writes r as JSON to path: how a child process started by
// RunProcess hands its result back.
func WriteResult(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// ReadResults reads a JSON list of results (results.json of a sweep).
func ReadResults(path string) ([]*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rs []*Result
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

// RunProcess runs one size in a process of its own, so that its peak
// memory, CPU seconds, goroutines and file descriptors are its own and a
// size that exhausts the machine does not take the sweep down with it.
// cmd must run Run for nodes nodes and write the result with WriteResult
// to resultPath. A process that ends without a result (killed, out of
// memory) gives a Result with Error saying how it ended.
func RunProcess(ctx context.Context, cmd *exec.Cmd, nodes int, resultPath string) (*Result, error) {
	_ = os.Remove(resultPath)
	runErr := cmd.Run()
	b, err := os.ReadFile(resultPath)
	if err != nil {
		if runErr == nil {
			runErr = errors.New("exited without writing a result")
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &Result{Nodes: nodes, Error: fmt.Sprintf("the process of N = %d ended without a result: %v", nodes, runErr)}, nil
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("result of N = %d: %w", nodes, err)
	}
	if runErr != nil && r.Error == "" {
		r.Error = fmt.Sprintf("process ended: %v", runErr)
	}
	return &r, nil
}
