package attest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtnode "github.com/cometbft/cometbft/node"
	rpcserver "github.com/cometbft/cometbft/rpc/jsonrpc/server"
)

// rpcDrainMargin is added to CometBFT's timeout_broadcast_tx_commit (10 s by
// default) to bound how long Stop waits for RPC requests in flight: the
// slowest handler, broadcast_tx_commit, waits that long for its block; every
// other answers in milliseconds.
const rpcDrainMargin = 5 * time.Second

// rpcServer is the validator's CometBFT RPC, served by an http.Server this
// package owns rather than by the node. CometBFT v1.0.1's Node.OnStop only
// closes the RPC listeners and then closes the block, state and index
// stores, so a request already being answered — on a keep-alive connection,
// the listener being closed does not end it — reads a closed store and
// panics ("panic in RPC HTTP handler … pebble: closed"). Owning the server
// lets Embedded.Stop shut it down, waiting for the handlers in flight, before
// the node closes anything.
//
// It serves CometBFT's routes over HTTP: URI GETs and JSON-RPC POSTs,
// wrapped as CometBFT wraps them (body and batch limits, panic recovery). The
// /websocket endpoint (event subscriptions) is not served: no ksb tool uses
// it, and a hijacked connection's requests cannot be waited for.
type rpcServer struct {
	srv   *http.Server
	ln    net.Listener
	drain time.Duration
	done  chan struct{} // closed when Serve has returned
}

// startRPC listens on cfg.ListenAddress ("tcp://host:port") and serves the
// node's RPC routes there until shutdown.
func startRPC(n *cmtnode.Node, cfg *cmtcfg.RPCConfig, logger cmtlog.Logger) (*rpcServer, error) {
	env, err := n.ConfigureRPC()
	if err != nil {
		return nil, fmt.Errorf("configuring the RPC: %w", err)
	}
	sc := rpcserver.DefaultConfig()
	sc.MaxRequestBatchSize = cfg.MaxRequestBatchSize
	sc.MaxBodyBytes = cfg.MaxBodyBytes
	sc.MaxHeaderBytes = cfg.MaxHeaderBytes
	sc.MaxOpenConnections = cfg.MaxOpenConnections
	// As CometBFT does: broadcast_tx_commit must be able to answer.
	if sc.WriteTimeout <= cfg.TimeoutBroadcastTxCommit {
		sc.WriteTimeout = cfg.TimeoutBroadcastTxCommit + time.Second
	}
	rpcLogger := logger.With("module", "rpc-server")
	mux := http.NewServeMux()
	rpcserver.RegisterRPCFuncs(mux, env.GetRoutes(), rpcLogger)
	ln, err := rpcserver.Listen(cfg.ListenAddress, sc.MaxOpenConnections)
	if err != nil {
		return nil, fmt.Errorf("RPC: %w", err)
	}
	r := &rpcServer{
		ln:    ln,
		drain: cfg.TimeoutBroadcastTxCommit + rpcDrainMargin,
		done:  make(chan struct{}),
		srv: &http.Server{
			Handler:           rpcserver.PreChecksHandler(rpcserver.RecoverAndLogHandler(mux, rpcLogger), sc),
			ReadTimeout:       sc.ReadTimeout,
			ReadHeaderTimeout: sc.ReadTimeout,
			WriteTimeout:      sc.WriteTimeout,
			MaxHeaderBytes:    sc.MaxHeaderBytes,
		},
	}
	go func() {
		defer close(r.done)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rpcLogger.Error("RPC server stopped", "err", err)
		}
	}()
	return r, nil
}

// shutdown stops accepting connections and waits, at most r.drain, for the
// requests being answered; then it closes what is left. It reports whether
// every request finished.
func (r *rpcServer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.drain)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	if err != nil {
		r.srv.Close()
		err = fmt.Errorf("RPC requests still running after %v: %w", r.drain, err)
	}
	<-r.done
	return err
}
