package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// settingDocs says what each setting means, by its TOML path. Documented
// writes it above the setting; docs/operations.md's configuration reference
// says the same. A setting without an entry here makes Documented fail, so a
// new setting cannot be added undocumented.
var settingDocs = map[string]string{
	"hrp":      "Bech32 prefix of node addresses: thor on mainnet, tthor or sthor on test networks.",
	"mnemonic": "File holding this node's 24-word mnemonic, relative to the home, mode 0600 (ksb node refuses a file its\ngroup or others can read). Used when neither --mnemonic-file nor $KSB_MNEMONIC is given.",

	"p2p.listen":             "libp2p listen addresses (TCP and QUIC, both with Noise). Other nodes dial them: the chain lists them\nfor this node, so they must be reachable from the other nodes.",
	"p2p.bootstrap":          "Extra peers to dial at start, as /ip4/HOST/tcp/PORT/p2p/PEER-ID, besides the active nodes the chain lists.",
	"p2p.conn_low":           "Connection manager low watermark: trimming stops at this many connections. Active nodes are never trimmed.",
	"p2p.conn_high":          "Connection manager high watermark: above this many connections the manager trims down to conn_low.",
	"p2p.heartbeat_interval": "How often this node gossips its heartbeat; nodes heard within three intervals are preferred as holders.",

	"chain.rpc":            "CometBFT RPC of a node running the ksb attestation chain.",
	"chain.chain_id":       "Expected chain ID; empty means whatever the RPC node serves (informational: transactions use the chain's own).",
	"chain.poll_interval":  "How often the active nodes and vaults are re-read from the chain (churn), and holders re-checked.",
	"chain.batch_interval": "How often queued attestations are sent to the chain, one transaction per batch.",

	"backup.keyshares_dir":         "Directory keygen (Bifrost) writes localstate-<vault>.json files to, relative to the home. The node\nwatches it; it logs the directory at start and warns if it had to create it (a typo here backs up nothing).",
	"backup.strategy":              `Not read since custodies (issue 10): the chain assigns holders by its genesis strategy. Kept so older files load.`,
	"backup.replication":           "Not read since custodies (issue 10): owners seal the chain's r copies (genesis replication). Kept so older files load.",
	"backup.work_factor":           "age scrypt work factor (log2 N) shares are sealed with: 18 costs 256 MiB and about a second per seal and\nper open. At most 20; below 18 only with allow_low_work_factor.",
	"backup.allow_low_work_factor": "Permit a work_factor below 18. Tests and throw-away devnets only: it makes guessing the mnemonic from a\nbackup cheaper.",

	"store.dir":           "Badger directory, relative to the home: blobs held for other nodes and this node's own records.",
	"store.quota_blobs":   "Most blobs one owner may keep on this node.",
	"store.quota_bytes":   "Most bytes one owner may keep on this node.",
	"store.retired_grace": "Not read since custodies (issue 10): a holder drops a copy once the chain deletes its custody (genesis retention_blocks). Kept so older files load.",

	"admin.listen": "host:port of /healthz, /status (what ksb status reads) and /metrics; empty disables them. Keep it on\nloopback: it is not authenticated.",

	"log.format": `Log format on stderr: "json" or "text".`,
	"log.level":  `Log level: "debug", "info", "warn" or "error".`,
}

// sectionDocs introduces each table.
var sectionDocs = map[string]string{
	"p2p":    "The libp2p host.",
	"chain":  "The attestation chain client.",
	"backup": "This node's own shares: which files are backed up, and how.",
	"store":  "What this node holds for others.",
	"admin":  "The local HTTP endpoint.",
	"log":    "Logging.",
}

// Documented returns c as a config.toml that documents itself: every
// setting, in the order of the Node struct, with what it means and its
// default as comments above it. Load reads it back as c.
func Documented(c Node) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# ksb node configuration (ksb node --home reads HOME/config.toml).\n" +
		"# Every setting is shown with its default; delete a line to use the default. Relative paths are relative to\n" +
		"# the home directory. An unknown setting is an error, so a typo cannot silently fall back to a default.\n" +
		"# Reference: docs/operations.md, \"Configuration reference\".\n")
	def := reflect.ValueOf(Default())
	val := reflect.ValueOf(c)
	typ := val.Type()
	// Top-level settings first: TOML puts everything after a [table] into it.
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := f.Tag.Get("toml")
			isTable := f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration{})
			if isTable != (pass == 1) {
				continue
			}
			if !isTable {
				if err := writeSetting(&b, key, key, val.Field(i), def.Field(i)); err != nil {
					return nil, err
				}
				continue
			}
			fmt.Fprintf(&b, "\n%s[%s]\n", comment(sectionDocs[key]), key)
			for j := 0; j < f.Type.NumField(); j++ {
				sf := f.Type.Field(j)
				sk := sf.Tag.Get("toml")
				if err := writeSetting(&b, key+"."+sk, sk, val.Field(i).Field(j), def.Field(i).Field(j)); err != nil {
					return nil, err
				}
			}
		}
	}
	return b.Bytes(), nil
}

// writeSetting writes one documented setting: its meaning, its default if
// the value differs, and key = value.
func writeSetting(b *bytes.Buffer, path, key string, v, def reflect.Value) error {
	doc, ok := settingDocs[path]
	if !ok {
		return fmt.Errorf("config: setting %s has no documentation", path)
	}
	line, err := encode(key, v.Interface())
	if err != nil {
		return err
	}
	defLine, err := encode(key, def.Interface())
	if err != nil {
		return err
	}
	b.WriteString("\n")
	b.WriteString(comment(doc))
	if line != defLine {
		fmt.Fprintf(b, "# Default: %s", defLine)
	} else {
		b.WriteString("# (default)\n")
	}
	b.WriteString(line)
	return nil
}

// encode is "key = value\n" as TOML writes it.
func encode(key string, v any) (string, error) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.Len() == 0 {
		return key + " = []\n", nil // the encoder leaves out a nil slice
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(map[string]any{key: v}); err != nil {
		return "", fmt.Errorf("config: encoding %s: %w", key, err)
	}
	return b.String(), nil
}

func comment(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		b.WriteString("# " + l + "\n")
	}
	return b.String()
}
