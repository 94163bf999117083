package p2p_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/p2p/internal/pb"
	"github.com/ksb-project/ksb/store"
)

// fvMembers is an active set for TestPushRefusesFieldsTheChainRefuses; its
// own type, so this file does not depend on the other tests' helpers.
type fvMembers struct{ set map[string]bool }

func (m fvMembers) IsActive(pub []byte) bool { return m.set[string(pub)] }

// LiveVault says every vault is live, so the field checks are what refuse.
func (m fvMembers) LiveVault(string, []byte) (live, member bool) { return true, true }

// TestPushRefusesFieldsTheChainRefuses: an active node pushes blobs whose
// header carries a vault key, owner, digest or size that the attestation
// chain would refuse in a transaction. Each push is refused at the stream
// with a code, nothing is stored and nothing is queued for attestation; an
// honest push afterwards is stored and acknowledged. (Issue 8, item 1: a
// vault of `bad!vault#chars` used to be stored and then blocked every
// attestation batch of the holder.)
func TestPushRefusesFieldsTheChainRefuses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	holderID, ownerID := fvIdentity(t, 0), fvIdentity(t, 1)
	st, err := store.Open(store.DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hh, err := p2p.NewHost(p2p.HostConfig{Identity: holderID, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer hh.Close()
	var (
		mu       sync.Mutex
		accepted []store.Entry
	)
	svc, err := p2p.NewService(hh, holderID, st, fvMembers{set: map[string]bool{string(ownerID.PubKey()): true}},
		p2p.OnAccepted(func(e store.Entry) error {
			mu.Lock()
			defer mu.Unlock()
			accepted = append(accepted, e)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	oh, err := p2p.NewHost(p2p.HostConfig{Identity: ownerID, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer oh.Close()
	if err := oh.Connect(ctx, peer.AddrInfo{ID: hh.ID(), Addrs: hh.Addrs()}); err != nil {
		t.Fatal(err)
	}

	blob := []byte("one sealed share")
	d := sha256.Sum256(blob)
	good := func() pb.PushHeader {
		return pb.PushHeader{Owner: ownerID.PubKey(), Vault: "thorpub1addwnpepqgoodvault", Digest: d[:], Size: uint64(len(blob))}
	}
	badOwner := bytes.Repeat([]byte{5}, identity.PubKeySize)
	cases := []struct {
		name string
		edit func(*pb.PushHeader)
		want p2p.Code
	}{
		{"vault with ! and #", func(h *pb.PushHeader) { h.Vault = "bad!vault#chars" }, p2p.CodeMalformed},
		{"vault with a space", func(h *pb.PushHeader) { h.Vault = "thorpub1 x" }, p2p.CodeMalformed},
		{"vault with a slash", func(h *pb.PushHeader) { h.Vault = "thorpub1/x" }, p2p.CodeMalformed},
		{"vault with a quote", func(h *pb.PushHeader) { h.Vault = `thorpub1"x` }, p2p.CodeMalformed},
		{"vault with non-ASCII", func(h *pb.PushHeader) { h.Vault = "thorpub1é" }, p2p.CodeMalformed},
		{"empty vault", func(h *pb.PushHeader) { h.Vault = "" }, p2p.CodeMalformed},
		{"vault over the cap", func(h *pb.PushHeader) { h.Vault = strings.Repeat("a", 161) }, p2p.CodeMalformed},
		{"owner not a key", func(h *pb.PushHeader) { h.Owner = badOwner }, p2p.CodeMalformed},
		{"owner truncated", func(h *pb.PushHeader) { h.Owner = h.Owner[:32] }, p2p.CodeMalformed},
		{"digest of 31 bytes", func(h *pb.PushHeader) { h.Digest = h.Digest[:31] }, p2p.CodeMalformed},
		{"no digest", func(h *pb.PushHeader) { h.Digest = nil }, p2p.CodeMalformed},
		{"size 0", func(h *pb.PushHeader) { h.Size = 0 }, p2p.CodeMalformed},
		{"size over the cap", func(h *pb.PushHeader) { h.Size = p2p.MaxBlobSize + 1 }, p2p.CodeTooLarge},
	}
	for _, c := range cases {
		hdr := good()
		c.edit(&hdr)
		code, err := fvRawPush(ctx, oh, hh.ID(), &hdr, blob)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if code != c.want {
			t.Errorf("%s: answered with code %v, want %v", c.name, code, c.want)
		}
	}
	entries, err := st.Entries(nil)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(accepted)
	mu.Unlock()
	if len(entries) != 0 || n != 0 {
		t.Fatalf("after the bad pushes the holder stores %d blobs and queued %d attestations, want none: %+v", len(entries), n, entries)
	}

	// Honest traffic still flows: the longest vault key allowed, of every
	// character the chain allows.
	hdr := good()
	hdr.Vault = strings.Repeat("aZ09._:-", 20)
	if code, err := fvRawPush(ctx, oh, hh.ID(), &hdr, blob); err != nil || code != 0 {
		t.Fatalf("honest push: code %v, %v", code, err)
	}
	if _, got, err := st.Get(ownerID.PubKey(), hdr.Vault); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("honest blob not stored: %v", err)
	}
}

// fvRawPush speaks the push protocol by hand, so that the header can carry
// what p2p.Push would refuse to send. It returns the refusal code of the
// holder's answer, 0 for a receipt.
func fvRawPush(ctx context.Context, h host.Host, holder peer.ID, hdr *pb.PushHeader, blob []byte) (p2p.Code, error) {
	s, err := h.NewStream(ctx, holder, p2p.PushProtocol)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(20 * time.Second))
	hb := hdr.Marshal()
	frame := protowire.AppendVarint(nil, uint64(len(hb)))
	frame = append(frame, hb...)
	// The holder may answer before reading the blob: write errors are
	// expected then, and the answer is what counts.
	go func() {
		if _, err := s.Write(append(frame, blob...)); err == nil {
			s.CloseWrite()
		}
	}()
	r := bufio.NewReader(s)
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	if n > 4096 {
		return 0, fmt.Errorf("answer of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	var resp pb.PushResponse
	if err := resp.Unmarshal(b); err != nil {
		return 0, err
	}
	if resp.Error != nil {
		return p2p.Code(resp.Error.Code), nil
	}
	if resp.Receipt == nil {
		return 0, fmt.Errorf("answer with neither receipt nor error")
	}
	return 0, nil
}

// fvIdentity is the identity of a published BIP39 test vector (test keys
// only).
func fvIdentity(t *testing.T, i int) *identity.Identity {
	t.Helper()
	m := []string{
		"legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title",
		"letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless",
	}[i]
	id, err := identity.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
