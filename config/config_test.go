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
