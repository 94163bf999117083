package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
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
// extra adds routes (the test hooks of a ksb_testhooks build).
func listenAdmin(addr string, reg *prometheus.Registry, status func(context.Context) (*Status, error), healthy func() error, extra func(*http.ServeMux), log *slog.Logger) (*adminServer, error) {
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
	extra(mux)
	var listenIP net.IP
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		listenIP = ta.IP
	}
	a := &adminServer{
		ln: ln,
		srv: &http.Server{
			Handler:           localOnly(listenIP, mux),
			ReadHeaderTimeout: adminReadTimeout,
			ReadTimeout:       adminReadTimeout,
			WriteTimeout:      adminWriteTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	return a, nil
}

// localOnly refuses, with 403 Forbidden, every request whose Host header is
// not this machine's: a loopback name or address (localhost, 127.0.0.0/8,
// ::1), with any port, or the IP address the endpoint listens on (as `ksb
// status` sends it, from admin.listen; 0.0.0.0 or :: when it listens on all
// addresses). A web page in the operator's browser can make it send requests
// to 127.0.0.1 under the page's own host name by DNS rebinding; the browser
// then sends that name as Host, and is refused, so the page cannot read
// /status (share paths, held blobs) or /metrics. An IP literal cannot be
// rebound, so the address the endpoint listens on is safe to accept.
func localOnly(listenIP net.IP, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !localHost(r.Host, listenIP) {
			http.Error(w, "the admin endpoint answers only requests for localhost", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// localHost reports whether host (a Host header: name or address, optional
// port) names this machine as localOnly accepts it.
func localHost(host string, listenIP net.IP) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return false
	case ip.IsLoopback():
		return true
	case listenIP == nil:
		return false
	case listenIP.IsUnspecified():
		return ip.IsUnspecified()
	}
	return ip.Equal(listenIP)
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
