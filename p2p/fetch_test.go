package p2p_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/p2p/internal/pb"
)

func fetch(t *testing.T, from *owner, hd *holder, vault string, digest []byte) ([]p2p.Fetched, error) {
	t.Helper()
	introduce(from.h, hd.h)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p2p.Fetch(ctx, from.h, hd.h.ID(), vault, digest)
}

func TestFetch(t *testing.T) {
	o := newOwner(t)
	other := newOwner(t)
	hd := newHolder(t, newMembers(o.id, other.id))
	a, b, c := blob(60<<10, 10), blob(5<<10, 11), blob(7000, 12)
	for _, p := range []struct {
		who   *owner
		vault string
		blob  []byte
	}{{o, vaultA, a}, {o, vaultB, b}, {other, vaultA, c}} {
		if _, err := p.who.push(t, hd, p.vault, p.blob); err != nil {
			t.Fatal(err)
		}
	}

	all, err := fetch(t, o, hd, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("fetched %d blobs, want the owner's 2", len(all))
	}
	for _, f := range all {
		want := map[string][]byte{vaultA: a, vaultB: b}[f.Vault]
		if !bytes.Equal(f.Blob, want) || f.Digest != sha256.Sum256(want) || f.Holder != hd.h.ID() || !bytes.Equal(f.Owner, o.id.PubKey()) {
			t.Fatalf("fetched %s: wrong blob or header", f.Vault)
		}
	}

	one, err := fetch(t, o, hd, vaultB, nil)
	if err != nil || len(one) != 1 || !bytes.Equal(one[0].Blob, b) {
		t.Fatalf("fetch by vault: %d blobs, %v", len(one), err)
	}
	d := sha256.Sum256(a)
	byDigest, err := fetch(t, o, hd, "", d[:])
	if err != nil || len(byDigest) != 1 || !bytes.Equal(byDigest[0].Blob, a) {
		t.Fatalf("fetch by digest: %d blobs, %v", len(byDigest), err)
	}
	old := sha256.Sum256([]byte("a blob the holder never had"))
	if _, err := fetch(t, o, hd, vaultA, old[:]); !errors.Is(err, p2p.ErrNotFound) {
		t.Fatalf("fetch of an unknown digest: err = %v, want ErrNotFound", err)
	}
}

// TestFetchNotOwner checks that a peer gets no byte of blobs it does not
// own, whatever it asks for.
func TestFetchNotOwner(t *testing.T) {
	o := newOwner(t)
	thief := newOwner(t)
	hd := newHolder(t, newMembers(o.id, thief.id))
	a := blob(4000, 13)
	if _, err := o.push(t, hd, vaultA, a); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(a)
	for _, c := range []struct {
		vault  string
		digest []byte
		want   error
	}{
		{vaultA, nil, p2p.ErrNotOwner},
		{"", d[:], p2p.ErrNotOwner},
		{"", nil, p2p.ErrNotFound},
	} {
		got, err := fetch(t, thief, hd, c.vault, c.digest)
		var ref *p2p.RefusedError
		if !errors.As(err, &ref) || !errors.Is(err, c.want) || got != nil {
			t.Fatalf("thief fetching (%q, %x): %d blobs, err = %v, want %v", c.vault, c.digest, len(got), err, c.want)
		}
	}
	if n := counter(t, hd.reg, "ksb_p2p_blob_bytes_total", map[string]string{"protocol": "fetch", "direction": "in"}); n != 0 {
		t.Fatalf("holder sent %v blob bytes", n)
	}
}

func TestFetchRateLimited(t *testing.T) {
	o := newOwner(t)
	hd := newHolder(t, newMembers(o.id), p2p.WithFetchRate(2, time.Hour))
	if _, err := o.push(t, hd, vaultA, blob(100, 14)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := fetch(t, o, hd, "", nil); err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	if _, err := fetch(t, o, hd, "", nil); !errors.Is(err, p2p.ErrRateLimited) {
		t.Fatalf("third fetch: err = %v, want ErrRateLimited", err)
	}
}

// TestHolderRestart closes a holder's host and store and reopens the same
// directory with the same identity: the blob is still served.
func TestHolderRestart(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	id := newIdentity(t)
	dir := t.TempDir()
	hd := startHolder(t, id, dir, m)
	a := blob(60<<10, 15)
	if _, err := o.push(t, hd, vaultA, a); err != nil {
		t.Fatal(err)
	}
	hd.stop()

	hd2 := startHolder(t, id, dir, m)
	got, err := fetch(t, o, hd2, vaultA, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0].Blob, a) {
		t.Fatalf("after restart fetched %d blobs", len(got))
	}
}

// TestFetchByzantineHolder runs Fetch against holders that break the
// protocol; each must fail the fetch with the matching error.
func TestFetchByzantineHolder(t *testing.T) {
	o := newOwner(t)
	bad := newOwner(t)
	good := blob(3000, 16)
	d := sha256.Sum256(good)
	entry := func(owner []byte, size uint64) []byte {
		return frame((&pb.Frame{Entry: &pb.EntryHeader{Owner: owner, Vault: vaultA, Digest: d[:], Size: size}}).Marshal())
	}
	end := func(n uint32) []byte { return frame((&pb.Frame{End: &pb.End{Count: n}}).Marshal()) }
	tampered := append([]byte(nil), good...)
	tampered[100] ^= 1
	cases := []struct {
		name  string
		reply []byte
		want  error
	}{
		{"tampered blob", append(append(entry(o.id.PubKey(), 3000), tampered...), end(1)...), p2p.ErrDigestMismatch},
		{"someone else's blob", append(append(entry(bad.id.PubKey(), 3000), good...), end(1)...), p2p.ErrProtocol},
		{"entry over the blob cap", entry(o.id.PubKey(), p2p.MaxBlobSize+1), p2p.ErrTooLarge},
		{"blob cut short", append(entry(o.id.PubKey(), 3000), good[:10]...), p2p.ErrTruncated},
		{"silent", nil, p2p.ErrTruncated},
		{"wrong end count", append(append(entry(o.id.PubKey(), 3000), good...), end(2)...), p2p.ErrProtocol},
		{"garbage frame", frame([]byte{0xff, 0x01}), p2p.ErrMalformed},
		{"oversized frame", frame(make([]byte, 5000)), p2p.ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad.h.SetStreamHandler(p2p.FetchProtocol, func(s network.Stream) {
				defer s.Close()
				readRequest(s)
				s.Write(c.reply)
			})
			introduce(o.h, bad.h)
			got, err := p2p.Fetch(context.Background(), o.h, bad.h.ID(), "", nil)
			if !errors.Is(err, c.want) || got != nil {
				t.Fatalf("%d blobs, err = %v, want %v", len(got), err, c.want)
			}
		})
	}
}

func readRequest(s network.Stream) {
	var b [1]byte
	for {
		if _, err := s.Read(b[:]); err != nil {
			return // io.EOF once the requester closed its side
		}
	}
}

// TestFetchCancelled: a holder that accepts the stream and never answers
// does not hold Fetch once its context is cancelled (its own deadline is
// FetchTimeout, a minute).
func TestFetchCancelled(t *testing.T) {
	o := newOwner(t)
	silent := newOwner(t)
	release := make(chan struct{})
	defer close(release)
	opened := make(chan struct{}, 1)
	silent.h.SetStreamHandler(p2p.FetchProtocol, func(s network.Stream) {
		opened <- struct{}{}
		<-release
		s.Reset()
	})
	introduce(o.h, silent.h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p2p.Fetch(ctx, o.h, silent.h.ID(), "", nil)
		done <- err
	}()
	<-opened // the request is on the wire; now give up
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("cancelled fetch succeeded")
		}
	case <-time.After(p2p.FetchTimeout / 2):
		t.Fatal("Fetch ignored its cancelled context")
	}
}

// TestFetchRefusedBeforeRequest: a holder refuses a peer that owns nothing
// here before reading its request, and stops reading; the refusal frame must
// still reach the client, over TCP and over QUIC, every time. (The client
// also reads the answer when writing its request failed; on loopback the
// request is always written before the refusal arrives, so this test passes
// without that too: it guards the early refusal, not that race.)
func TestFetchRefusedBeforeRequest(t *testing.T) {
	hd := newHolder(t, newMembers())
	for _, transport := range []string{"/tcp/", "/quic-v1"} {
		c := newClient(t)
		connectOver(t, c.h, hd.h, transport)
		for i := range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err := p2p.Fetch(ctx, c.h, hd.h.ID(), vaultA, nil)
			cancel()
			var ref *p2p.RefusedError
			if !errors.As(err, &ref) || ref.Code != p2p.CodeNotFound {
				t.Fatalf("%s fetch %d: err = %v, want a NOT_FOUND refusal", transport, i, err)
			}
		}
	}
}
