package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestAdminRefusesForeignHost (issue 8.6): a page in the operator's browser
// that rebinds its own host name to 127.0.0.1 reaches the admin endpoint with
// that name in the Host header; the endpoint must refuse it and answer only
// requests for loopback names and addresses.
func TestAdminRefusesForeignHost(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	status := func(context.Context) (*Status, error) { return &Status{}, nil }
	a, err := listenAdmin("127.0.0.1:0", prometheus.NewRegistry(), status, func() error { return nil }, func(*http.ServeMux) {}, log)
	if err != nil {
		t.Fatal(err)
	}
	go a.serve(log)
	defer a.close(context.Background())
	_, port, err := net.SplitHostPort(a.Addr())
	if err != nil {
		t.Fatal(err)
	}

	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path, host string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+a.Addr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, host := range []string{
		"attacker.example", "attacker.example:" + port, "127.0.0.1.attacker.example:" + port,
		"localhost.attacker.example", "10.0.0.1:" + port, "0.0.0.0:" + port,
	} {
		for _, path := range []string{"/status", "/metrics", "/healthz"} {
			if code := get(path, host); code != http.StatusForbidden {
				t.Errorf("GET %s with Host %q: %d, want 403", path, host, code)
			}
		}
	}
	for _, host := range []string{
		"localhost", "LOCALHOST:" + port, "127.0.0.1", "127.0.0.1:" + port, "[::1]:" + port, "::1", "127.1.2.3:80",
	} {
		if code := get("/status", host); code != http.StatusOK {
			t.Errorf("GET /status with Host %q: %d, want 200", host, code)
		}
	}
}

// TestAdminHostOfListenAddress: the address the endpoint listens on is
// accepted as Host (`ksb status` sends admin.listen as it is configured),
// names still are not.
func TestAdminHostOfListenAddress(t *testing.T) {
	for _, c := range []struct {
		host   string
		listen net.IP
		ok     bool
	}{
		{"10.0.0.5:6541", net.ParseIP("10.0.0.5"), true},
		{"10.0.0.6:6541", net.ParseIP("10.0.0.5"), false},
		{"0.0.0.0:6541", net.IPv4zero, true},
		{"[::]:6541", net.IPv6unspecified, true},
		{"node.example:6541", net.IPv4zero, false},
		{"0.0.0.0:6541", net.ParseIP("127.0.0.1"), false},
		{"localhost:6541", net.ParseIP("10.0.0.5"), true},
	} {
		if got := localHost(c.host, c.listen); got != c.ok {
			t.Errorf("Host %q, listening on %v: accepted %v, want %v", c.host, c.listen, got, c.ok)
		}
	}
}
