package recovery_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/recovery"
	"github.com/ksb-project/ksb/store"
)

// Published BIP39 reference mnemonics (trezor/python-mnemonic vectors), with
// enough byte entropy for envelope.Seal: test keys only.
const (
	ownerMnemonic = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"
	otherMnemonic = "panda eyebrow bullet gorilla call smoke muffin taste mesh discover soft ostrich alcohol speed nation flash devote level hobby quick inner drive ghost inside"
)

// gossipQuiet is the gossip path's quiet period in tests: a holder that
// missed the first request answers the one republished 3 s later, inside it.
const gossipQuiet = 4 * time.Second

// testTimeout bounds one Run in a test: far above what any takes, so a hang
// fails the test instead of the whole package.
const testTimeout = 2 * time.Minute

// share is a keyshare fixture and its vault.
type share struct {
	file  []byte
	vault string
}

func loadShare(t testing.TB, name string) share {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	info, err := keyshare.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return share{file: b, vault: info.VaultPubKey}
}

// ecdsaShare and eddsaShare are go-tss KeygenLocalState files.
func ecdsaShare(t testing.TB) share { return loadShare(t, "go-tss-ecdsa.json") }
func eddsaShare(t testing.TB) share { return loadShare(t, "go-tss-eddsa.json") }

func digestHex(b []byte) string {
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

// run runs recovery with a deadline.
func run(t *testing.T, o recovery.Options) (*recovery.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return recovery.Run(ctx, o)
}

// checkFile asserts that dir holds the share's file, byte for byte, mode
// 0600.
func checkFile(t *testing.T, dir string, s share) {
	t.Helper()
	path := filepath.Join(dir, "localstate-"+s.vault+".json")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("vault %s: %v", s.vault, err)
	}
	if !bytes.Equal(got, s.file) {
		t.Fatalf("%s differs from the original share", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != recovery.OutputMode {
		t.Fatalf("%s has mode %v, want %v", path, fi.Mode().Perm(), recovery.OutputMode)
	}
}

// dirNames lists dir (nil if it does not exist).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// onlyFiles asserts that dir holds exactly the files of these shares (no
// temporary file left behind).
func onlyFiles(t *testing.T, dir string, shares ...share) {
	t.Helper()
	var want []string
	for _, s := range shares {
		want = append(want, "localstate-"+s.vault+".json")
	}
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q", dir, got, want)
	}
}

func vaultResult(t *testing.T, rep *recovery.Report, vault string) recovery.VaultResult {
	t.Helper()
	for _, v := range rep.Vaults {
		if v.Vault == vault {
			return v
		}
	}
	t.Fatalf("report has no vault %s: %+v", vault, rep.Vaults)
	return recovery.VaultResult{}
}

// skipOf returns the report's skip of holder for vault.
func skipOf(rep *recovery.Report, vault, holder string) (recovery.Skip, bool) {
	for _, s := range rep.Skipped {
		if s.Vault == vault && s.Holder == holder {
			return s, true
		}
	}
	return recovery.Skip{}, false
}

// skipOfVersion returns the report's skip of holder for commitment id of
// vault.
func skipOfVersion(rep *recovery.Report, vault, holder string, id uint64) (recovery.Skip, bool) {
	for _, s := range rep.Skipped {
		if s.Vault == vault && s.Holder == holder && s.Commitment == id {
			return s, true
		}
	}
	return recovery.Skip{}, false
}

// logRecorder is a slog.Handler that keeps every record's message and
// attributes and lets a test wait for one.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
	waiters []logWaiter
}

type logRecord struct {
	msg   string
	attrs map[string]string
}

type logWaiter struct {
	match func(logRecord) bool
	ch    chan struct{}
}

func (r *logRecorder) logger() *slog.Logger { return slog.New(r) }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	lr := logRecord{msg: rec.Message, attrs: map[string]string{}}
	rec.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, lr)
	r.waiters = slices.DeleteFunc(r.waiters, func(w logWaiter) bool {
		if w.match(lr) {
			close(w.ch)
			return true
		}
		return false
	})
	return nil
}

// when returns a channel closed once a record matching match is logged.
func (r *logRecorder) when(match func(logRecord) bool) <-chan struct{} {
	ch := make(chan struct{})
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.ContainsFunc(r.records, match) {
		close(ch)
		return ch
	}
	r.waiters = append(r.waiters, logWaiter{match, ch})
	return ch
}

// skipLogged matches the log record of holder being skipped for vault.
func skipLogged(vault, holder string) func(logRecord) bool {
	return func(r logRecord) bool {
		return r.msg == "holder skipped" && r.attrs["vault"] == vault && r.attrs["holder"] == holder
	}
}

func (r *logRecorder) has(match func(logRecord) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.records, match)
}

// counter sums the values of a counter in reg whose labels include labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// lyingStore serves entries and copies from fixed lists instead of the
// holder's store, so that a holder can send what it wants under the header
// it wants. entries replace the store's entries when set; blobs replace
// the copy of a custody (the entry's digest follows the lie, so the fetch
// itself succeeds and the check against the chain's commitment is what
// catches it).
type lyingStore struct {
	p2p.Store
	entries []store.Entry
	blobs   map[custody.CustodyID][]byte
}

func (s *lyingStore) Entries(owner []byte) ([]store.Entry, error) {
	if s.entries == nil {
		return s.Store.Entries(owner)
	}
	var out []store.Entry
	for _, e := range s.entries {
		if owner == nil || bytes.Equal(owner, e.Owner) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *lyingStore) Get(id custody.CustodyID) (store.Entry, []byte, error) {
	var e store.Entry
	var err error
	found := false
	for _, le := range s.entries {
		if le.Custody == id {
			e, found = le, true
		}
	}
	if !found {
		if e, _, err = s.Store.Get(id); err != nil {
			return store.Entry{}, nil, err
		}
	}
	b, ok := s.blobs[id]
	if !ok {
		_, b, err = s.Store.Get(id)
		return e, b, err
	}
	e.Digest, e.Size = sha256.Sum256(b), int64(len(b))
	return e, b, nil
}
