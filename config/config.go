// Package config is the node's configuration file, H/config.toml: what `ksb
// init` (documented, see Documented) and `ksb testnet init` write and what
// `ksb node` reads. Every setting has a default,
// so an empty file is a valid configuration; relative paths are relative to the
// node's home directory.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
)

// FileName is the name of the configuration file inside a node home.
const FileName = "config.toml"

// Node is the whole configuration of one ksb node.
type Node struct {
	// HRP is the bech32 prefix of node addresses ("thor").
	HRP string `toml:"hrp"`
	// Mnemonic is the mnemonic file, relative to the home ("mnemonic").
	Mnemonic string `toml:"mnemonic"`

	P2P    P2P    `toml:"p2p"`
	Chain  Chain  `toml:"chain"`
	Backup Backup `toml:"backup"`
	Store  Store  `toml:"store"`
	Admin  Admin  `toml:"admin"`
	Log    Log    `toml:"log"`
}

// P2P configures the libp2p host.
type P2P struct {
	// Listen is the list of multiaddrs to listen on (TCP and QUIC).
	Listen []string `toml:"listen"`
	// Bootstrap is a list of peer multiaddrs (with /p2p/ID) to dial at start,
	// in addition to the active nodes learnt from the chain.
	Bootstrap []string `toml:"bootstrap"`
	// ConnLow and ConnHigh are the connection manager's watermarks.
	ConnLow  int `toml:"conn_low"`
	ConnHigh int `toml:"conn_high"`
	// HeartbeatInterval is how often the node gossips its heartbeat.
	HeartbeatInterval Duration `toml:"heartbeat_interval"`
}

// Chain configures the attestation chain client.
type Chain struct {
	// RPC is the CometBFT RPC address of a node running the ksb app.
	RPC string `toml:"rpc"`
	// ChainID is the chain's ID; empty means ask the RPC node.
	ChainID string `toml:"chain_id"`
	// PollInterval is how often chain state (nodes, vaults) is re-read.
	PollInterval Duration `toml:"poll_interval"`
	// BatchInterval is how often pending attestations are sent in one
	// transaction.
	BatchInterval Duration `toml:"batch_interval"`
}

// Backup configures the owner side: which files are backed up, and where to.
type Backup struct {
	// KeysharesDir is the directory keygen writes share files to.
	KeysharesDir string `toml:"keyshares_dir"`
	// Strategy is "random" or "vault". Not read since custodies: the chain
	// assigns holders by its genesis strategy; kept so older files load.
	Strategy string `toml:"strategy"`
	// Replication is r. Not read since custodies: owners seal the chain's
	// r copies; kept so older files load.
	Replication int `toml:"replication"`
	// WorkFactor is the age scrypt work factor (log2 N) used to seal.
	WorkFactor int `toml:"work_factor"`
	// AllowLowWorkFactor permits a WorkFactor below 18. For tests and
	// throw-away devnets only: a low factor makes the mnemonic cheaper to
	// brute-force from a blob.
	AllowLowWorkFactor bool `toml:"allow_low_work_factor"`
}

// Store configures the Badger store and what this node accepts as a holder.
type Store struct {
	// Dir is the Badger directory.
	Dir string `toml:"dir"`
	// QuotaBlobs and QuotaBytes cap what one owner may keep on this node.
	QuotaBlobs int   `toml:"quota_blobs"`
	QuotaBytes int64 `toml:"quota_bytes"`
	// RetiredGrace is not read since custodies: a holder drops a copy once
	// the chain deletes its custody (genesis retention_blocks). Kept so
	// older files load.
	RetiredGrace Duration `toml:"retired_grace"`
}

// Admin configures the local HTTP endpoint (/healthz, /status, /metrics).
type Admin struct {
	// Listen is host:port; empty disables it. Keep it on 127.0.0.1.
	Listen string `toml:"listen"`
}

// Log configures logging.
type Log struct {
	// Format is "json" or "text".
	Format string `toml:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `toml:"level"`
}

// Duration is a time.Duration written as a string ("5s") in TOML.
type Duration struct{ time.Duration }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Default returns the configuration used for every setting a file leaves out.
func Default() Node {
	return Node{
		HRP:      "thor",
		Mnemonic: "mnemonic",
		P2P: P2P{
			Listen:            []string{"/ip4/0.0.0.0/tcp/6540", "/ip4/0.0.0.0/udp/6540/quic-v1"},
			ConnLow:           64,
			ConnHigh:          192,
			HeartbeatInterval: Duration{30 * time.Second},
		},
		Chain: Chain{
			RPC:           "http://127.0.0.1:26657",
			PollInterval:  Duration{5 * time.Second},
			BatchInterval: Duration{2 * time.Second},
		},
		Backup: Backup{
			KeysharesDir: "keyshares",
			Strategy:     "random",
			Replication:  3,
			WorkFactor:   18,
		},
		Store: Store{
			Dir:          "data",
			QuotaBlobs:   64,
			QuotaBytes:   64 << 20,
			RetiredGrace: Duration{7 * 24 * time.Hour},
		},
		Admin: Admin{Listen: "127.0.0.1:6541"},
		Log:   Log{Format: "json", Level: "info"},
	}
}

// Validate reports the first setting that cannot work.
func (c *Node) Validate() error {
	if err := identity.ValidateHRP(c.HRP); err != nil {
		return fmt.Errorf("hrp: %w", err)
	}
	for _, s := range c.P2P.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("p2p.listen %q: not a multiaddr (want /ip4/0.0.0.0/tcp/6540 or /ip4/0.0.0.0/udp/6540/quic-v1): %v", s, err)
		}
	}
	for _, s := range c.P2P.Bootstrap {
		m, err := ma.NewMultiaddr(s)
		if err == nil {
			_, err = peer.AddrInfoFromP2pAddr(m)
		}
		if err != nil {
			return fmt.Errorf("p2p.bootstrap %q: want a multiaddr ending in /p2p/<peer ID>: %v", s, err)
		}
	}
	if u, err := url.Parse(c.Chain.RPC); c.Chain.RPC != "" && (err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tcp")) {
		return fmt.Errorf("chain.rpc %q: want http://host:port", c.Chain.RPC)
	}
	switch {
	case len(c.P2P.Listen) == 0:
		return errors.New("p2p.listen is empty")
	case c.P2P.ConnLow < 0 || c.P2P.ConnHigh < c.P2P.ConnLow:
		return fmt.Errorf("p2p.conn_low %d / conn_high %d: need 0 <= low <= high", c.P2P.ConnLow, c.P2P.ConnHigh)
	case c.P2P.HeartbeatInterval.Duration <= 0:
		return errors.New("p2p.heartbeat_interval must be positive")
	case c.Chain.RPC == "":
		return errors.New("chain.rpc is empty")
	case c.Chain.PollInterval.Duration <= 0 || c.Chain.BatchInterval.Duration <= 0:
		return errors.New("chain.poll_interval and chain.batch_interval must be positive")
	case c.Backup.Strategy != "random" && c.Backup.Strategy != "vault":
		return fmt.Errorf("backup.strategy %q: want \"random\" or \"vault\"", c.Backup.Strategy)
	case c.Backup.Replication < 1:
		return fmt.Errorf("backup.replication %d: need at least 1", c.Backup.Replication)
	case c.Backup.WorkFactor > envelope.MaxWorkFactor || c.Backup.WorkFactor < 1:
		return fmt.Errorf("backup.work_factor %d: want 1..%d", c.Backup.WorkFactor, envelope.MaxWorkFactor)
	case c.Backup.WorkFactor < envelope.MinWorkFactor && !c.Backup.AllowLowWorkFactor:
		return fmt.Errorf("backup.work_factor %d is below %d: set allow_low_work_factor = true (tests only)", c.Backup.WorkFactor, envelope.MinWorkFactor)
	case c.Backup.KeysharesDir == "" || c.Store.Dir == "" || c.Mnemonic == "":
		return errors.New("backup.keyshares_dir, store.dir and mnemonic must not be empty")
	case c.Store.QuotaBlobs < 1 || c.Store.QuotaBytes < 1:
		return errors.New("store.quota_blobs and store.quota_bytes must be positive")
	case c.Log.Format != "json" && c.Log.Format != "text":
		return fmt.Errorf("log.format %q: want \"json\" or \"text\"", c.Log.Format)
	}
	return nil
}

// Load reads path over Default(), rejecting unknown keys (a typo must not
// silently fall back to a default), and validates the result.
func Load(path string) (Node, error) {
	c := Default()
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return Node{}, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return Node{}, fmt.Errorf("config %s: unknown setting %q", path, und[0].String())
	}
	if len(c.P2P.Bootstrap) == 0 {
		c.P2P.Bootstrap = nil // "bootstrap = []" is the default, none
	}
	if err := c.Validate(); err != nil {
		return Node{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Write writes c to path (mode 0600), creating the directory.
func Write(path string, c Node) error {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

// Path resolves p against home unless it is absolute.
func Path(home, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(home, p)
}
