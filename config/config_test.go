package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/config"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), config.FileName)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEmptyFileIsTheDefault(t *testing.T) {
	c, err := config.Load(write(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, config.Default()) {
		t.Fatalf("empty file gave %+v", c)
	}
}

func TestWriteLoadRoundTrip(t *testing.T) {
	c := config.Default()
	c.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/1"}
	c.P2P.Bootstrap = []string{"/ip4/127.0.0.1/tcp/2/p2p/16Uiu2HAmE5MQwafKEkn7GiobBdMJkvnWVKMBzh58vrSn1f7ueJqQ"}
	c.Chain.PollInterval = config.Duration{Duration: 1500 * time.Millisecond}
	c.Backup.Strategy = "vault"
	p := filepath.Join(t.TempDir(), "sub", config.FileName)
	if err := config.Write(p, c); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	got, err := config.Load(p)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func TestLoadRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"unknown key":     {"[backup]\nreplicaton = 3\n", "unknown setting"},
		"strategy":        {"[backup]\nstrategy = \"nearest\"\n", "strategy"},
		"replication":     {"[backup]\nreplication = 0\n", "replication"},
		"duration":        {"[chain]\npoll_interval = \"soon\"\n", "poll_interval"},
		"zero interval":   {"[chain]\nbatch_interval = \"0s\"\n", "batch_interval"},
		"watermarks":      {"[p2p]\nconn_low = 10\nconn_high = 5\n", "conn_low"},
		"no listen":       {"[p2p]\nlisten = []\n", "p2p.listen"},
		"quota":           {"[store]\nquota_bytes = 0\n", "quota"},
		"log format":      {"[log]\nformat = \"xml\"\n", "log.format"},
		"not toml":        {"this is = not [toml", ""},
		"wrong type":      {"hrp = 3\n", ""},
		"empty chain rpc": {"[chain]\nrpc = \"\"\n", "chain.rpc"},
		"work factor big": {"[backup]\nwork_factor = 21\n", "work_factor"},
		"work factor low": {"[backup]\nwork_factor = 10\n", "allow_low_work_factor"},
		"no keyshares":    {"[backup]\nkeyshares_dir = \"\"\n", "keyshares_dir"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(write(t, tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := config.Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestPath(t *testing.T) {
	if got := config.Path("/home/n", "data"); got != "/home/n/data" {
		t.Error(got)
	}
	if got := config.Path("/home/n", "/abs"); got != "/abs" {
		t.Error(got)
	}
}

// everySetting is a configuration with every setting changed from its
// default, to show each one survives a round trip.
func everySetting() config.Node {
	return config.Node{
		HRP:      "tthor",
		Mnemonic: "/etc/ksb/mnemonic",
		P2P: config.P2P{
			Listen:            []string{"/ip4/10.0.0.1/tcp/7000", "/ip4/10.0.0.1/udp/7000/quic-v1"},
			Bootstrap:         []string{"/ip4/10.0.0.2/tcp/6540/p2p/16Uiu2HAmE5MQwafKEkn7GiobBdMJkvnWVKMBzh58vrSn1f7ueJqQ"},
			ConnLow:           10,
			ConnHigh:          20,
			HeartbeatInterval: config.Duration{Duration: 45 * time.Second},
		},
		Chain: config.Chain{
			RPC:           "https://chain.example:443",
			ChainID:       "ksb-1",
			PollInterval:  config.Duration{Duration: 7 * time.Second},
			BatchInterval: config.Duration{Duration: 3 * time.Second},
		},
		Backup: config.Backup{
			KeysharesDir:       "/var/data/bifrost",
			Strategy:           "vault",
			Replication:        5,
			WorkFactor:         12,
			AllowLowWorkFactor: true,
		},
		Store: config.Store{Dir: "/var/lib/ksb", QuotaBlobs: 8, QuotaBytes: 1 << 20, RetiredGrace: config.Duration{Duration: time.Hour}},
		Admin: config.Admin{Listen: ""},
		Log:   config.Log{Format: "text", Level: "debug"},
	}
}

// TestDocumentedRoundTrip is issue 9 item 9: the file `ksb init` writes
// loads with Load as the configuration it was made from, for the defaults
// and for a configuration with every setting changed, and every setting
// has its meaning and default written above it.
func TestDocumentedRoundTrip(t *testing.T) {
	for name, c := range map[string]config.Node{"defaults": config.Default(), "every setting changed": everySetting()} {
		t.Run(name, func(t *testing.T) {
			b, err := config.Documented(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := config.Load(write(t, string(b)))
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("round trip:\n%+v\nwant\n%+v\n%s", got, c, b)
			}
			lines := strings.Split(string(b), "\n")
			settings := 0
			for i, l := range lines {
				if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
					continue
				}
				settings++
				if !strings.HasPrefix(lines[i-1], "# (default)") && !strings.HasPrefix(lines[i-1], "# Default: ") {
					t.Errorf("%q: no default above it", l)
				}
				if !strings.HasPrefix(lines[i-2], "# ") || strings.HasPrefix(lines[i-2], "# (default)") {
					t.Errorf("%q: no meaning above it", l)
				}
			}
			if want := countSettings(reflect.TypeOf(c)); settings != want {
				t.Errorf("%d settings written, the struct has %d\n%s", settings, want, b)
			}
		})
	}
}

// countSettings counts the TOML keys of a Node.
func countSettings(t reflect.Type) int {
	n := 0
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(config.Duration{}) {
			n += countSettings(f.Type)
			continue
		}
		n++
	}
	return n
}

func TestValidateAddresses(t *testing.T) {
	for body, want := range map[string]string{
		`hrp = "th or"`:                               "hrp",
		`hrp = ""`:                                    "hrp",
		"[p2p]\nlisten = [\"not-a-multiaddr\"]":       "p2p.listen",
		"[p2p]\nbootstrap = [\"/ip4/1.2.3.4/tcp/1\"]": "p2p.bootstrap",
		"[chain]\nrpc = \"ftp://x\"":                  "chain.rpc",
		"[chain]\nrpc = \"127.0.0.1:26657\"":          "chain.rpc",
	} {
		if _, err := config.Load(write(t, body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", body, err, want)
		}
	}
}
