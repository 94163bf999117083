package p2p_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// repairNet is a commitment of two copies whose holder of slot 1 left: the
// chain assigned its replacement (slot 2) to rep and named src, the holder
// of slot 0, as the source. other is a third active node.
type repairNet struct {
	m             *members
	o             *owner
	src, rep, oth *holder
	sh            *share
	held, repair  custody.CustodyID
	accepted      chan store.Entry
}

func newRepairNet(t *testing.T) *repairNet {
	t.Helper()
	o := newOwner(t)
	srcID, repID, othID, gone := newIdentity(t), newIdentity(t), newIdentity(t), newIdentity(t)
	m := newMembers(o.id, srcID, repID, othID)
	rn := &repairNet{m: m, o: o, accepted: make(chan store.Entry, 4)}
	rn.src = startHolder(t, srcID, t.TempDir(), m)
	rn.rep = startHolder(t, repID, t.TempDir(), m, p2p.OnAccepted(func(e store.Entry) error { rn.accepted <- e; return nil }))
	rn.sh = m.commit(t, o.id, vaultA, 3000, 9, srcID, gone)
	rn.held = custody.CustodyID{Commitment: rn.sh.id, Slot: 0}
	rn.repair = custody.CustodyID{Commitment: rn.sh.id, Slot: 2}
	if _, err := o.push(t, rn.src, rn.sh.copy(t, 0)); err != nil {
		t.Fatal(err)
	}
	m.update(rn.repair, func(c *p2p.Custody) {
		*c = m.custodies[rn.held]
		c.ID, c.Holder, c.Source = rn.repair, repID.Address(identity.DefaultHRP), srcID.Address(identity.DefaultHRP)
	})
	rn.oth = startHolder(t, othID, t.TempDir(), newMembers(o.id, srcID, repID, othID))
	for _, a := range []*holder{rn.src, rn.oth} {
		introduce(a.h, rn.rep.h)
		introduce(a.h, rn.oth.h)
	}
	return rn
}

// claim makes hd's own view of the chain say that it is the repair's
// source with a copy of root, and stores blob (copy 0, commit path path)
// for a custody of its own: a node that believes, or pretends, it may
// send the repair.
func (rn *repairNet) claim(t *testing.T, hd *holder, blob []byte, path [][]byte, root [custody.HashSize]byte) custody.CustodyID {
	t.Helper()
	own := custody.CustodyID{Commitment: rn.sh.id, Slot: 1}
	mine := newMembers()
	rn.m.with(func() { mine.set = maps.Clone(rn.m.set); mine.custodies = maps.Clone(rn.m.custodies) })
	mine.update(rn.repair, func(c *p2p.Custody) { c.Source, c.Root = hd.id.Address(identity.DefaultHRP), root })
	// hd's Service reads the chain through its members; swap in the claim.
	*hd = *startHolderOn(t, hd.h, hd.id, t.TempDir(), mine)
	e := store.Entry{
		Custody: own, Owner: rn.o.id.PubKey(), Vault: vaultA, CopyIndex: 0, Copies: 2,
		CommitPath: path, Digest: sha256.Sum256(blob), Size: int64(len(blob)), Received: time.Now(),
	}
	if _, err := hd.st.Put(e, blob); err != nil {
		t.Fatal(err)
	}
	return own
}

func (rn *repairNet) repairs(t *testing.T, hd *holder, dir string) float64 {
	t.Helper()
	return counter(t, hd.reg, "ksb_p2p_requests_total", map[string]string{"protocol": "repair", "direction": dir})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRepair: the chain's source sends its copy to the chain's replacement,
// which checks it against the committed root, stores it under the repair's
// custody with the commitment owner's key and the source's copy index, and
// answers a receipt naming the source.
func TestRepair(t *testing.T) {
	rn := newRepairNet(t)
	r, err := rn.src.svc.Repair(ctxT(t), rn.rep.h.ID(), rn.repair, rn.held)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	if !bytes.Equal(r.Pusher, rn.src.id.PubKey()) || !bytes.Equal(r.Holder, rn.rep.id.PubKey()) || r.Custody != rn.repair || r.CopyIndex != 0 {
		t.Fatalf("receipt %+v", r)
	}
	e, blob, err := rn.rep.st.Get(rn.repair)
	if err != nil || !bytes.Equal(blob, rn.sh.copies[0]) || !bytes.Equal(e.Owner, rn.o.id.PubKey()) || e.CopyIndex != 0 || e.Copies != 2 {
		t.Fatalf("stored %+v, %v", e, err)
	}
	if err := custody.VerifyCopy(rn.sh.cm.Root, rn.sh.cm.Size, 2, e.CopyIndex, e.CommitPath, blob); err != nil {
		t.Fatalf("stored copy does not verify: %v", err)
	}
	select {
	case got := <-rn.accepted:
		if got.Custody != rn.repair {
			t.Fatalf("accepted %v", got.Custody)
		}
	default:
		t.Fatal("OnAccepted was not called: the replacement would not attest")
	}
}

// TestRepairSourceSendsOnlyToReplacement: asked to send a repair's copy to
// a node that is not the assigned replacement, the source refuses
// (ErrNotAssigned) without opening a stream, and the honest repair then
// flows. A node the chain does not name as source refuses to send too
// (ErrNotSource).
func TestRepairSourceSendsOnlyToReplacement(t *testing.T) {
	rn := newRepairNet(t)
	_, err := rn.src.svc.Repair(ctxT(t), rn.oth.h.ID(), rn.repair, rn.held)
	if !errors.Is(err, p2p.ErrNotAssigned) {
		t.Fatalf("repair to a node that is not the replacement: %v, want ErrNotAssigned", err)
	}
	if n := rn.repairs(t, rn.oth, "in"); n != 0 {
		t.Fatalf("the non-replacement saw %v repair streams", n)
	}
	if _, err := rn.rep.svc.Repair(ctxT(t), rn.oth.h.ID(), rn.repair, rn.held); !errors.Is(err, p2p.ErrNotSource) {
		t.Fatalf("repair by a node that is not the source: %v, want ErrNotSource", err)
	}
	if _, err := rn.src.svc.Repair(ctxT(t), rn.rep.h.ID(), rn.repair, rn.repair); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("repair from a copy not held: %v, want store.ErrNotFound", err)
	}
	if _, err := rn.src.svc.Repair(ctxT(t), rn.rep.h.ID(), rn.repair, rn.held); err != nil {
		t.Fatalf("honest repair after the refusals: %v", err)
	}
}

// TestRepairReplacementRefuses feeds the replacement what a malicious node
// would send, each before the honest source's repair, and checks that it
// stores nothing of it and still takes the honest copy:
//
//   - a copy from an active node the chain does not name as the source
//     (it believes it is): refused NOT_SOURCE before the blob is read;
//   - from the node the chain does name, a copy that does not hash to the
//     committed root (its own view has another root): refused BAD_COPY.
func TestRepairReplacementRefuses(t *testing.T) {
	rn := newRepairNet(t)
	own := rn.claim(t, rn.oth, rn.sh.copies[0], rn.sh.copy(t, 0).CommitPath, rn.sh.cm.Root)
	_, err := rn.oth.svc.Repair(ctxT(t), rn.rep.h.ID(), rn.repair, own)
	var ref *p2p.RefusedError
	if !errors.As(err, &ref) || ref.Code != p2p.CodeNotSource {
		t.Fatalf("repair from a node that is not the source: %v, want a NOT_SOURCE refusal", err)
	}
	if _, _, err := rn.rep.st.Get(rn.repair); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused copy was stored: %v", err)
	}

	// The chain now names oth, whose copy is tampered with (and whose view
	// has the root of the tampered commitment, so it sends it).
	tampered := bytes.Clone(rn.sh.copies[0])
	tampered[100] ^= 1
	cm, err := custody.NewCommitment([][]byte{tampered, rn.sh.copies[1]})
	if err != nil {
		t.Fatal(err)
	}
	path, err := custody.CommitPath(cm.CopyRoots, 0)
	if err != nil {
		t.Fatal(err)
	}
	own = rn.claim(t, rn.oth, tampered, path, cm.Root)
	rn.m.update(rn.repair, func(c *p2p.Custody) { c.Source = rn.oth.id.Address(identity.DefaultHRP) })
	_, err = rn.oth.svc.Repair(ctxT(t), rn.rep.h.ID(), rn.repair, own)
	if !errors.As(err, &ref) || ref.Code != p2p.CodeBadCopy {
		t.Fatalf("repair with a copy not matching the committed root: %v, want a BAD_COPY refusal", err)
	}
	if _, _, err := rn.rep.st.Get(rn.repair); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the tampered copy was stored: %v", err)
	}
	if len(rn.accepted) != 0 {
		t.Fatal("a refused copy was accepted")
	}

	// The chain redraws the honest source: its copy goes through.
	rn.m.update(rn.repair, func(c *p2p.Custody) { c.Source = rn.src.id.Address(identity.DefaultHRP) })
	if _, err := rn.src.svc.Repair(ctxT(t), rn.rep.h.ID(), rn.repair, rn.held); err != nil {
		t.Fatalf("honest repair after the refusals: %v", err)
	}
	if _, blob, err := rn.rep.st.Get(rn.repair); err != nil || !bytes.Equal(blob, rn.sh.copies[0]) {
		t.Fatalf("honest copy not stored: %v", err)
	}
	for _, reason := range []string{"not_source", "bad_copy"} {
		if n := waitCounter(t, rn.rep.reg, "ksb_p2p_refusals_total", map[string]string{"protocol": "repair", "direction": "in", "reason": reason}, 1); n != 1 {
			t.Fatalf("%v %s repair refusals counted, want 1", n, reason)
		}
	}
}

// TestRepairSourceChecksItsOwnCopy: a source whose own copy no longer
// hashes to the committed root (a corrupted disk) does not send it:
// ErrBadCopy, returned locally, and the replacement sees no stream.
func TestRepairSourceChecksItsOwnCopy(t *testing.T) {
	rn := newRepairNet(t)
	rotten := bytes.Clone(rn.sh.copies[0])
	rotten[7] ^= 0x80
	own := rn.claim(t, rn.oth, rotten, rn.sh.copy(t, 0).CommitPath, rn.sh.cm.Root)
	_, err := rn.oth.svc.Repair(ctxT(t), rn.rep.h.ID(), rn.repair, own)
	var ref *p2p.RefusedError
	if !errors.Is(err, p2p.ErrBadCopy) || errors.As(err, &ref) {
		t.Fatalf("repair of a corrupted copy: %v, want a local ErrBadCopy", err)
	}
	if n := rn.repairs(t, rn.rep, "in"); n != 0 {
		t.Fatalf("the replacement saw %v repair streams", n)
	}
}

// TestRepairFromStranger: a node that is not active is refused NOT_ACTIVE
// before its header is read, whatever it claims; the honest repair flows.
func TestRepairFromStranger(t *testing.T) {
	rn := newRepairNet(t)
	st := startHolder(t, newIdentity(t), t.TempDir(), newMembers())
	introduce(st.h, rn.rep.h)
	own := rn.claim(t, st, rn.sh.copies[0], rn.sh.copy(t, 0).CommitPath, rn.sh.cm.Root)
	_, err := st.svc.Repair(ctxT(t), rn.rep.h.ID(), rn.repair, own)
	var ref *p2p.RefusedError
	if !errors.As(err, &ref) || ref.Code != p2p.CodeNotActive {
		t.Fatalf("repair from a stranger: %v, want NOT_ACTIVE", err)
	}
	if _, err := rn.src.svc.Repair(ctxT(t), rn.rep.h.ID(), rn.repair, rn.held); err != nil {
		t.Fatalf("honest repair after the stranger's: %v", err)
	}
}
