package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p/internal/pb"
	"github.com/ksb-project/ksb/store"
)

// Copy is one sealed copy of a share version and what its holder checks it
// against: the custody the chain assigned it to, the copy index (which of
// the commitment's r copies it is), its commit path (custody.CommitPath)
// and the commitment owner's key.
type Copy struct {
	Custody    custody.CustodyID
	CopyIndex  int
	CommitPath [][]byte
	Owner      []byte
	Blob       []byte
	// CopyRoot, if not zero, is the copy's root (custody.CopyRoot of
	// Blob) as the owner computed it for the commitment; Push then checks
	// the receipt against it instead of hashing the copy again. A wrong
	// root only makes the owner's own Push fail (ErrBadReceipt).
	CopyRoot [custody.HashSize]byte
}

// Push sends copy c over PushProtocol to holder, the node the chain
// assigned c.Custody to, and returns the holder's receipt once it has
// verified it: signed by the holder's key (the one its peer ID embeds) and
// naming exactly this pusher, custody, copy index, size and copy root. A
// refusal is returned as a *RefusedError; a stream refused or reset by a
// resource manager (this host's or the holder's) as an error wrapping
// ErrBusy. The host must run pusher's identity, and know an address of the
// holder or be connected to it. The stream's deadline is ctx's, or
// PushTimeout if that is sooner. Push does not bound how many pushes the
// caller runs at once: keep to MaxPushStreamsPerPeer per holder
// (Service.Push does).
func Push(ctx context.Context, h host.Host, holder peer.ID, pusher *identity.Identity, c Copy) (*Receipt, error) {
	return sendCopy(ctx, h, pushSpec, holder, pusher, c)
}

// sendCopy sends copy c to peer to over the protocol of spec (push or
// repair) and checks the receipt: Push's body, shared with Repair.
func sendCopy(ctx context.Context, h host.Host, spec copySpec, to peer.ID, pusher *identity.Identity, c Copy) (*Receipt, error) {
	if h.ID() != pusher.PeerID() {
		return nil, fmt.Errorf("%w: host %s does not run the pusher's identity", ErrBadConfig, h.ID())
	}
	if len(c.Blob) == 0 || len(c.Blob) > MaxBlobSize {
		return nil, fmt.Errorf("%w: copy of %d bytes, want 1 to %d", ErrTooLarge, len(c.Blob), MaxBlobSize)
	}
	if c.CopyIndex < 0 {
		return nil, fmt.Errorf("%w: copy index %d", ErrMalformed, c.CopyIndex)
	}
	if err := checkCopyFields(c.Custody.Slot, uint32(c.CopyIndex), c.CommitPath); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := identity.ParsePubKey(c.Owner); err != nil {
		return nil, fmt.Errorf("%w: owner: %v", ErrMalformed, err)
	}
	holderKey, err := identity.PubKeyFromPeerID(to)
	if err != nil {
		return nil, fmt.Errorf("holder: %w", err)
	}
	root := c.CopyRoot
	if root == ([custody.HashSize]byte{}) {
		if root, err = custody.CopyRoot(c.Blob); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	hdr := &pb.PushHeader{
		Commitment: c.Custody.Commitment, Slot: c.Custody.Slot, CopyIndex: uint32(c.CopyIndex),
		Size: uint64(len(c.Blob)), CommitPath: c.CommitPath, Owner: c.Owner,
	}

	s, err := h.NewStream(ctx, to, spec.protocol)
	if err != nil {
		return nil, busy(fmt.Errorf("opening %s stream to %s: %w", spec.name, to, err))
	}
	resp, err := pushOnStream(ctx, s, spec, hdr, c.Blob)
	if err != nil {
		s.Reset()
		return nil, busy(err)
	}
	s.Close()
	if resp.Error != nil {
		return nil, &RefusedError{Code: Code(resp.Error.Code), Message: resp.Error.Message}
	}
	r, err := receiptFromPB(resp.Receipt)
	if err != nil {
		return nil, err
	}
	switch {
	case !bytes.Equal(r.Holder, holderKey):
		return nil, fmt.Errorf("%w: signed by %x, not by holder %s", ErrBadReceipt, r.Holder, to)
	case !bytes.Equal(r.Pusher, pusher.PubKey()) || r.Custody != c.Custody || r.CopyIndex != c.CopyIndex ||
		r.Size != int64(len(c.Blob)) || r.CopyRoot != root:
		return nil, fmt.Errorf("%w: does not describe the pushed copy", ErrBadReceipt)
	}
	if err := r.Verify(); err != nil {
		return nil, err
	}
	return r, nil
}

func pushOnStream(ctx context.Context, s network.Stream, spec copySpec, hdr *pb.PushHeader, blob []byte) (*pb.PushResponse, error) {
	if err := s.Scope().SetService(spec.service); err != nil {
		return nil, fmt.Errorf("attaching %s stream to its service: %w", spec.name, err)
	}
	if err := s.Scope().ReserveMemory(maxResponseSize, network.ReservationPriorityAlways); err != nil {
		return nil, fmt.Errorf("%w: reserving response buffer: %v", ErrBusy, err)
	}
	defer s.Scope().ReleaseMemory(maxResponseSize)
	if err := s.SetDeadline(deadline(ctx, spec.timeout)); err != nil {
		return nil, fmt.Errorf("setting deadline: %w", err)
	}
	// The blob is written while the response is awaited: a holder that
	// refuses early answers before reading the blob, and stops reading.
	werr := make(chan error, 1)
	go func() {
		err := writeFrame(s, hdr.Marshal())
		if err == nil {
			_, err = s.Write(blob)
		}
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	b, err := readFrame(s, maxResponseSize)
	if err != nil {
		s.Reset()
		if we := <-werr; we != nil {
			return nil, fmt.Errorf("sending blob: %w", we)
		}
		return nil, fmt.Errorf("reading %s response: %w", spec.name, err)
	}
	select {
	case <-werr:
	default:
		// Answered before the blob was read: stop sending it.
		s.Reset()
		<-werr
	}
	var resp pb.PushResponse
	if err := resp.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: %s response: %w", ErrMalformed, spec.name, err)
	}
	return &resp, nil
}

// deadline is ctx's deadline or now+max, whichever is sooner.
func deadline(ctx context.Context, max time.Duration) time.Time {
	d := time.Now().Add(max)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// Owner-side handling of a busy holder (CodeBusy, or a stream its resource
// manager refused).
const (
	// pushBusyRetries is how many times Service.Push tries again after a
	// holder answered that it is busy: a holder is busy while its peers'
	// allowance is in use, which frees within a push's time (seconds).
	pushBusyRetries = 4
	// pushBusyBackoff is the first wait before such a retry; it doubles each
	// time, with up to half of it added at random so that owners refused
	// together do not come back together: 0.25 s, 0.5 s, 1 s, 2 s, under
	// 6 s in all, well within a reconcile interval.
	pushBusyBackoff = 250 * time.Millisecond
)

// Push is the package-level Push made with this node's host and identity,
// and counted in the Service's metrics, with two differences: it never has
// more than MaxPushStreamsPerPeer pushes in flight to one holder (more wait
// for a slot, or for ctx), and when the holder is busy (ErrBusy: CodeBusy, or
// a stream refused by a resource manager) it tries again up to
// pushBusyRetries times with exponential backoff before returning ErrBusy.
// A busy holder is not a faulty one.
func (s *Service) Push(ctx context.Context, holder peer.ID, c Copy) (*Receipt, error) {
	backoff := pushBusyBackoff
	for try := 0; ; try++ {
		r, err := s.pushOnce(ctx, holder, c)
		if err == nil || !errors.Is(err, ErrBusy) || try == pushBusyRetries {
			return r, err
		}
		s.log.Debug("holder busy; retrying", "holder", holder, "custody", idString(c.Custody), "try", try+1, "err", err)
		t := time.NewTimer(backoff + jitter(backoff/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		backoff *= 2
	}
}

func (s *Service) pushOnce(ctx context.Context, holder peer.ID, c Copy) (*Receipt, error) {
	release, ok := s.pushOut.acquire(ctx.Done(), holder)
	if !ok {
		return nil, fmt.Errorf("waiting for a push slot to %s: %w", holder, ctx.Err())
	}
	defer release()
	r, err := Push(ctx, s.h, holder, s.id, c)
	s.m.observe("push", "out", err, "accepted", len(c.Blob))
	return r, err
}

func idString(id custody.CustodyID) string { return fmt.Sprintf("%d/%d", id.Commitment, id.Slot) }

// jitter returns a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(d)))
	if err != nil {
		return 0
	}
	return time.Duration(n.Int64())
}

// resourceLimited reports whether err is a stream refused or reset because
// a resource manager (this node's or the remote's) was at a limit.
func resourceLimited(err error) bool {
	if errors.Is(err, network.ErrResourceLimitExceeded) {
		return true
	}
	var se *network.StreamError
	return errors.As(err, &se) && se.ErrorCode == network.StreamResourceLimitExceeded
}

// timedOut reports whether err is a stream's deadline running out.
func timedOut(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// busy wraps err in ErrBusy if a resource manager caused it.
func busy(err error) error {
	if err != nil && resourceLimited(err) && !errors.Is(err, ErrBusy) {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

// copySpec is what tells the two protocols that carry one copy apart on
// the wire (push and repair share frames, checks and code).
type copySpec struct {
	name     string // for metrics and logs
	protocol protocol.ID
	service  string        // resource-manager service
	timeout  time.Duration // the sender's deadline for the whole stream
}

var pushSpec = copySpec{name: "push", protocol: PushProtocol, service: PushServiceName, timeout: PushTimeout}

// copyIn is a holder's side of one copy-carrying protocol: its spec, the
// allowance of active peers' streams, and who may send a custody's copy.
type copyIn struct {
	spec   copySpec
	budget *streamBudget
	// perPeer and total describe budget in refusals.
	perPeer, total int
	// authorize refuses a sender (address) the chain does not name for
	// custody c; it runs before any blob byte is read.
	authorize func(c Custody, sender string) error
}

// pushIn: only the commitment's owner pushes (repair sources use
// RepairProtocol).
func (s *Service) pushIn() *copyIn {
	return &copyIn{spec: pushSpec, budget: s.pushActive, perPeer: MaxPushStreamsPerPeer, total: activePushStreams,
		authorize: func(c Custody, sender string) error {
			if sender != c.Owner {
				return refuse(CodeNotOwner, "%s is not the owner of custody %s", sender, idString(c.ID))
			}
			return nil
		}}
}

// handlePush serves one inbound push stream.
func (s *Service) handlePush(st network.Stream) { s.handleCopy(st, s.inPush) }

// handleCopy serves one inbound push or repair stream.
func (s *Service) handleCopy(st network.Stream, in *copyIn) {
	start := time.Now()
	remote := st.Conn().RemotePeer()
	// Whatever happens next, this stream holds nothing longer than the
	// header deadline until its peer has been classified and its header read.
	if err := st.SetDeadline(start.Add(s.headerTimeout)); err != nil {
		st.Reset()
		return
	}
	res, n, class, err := s.serveCopy(st, in)
	s.m.observe(in.spec.name, "in", err, res, n)
	var ref *RefusedError
	switch {
	case errors.As(err, &ref):
		// Strangers' refusals are logged at debug level: making identities
		// is free, and logs must not be a way to fill the operator's disk.
		lvl := slog.LevelInfo
		if class == classStranger {
			lvl = slog.LevelDebug
		}
		lvl, quiet := s.quiet.level(remote, lvl)
		s.log.Log(context.Background(), lvl, in.spec.name+" refused", "peer", remote, "class", class.String(), "code", ref.Code.String(), "reason", ref.Message, "not_logged_since", quiet)
		resp := pb.PushResponse{Error: &pb.Error{Code: uint32(ref.Code), Message: truncateMessage(ref.Message)}}
		if werr := writeFrame(st, resp.Marshal()); werr != nil {
			st.Reset()
			return
		}
		st.Close()
	case err != nil:
		if timedOut(err) && !s.paused.pausedSince(start) {
			s.stalled.add(remote)
		}
		lvl, quiet := s.quiet.level(remote, slog.LevelInfo)
		s.log.Log(context.Background(), lvl, in.spec.name+" failed", "peer", remote, "err", err, "not_logged_since", quiet)
		st.Reset()
	default:
		s.log.Debug(in.spec.name+" served", "peer", remote, "result", res, "bytes", n, "took", time.Since(start))
		st.Close()
	}
}

// serveCopy classifies the remote peer, then reads, checks and stores one
// copy (a push or a repair) and writes the receipt. It returns a *RefusedError for every refusal
// (the caller sends it), another error when the stream itself failed, or the
// result label on success. Only an active node gets past the first check;
// only within its allowance does it get a service slot, memory, or a byte
// read; and only for a custody the chain assigned to this holder, of a
// commitment the pusher owns (or a repair it is the source of), with the
// committed size and copy index, is the copy read. It is stored only if it
// hashes to the committed root.
func (s *Service) serveCopy(st network.Stream, in *copyIn) (result string, n int, class peerClass, err error) {
	remote := st.Conn().RemotePeer()
	remoteKey, kerr := identity.PubKeyFromPeerID(remote)
	if kerr != nil || !s.members.IsActive(remoteKey) {
		return "", 0, classStranger, refuse(CodeNotActive, "peer %s is not an active node", remote)
	}
	class = classActive
	if d := s.stalled.left(remote); d > 0 {
		return "", 0, class, refuse(CodeBusy, "a stream of this peer ran into its deadline; refused for %v more", d.Round(time.Second))
	}
	release, ok := in.budget.acquire(remote)
	if !ok {
		return "", 0, class, refuse(CodeBusy, "over the %s allowance (%d per peer, %d for all active nodes)", in.spec.name, in.perPeer, in.total)
	}
	defer release()
	// In flight from here (an active peer within its allowance) until the
	// copy is stored and OnAccepted has run, or refused.
	landed := s.copyStarted()
	defer landed()
	if err := st.Scope().SetService(in.spec.service); err != nil {
		return "", 0, class, refuse(CodeBusy, "%s service: %v", in.spec.name, err)
	}
	if err := st.Scope().ReserveMemory(maxHeaderSize+maxResponseSize, network.ReservationPriorityAlways); err != nil {
		return "", 0, class, refuse(CodeBusy, "no memory for the header")
	}
	defer st.Scope().ReleaseMemory(maxHeaderSize + maxResponseSize)

	b, err := readFrame(st, maxHeaderSize)
	switch {
	case errors.Is(err, ErrTooLarge):
		return "", 0, class, refuse(CodeMalformed, "header over %d bytes", maxHeaderSize)
	case errors.Is(err, ErrTruncated):
		return "", 0, class, refuse(CodeTruncated, "stream ended in the header")
	case err != nil:
		return "", 0, class, fmt.Errorf("reading header: %w", err)
	}
	var hdr pb.PushHeader
	if err := hdr.Unmarshal(b); err != nil {
		return "", 0, class, refuse(CodeMalformed, "header: %v", err)
	}
	if err := checkCopyFields(hdr.Slot, hdr.CopyIndex, hdr.CommitPath); err != nil {
		return "", 0, class, refuse(CodeMalformed, "%v", err)
	}
	if _, err := identity.ParsePubKey(hdr.Owner); err != nil {
		return "", 0, class, refuse(CodeMalformed, "owner: %v", err)
	}
	if hdr.Size == 0 {
		return "", 0, class, refuse(CodeMalformed, "empty copy")
	}
	if hdr.Size > uint64(s.maxBlob) {
		return "", 0, class, refuse(CodeTooLarge, "copy of %d bytes, cap %d", hdr.Size, s.maxBlob)
	}
	id := custody.CustodyID{Commitment: hdr.Commitment, Slot: hdr.Slot}
	pusher, err := identity.AddressFromPubKey(remoteKey, s.hrp)
	if err != nil {
		return "", 0, class, refuse(CodeInternal, "address of %s: %v", remote, err)
	}
	c, err := s.custody(remote, id, pusher)
	if err != nil {
		return "", 0, class, err
	}
	if c.Holder != s.self {
		return "", 0, class, refuse(CodeNotAssigned, "custody %s is assigned to %s", idString(id), c.Holder)
	}
	if err := in.authorize(c, pusher); err != nil {
		return "", 0, class, err
	}
	owner, err := identity.AddressFromPubKey(hdr.Owner, s.hrp)
	switch {
	case c.Failed || !c.Live:
		return "", 0, class, refuse(CodeNotLive, "custody %s has failed or its commitment no longer counts", idString(id))
	case err != nil || owner != c.Owner:
		return "", 0, class, refuse(CodeWrongCopy, "owner key %x is not the commitment owner %s's", hdr.Owner, c.Owner)
	case hdr.Size != c.Size || int(hdr.CopyIndex) != c.CopyIndex:
		return "", 0, class, refuse(CodeWrongCopy, "copy %d of %d bytes, custody %s holds copy %d of %d bytes",
			hdr.CopyIndex, hdr.Size, idString(id), c.CopyIndex, c.Size)
	}
	size := int(hdr.Size)
	if err := s.admit(hdr.Owner, id, int64(size)); err != nil {
		return "", 0, class, err
	}

	// The body has its own deadline, from here.
	if err := st.SetDeadline(time.Now().Add(s.pushTimeout)); err != nil {
		return "", 0, class, fmt.Errorf("setting deadline: %w", err)
	}
	blob, err := readBlob(st, size)
	switch {
	case errors.Is(err, ErrBusy):
		return "", 0, class, refuse(CodeBusy, "no memory for a %d-byte copy", size)
	case errors.Is(err, ErrTruncated):
		return "", 0, class, refuse(CodeTruncated, "stream ended before %d copy bytes", size)
	case err != nil:
		return "", 0, class, err
	}
	defer st.Scope().ReleaseMemory(size)
	// The copy is hashed once: its root is checked here and named in the
	// receipt.
	root, err := custody.VerifyCopyRoot(c.Root, c.Size, c.Copies, c.CopyIndex, hdr.CommitPath, blob)
	if err != nil {
		return "", 0, class, refuse(CodeBadCopy, "custody %s: %v", idString(id), err)
	}

	// The digest is left to the store, which hashes the copy once for it.
	e := store.Entry{
		Custody: id, Owner: hdr.Owner, Vault: c.Vault, CopyIndex: c.CopyIndex, Copies: c.Copies,
		CommitPath: hdr.CommitPath, Size: int64(size), Received: time.Now(),
	}
	entry, result, err := s.commit(e, blob)
	landed()
	if err != nil {
		return "", 0, class, err
	}
	r := &Receipt{
		Holder: s.id.PubKey(), Pusher: remoteKey, Custody: id, CopyIndex: entry.CopyIndex,
		Size: entry.Size, Time: entry.Received, CopyRoot: root,
	}
	signReceipt(s.id, r)
	// The slot is given back before the receipt goes out: an owner that has
	// read it may open its next push at once, and must find the slot free.
	release()
	if err := writeFrame(st, (&pb.PushResponse{Receipt: r.toPB()}).Marshal()); err != nil {
		return "", 0, class, fmt.Errorf("writing receipt: %w", err)
	}
	return result, size, class, nil
}

// custody returns what the chain says of custody id for a push by remote
// (address pusher): from the holder's view if it has it, else from a chain
// lookup within remote's lookup allowance. A view that names another source
// than the pusher for a repair's custody is looked up again: the chain
// redraws a source that did not deliver in time.
func (s *Service) custody(remote peer.ID, id custody.CustodyID, pusher string) (Custody, error) {
	c, ok := s.members.Cached(id)
	if ok && (c.Source == "" || c.Source == pusher || c.Owner == pusher || c.Holder != s.self) {
		return c, nil
	}
	if !s.lookupLimit.allow(remote) {
		return Custody{}, refuse(CodeRateLimited, "too many pushes naming custodies this holder must look up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	c, err := s.members.Lookup(ctx, id)
	switch {
	case errors.Is(err, ErrUnknownCustody):
		return Custody{}, refuse(CodeUnknownCustody, "custody %s is not in chain state", idString(id))
	case err != nil:
		s.log.Warn("reading a custody from the chain", "custody", idString(id), "err", err)
		return Custody{}, refuse(CodeBusy, "cannot read custody %s from the chain now", idString(id))
	case c.ID != id:
		return Custody{}, refuse(CodeInternal, "the chain view answered custody %s for %s", idString(c.ID), idString(id))
	}
	return c, nil
}

// admit checks the owner's quota for storing a copy of size bytes for
// custody id (a copy already stored for id needs no more quota).
// Both come from the store's accounts in memory: no scan of what the owner
// keeps, and no database read (which would wait for the sync in progress).
func (s *Service) admit(owner []byte, id custody.CustodyID, size int64) error {
	if s.st.Holds(owner, id) {
		return nil
	}
	blobs, used, err := s.st.Usage(owner)
	if err != nil {
		return refuse(CodeInternal, "reading the owner's usage")
	}
	if blobs+1 > s.quotaBlobs || used+size > s.quotaBytes {
		return refuse(CodeOverQuota, "owner keeps %d copies, %d bytes here; quota %d copies, %d bytes", blobs, used, s.quotaBlobs, s.quotaBytes)
	}
	return nil
}

// commit stores a verified copy durably, with the daemon's records
// (AcceptRecords) in the same transaction, under the owner's lock so that
// the quota check and the write are one step, and runs the callback.
func (s *Service) commit(e store.Entry, blob []byte) (store.Entry, string, error) {
	unlock := s.owners.lock(string(e.Owner))
	defer unlock()
	if err := s.admit(e.Owner, e.Custody, e.Size); err != nil {
		return store.Entry{}, "", err
	}
	var acc Acceptance
	if s.acceptRecords != nil {
		acc = s.acceptRecords(e)
	}
	written, added, err := s.st.PutWithMeta(e, blob, acc.Records...)
	if acc.Done != nil {
		acc.Done(err == nil)
	}
	if err != nil {
		s.log.Error("storing copy", "custody", idString(e.Custody), "err", err)
		return store.Entry{}, "", refuse(CodeInternal, "storing the copy failed")
	}
	e = written
	result := "accepted"
	if !added {
		result = "duplicate"
		// The stored entry's time is the one the receipt states.
		if old, _, err := s.st.Get(e.Custody); err == nil {
			e = old
		}
	}
	if err := s.accepted(e); err != nil {
		return store.Entry{}, "", err
	}
	return e, result, nil
}

// accepted runs the OnAccepted callback; its failure refuses the push.
func (s *Service) accepted(e store.Entry) error {
	if s.onAccepted == nil {
		return nil
	}
	if err := s.onAccepted(e); err != nil {
		s.log.Error("recording an accepted copy", "custody", idString(e.Custody), "err", err)
		return refuse(CodeInternal, "recording the copy failed")
	}
	return nil
}
