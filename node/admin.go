package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	// adminReadTimeout bounds how long a client may take to send a request to
	// the admin endpoint; it only serves tiny GETs on the loopback interface.
	adminReadTimeout = 5 * time.Second
	// adminWriteTimeout bounds building and sending a response; /status reads
	// the local store and asks the chain, which the chain client already bounds.
	adminWriteTimeout = 30 * time.Second
)

// adminServer serves /healthz, /status and /metrics.
type adminServer struct {
	srv *http.Server
	ln  net.Listener
}

// listenAdmin binds the admin endpoint; serve starts answering on it.
func listenAdmin(addr string, reg *prometheus.Registry, status func(context.Context) (*Status, error), healthy func() error, log *slog.Logger) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	a := &adminServer{
		ln: ln,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: adminReadTimeout,
			ReadTimeout:       adminReadTimeout,
			WriteTimeout:      adminWriteTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	return a, nil
}

// serve answers requests until close.
func (a *adminServer) serve(log *slog.Logger) {
	if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("admin server stopped", "err", err)
	}
}

// Addr is the address the admin endpoint listens on.
func (a *adminServer) Addr() string { return a.ln.Addr().String() }

func (a *adminServer) close(ctx context.Context) error {
	err := a.srv.Shutdown(ctx)
	a.ln.Close() // when serve never ran
	return err
}
