package sim_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ksb-project/ksb/sim"
)

func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := sim.Run(ctx, sim.Config{
		Nodes: 8, Dir: t.TempDir(),
		BlockInterval: 200 * time.Millisecond, PollInterval: 300 * time.Millisecond,
		BatchInterval: 300 * time.Millisecond, HeartbeatInterval: time.Second,
		Progress: os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
}
