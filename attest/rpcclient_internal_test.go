package attest

import (
	"testing"

	rpcserver "github.com/cometbft/cometbft/rpc/jsonrpc/server"
)

// TestRPCClientIdleBelowServerIdle: a client must drop an idle connection
// before the server does, or a request sent as the server closes it fails
// with EOF (a written POST is not retried). CometBFT's RPC server, and
// rpcServer here, leave http.Server.IdleTimeout unset, so Go closes an idle
// connection after ReadTimeout.
func TestRPCClientIdleBelowServerIdle(t *testing.T) {
	serverIdle := rpcserver.DefaultConfig().ReadTimeout
	if RPCIdleConnTimeout <= 0 || 2*RPCIdleConnTimeout > serverIdle {
		t.Fatalf("clients keep idle connections %v, the server closes them after %v: want at most half", RPCIdleConnTimeout, serverIdle)
	}
}
