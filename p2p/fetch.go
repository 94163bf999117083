package p2p

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p/internal/pb"
	"github.com/ksb-project/ksb/store"
)

// Fetched is one copy received from a holder, checked against its entry
// header (size and sha256). Whether it is a copy of a commitment (its
// custody, copy index and commit path, custody.VerifyCopy) and whether it
// opens with the mnemonic are for the caller to find out.
type Fetched struct {
	// Holder is the peer that sent the copy.
	Holder peer.ID
	// Entry is the holder's header for the copy; Entry.Owner is always the
	// fetching node.
	store.Entry
	// Blob is the copy.
	Blob []byte
}

// Fetch asks holder for this node's copies over FetchProtocol: those of
// vault, or of every vault when vault is empty, and only those of
// commitment when it is not 0. The holder answers only the owner, which
// Noise authenticates as the host's own peer ID. Fetch enforces
// MaxFetchEntries, MaxFetchBytes and MaxBlobSize on what it reads, and
// checks each copy's size and sha256 against its header and the request;
// any violation fails the whole fetch (the holder is not to be trusted
// further). A refusal is returned as a *RefusedError (CodeNotFound when the
// holder has nothing for this node). A busy holder (CodeBusy, or a stream
// refused or reset by a resource manager) is asked again with backoff, as
// Service.Push does, within ctx; if it stays busy the error wraps ErrBusy.
func Fetch(ctx context.Context, h host.Host, holder peer.ID, vault string, commitment uint64) ([]Fetched, error) {
	if vault != "" {
		if err := validVault(vault); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	self, err := identity.PubKeyFromPeerID(h.ID())
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	backoff := pushBusyBackoff
	for try := 0; ; try++ {
		got, err := fetchOnce(ctx, h, holder, self, vault, commitment)
		if err == nil || !errors.Is(err, ErrBusy) || try == pushBusyRetries {
			return got, err
		}
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

func fetchOnce(ctx context.Context, h host.Host, holder peer.ID, self []byte, vault string, commitment uint64) ([]Fetched, error) {
	s, err := h.NewStream(ctx, holder, FetchProtocol)
	if err != nil {
		return nil, busy(fmt.Errorf("opening fetch stream to %s: %w", holder, err))
	}
	// Cancelling ctx aborts the stream at once (the deadline covers a holder
	// that is merely slow).
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	got, err := fetchOnStream(ctx, s, self, vault, commitment)
	if err != nil {
		s.Reset()
		return nil, busy(fmt.Errorf("fetching from %s: %w", holder, err))
	}
	s.Close()
	return got, nil
}

func fetchOnStream(ctx context.Context, s network.Stream, self []byte, vault string, commitment uint64) ([]Fetched, error) {
	if err := s.Scope().SetService(FetchServiceName); err != nil {
		return nil, fmt.Errorf("attaching fetch stream to its service: %w", err)
	}
	if err := s.SetDeadline(deadline(ctx, FetchTimeout)); err != nil {
		return nil, fmt.Errorf("setting deadline: %w", err)
	}
	req := pb.FetchRequest{Vault: vault, Commitment: commitment}
	// A holder may answer before reading the request (it refuses a peer it
	// holds nothing for at once) and stop reading, so writing the request or
	// closing the write side can fail while the answer is on its way: the
	// answer is what counts, and the write error only if there is none.
	werr := writeFrame(s, req.Marshal())
	_ = s.CloseWrite()
	got, err := receiveEntries(s, self, func(e *pb.EntryHeader) error {
		if vault != "" && e.Vault != vault {
			return fmt.Errorf("%w: asked for vault %q, got %q", ErrProtocol, vault, e.Vault)
		}
		if commitment != 0 && e.Commitment != commitment {
			return fmt.Errorf("%w: asked for commitment %d, got %d", ErrProtocol, commitment, e.Commitment)
		}
		return nil
	})
	var ref *RefusedError
	if err != nil && werr != nil && !errors.As(err, &ref) {
		return nil, fmt.Errorf("sending request: %w", werr)
	}
	return got, err
}

// receiveEntries reads a stream of {entry header, blob} frames closed by an
// end frame, as sent by sendEntries, for the owner self. check may refuse an
// entry header before its blob is read.
func receiveEntries(s network.Stream, self []byte, check func(*pb.EntryHeader) error) ([]Fetched, error) {
	if err := s.Scope().ReserveMemory(maxResponseSize, network.ReservationPriorityAlways); err != nil {
		return nil, fmt.Errorf("%w: reserving frame buffer: %v", ErrBusy, err)
	}
	defer s.Scope().ReleaseMemory(maxResponseSize)
	remote := s.Conn().RemotePeer()
	var (
		out   []Fetched
		total int
	)
	for {
		b, err := readFrame(s, maxResponseSize)
		if err != nil {
			return nil, fmt.Errorf("reading frame: %w", err)
		}
		var f pb.Frame
		if err := f.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("%w: frame: %w", ErrMalformed, err)
		}
		switch {
		case f.Error != nil:
			return nil, &RefusedError{Code: Code(f.Error.Code), Message: f.Error.Message}
		case f.End != nil:
			if int(f.End.Count) != len(out) {
				return nil, fmt.Errorf("%w: end frame counts %d entries, %d were sent", ErrProtocol, f.End.Count, len(out))
			}
			return out, nil
		}
		e := f.Entry
		switch {
		case !bytes.Equal(e.Owner, self):
			return nil, fmt.Errorf("%w: entry of owner %x, not ours", ErrProtocol, e.Owner)
		case validVault(e.Vault) != nil:
			return nil, fmt.Errorf("%w: entry vault: %v", ErrMalformed, validVault(e.Vault))
		case len(e.Digest) != digestSize:
			return nil, fmt.Errorf("%w: entry digest of %d bytes", ErrMalformed, len(e.Digest))
		case e.Size == 0 || e.Size > MaxBlobSize:
			return nil, fmt.Errorf("%w: entry of %d bytes, want 1 to %d", ErrTooLarge, e.Size, MaxBlobSize)
		case checkCopyFields(e.Slot, e.CopyIndex, e.CommitPath) != nil || e.Copies == 0 || e.Copies > custody.MaxCopies || e.CopyIndex >= e.Copies:
			return nil, fmt.Errorf("%w: entry of custody %d/%d, copy %d of %d", ErrMalformed, e.Commitment, e.Slot, e.CopyIndex, e.Copies)
		case len(out) >= MaxFetchEntries:
			return nil, fmt.Errorf("%w: more than %d entries", ErrTooLarge, MaxFetchEntries)
		case total+int(e.Size) > MaxFetchBytes:
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxFetchBytes)
		}
		if err := check(e); err != nil {
			return nil, err
		}
		blob, err := readBlob(s, int(e.Size))
		if err != nil {
			return nil, err
		}
		// The reservation guards the read; the result is the caller's memory,
		// bounded by MaxFetchBytes.
		s.Scope().ReleaseMemory(int(e.Size))
		if !bytes.Equal(sumOf(blob), e.Digest) {
			return nil, fmt.Errorf("%w: %s entry %d (vault %s)", ErrDigestMismatch, remote, len(out), e.Vault)
		}
		total += int(e.Size)
		got := Fetched{Holder: remote, Blob: blob, Entry: store.Entry{
			Custody: custody.CustodyID{Commitment: e.Commitment, Slot: e.Slot},
			Owner:   e.Owner, Vault: e.Vault, CopyIndex: int(e.CopyIndex), Copies: int(e.Copies), CommitPath: e.CommitPath,
			Size: int64(e.Size), Received: time.Unix(0, e.ReceivedUnixNano),
		}}
		copy(got.Digest[:], e.Digest)
		out = append(out, got)
	}
}

func sumOf(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}

// sendEntries writes each entry's header and copy, read from st one at a
// time with its memory reserved, then an end frame. An entry deleted or
// changed since it was listed, or whose copy no longer reads back intact,
// is skipped.
func sendEntries(s network.Stream, st Store, entries []store.Entry) (count, n int, err error) {
	for _, want := range entries {
		e, blob, err := st.Get(want.Custody)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCorrupt) || (err == nil && (e.Digest != want.Digest || !bytes.Equal(e.Owner, want.Owner))) {
			continue
		}
		if err != nil {
			return count, n, refuse(CodeInternal, "reading a blob failed")
		}
		if err := s.Scope().ReserveMemory(len(blob), network.ReservationPriorityHigh); err != nil {
			return count, n, refuse(CodeBusy, "no memory to send a %d-byte blob", len(blob))
		}
		hdr := pb.Frame{Entry: &pb.EntryHeader{
			Owner: e.Owner, Vault: e.Vault, Digest: e.Digest[:], Size: uint64(len(blob)),
			ReceivedUnixNano: e.Received.UnixNano(),
			Commitment:       e.Custody.Commitment, Slot: e.Custody.Slot,
			CopyIndex: uint32(e.CopyIndex), Copies: uint32(e.Copies), CommitPath: e.CommitPath,
		}}
		err = writeFrame(s, hdr.Marshal())
		if err == nil {
			_, err = s.Write(blob)
		}
		s.Scope().ReleaseMemory(len(blob))
		if err != nil {
			return count, n, fmt.Errorf("sending blob: %w", err)
		}
		count++
		n += len(blob)
	}
	if err := writeFrame(s, (&pb.Frame{End: &pb.End{Count: uint32(count)}}).Marshal()); err != nil {
		return count, n, fmt.Errorf("sending end frame: %w", err)
	}
	return count, n, nil
}

// writeRefusal sends ref as an error frame of a fetch or return stream and
// closes the stream (resetting it if even that fails).
func writeRefusal(s network.Stream, ref *RefusedError) {
	f := pb.Frame{Error: &pb.Error{Code: uint32(ref.Code), Message: truncateMessage(ref.Message)}}
	if err := writeFrame(s, f.Marshal()); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// handleFetch serves one inbound fetch stream.
func (s *Service) handleFetch(st network.Stream) {
	start := time.Now()
	remote := st.Conn().RemotePeer()
	// Nothing holds this stream past the header deadline until its peer has
	// been classified and its request read.
	if err := st.SetDeadline(time.Now().Add(s.headerTimeout)); err != nil {
		st.Reset()
		return
	}
	n, class, err := s.serveFetch(st)
	s.m.observe("fetch", "in", err, "ok", n)
	var ref *RefusedError
	switch {
	case errors.As(err, &ref):
		// Strangers' refusals are logged at debug level (identities are
		// free; logs must not be a way to fill the operator's disk).
		lvl := slog.LevelInfo
		if class == classStranger {
			lvl = slog.LevelDebug
		}
		lvl, quiet := s.quiet.level(remote, lvl)
		s.log.Log(context.Background(), lvl, "fetch refused", "peer", remote, "class", class.String(), "code", ref.Code.String(), "reason", ref.Message, "not_logged_since", quiet)
		writeRefusal(st, ref)
	case err != nil:
		if timedOut(err) && !s.paused.pausedSince(start) {
			s.stalled.add(remote)
		}
		lvl, quiet := s.quiet.level(remote, slog.LevelInfo)
		s.log.Log(context.Background(), lvl, "fetch failed", "peer", remote, "err", err, "not_logged_since", quiet)
		st.Reset()
	default:
		s.log.Info("fetch served", "peer", remote, "class", class.String(), "bytes", n)
		st.Close()
	}
}

// classifyFetch decides who the remote peer of a fetch is, from its peer ID
// and, for a peer that is not an active node, whether this holder keeps any
// blob of its key (an index lookup of at most the owner's quota of entries).
// It returns the peer's key and, for an owner that is not active, its
// entries.
func (s *Service) classifyFetch(remote peer.ID) ([]byte, peerClass, []store.Entry, error) {
	key, err := identity.PubKeyFromPeerID(remote)
	if err != nil {
		return nil, classStranger, nil, nil
	}
	if s.members.IsActive(key) {
		return key, classActive, nil, nil
	}
	held, err := s.st.Entries(key)
	if err != nil {
		return key, classStranger, nil, refuse(CodeInternal, "reading entries")
	}
	if len(held) == 0 {
		return key, classStranger, nil, nil
	}
	return key, classOwner, held, nil
}

func (s *Service) serveFetch(st network.Stream) (int, peerClass, error) {
	remote := st.Conn().RemotePeer()
	owner, class, held, err := s.classifyFetch(remote)
	if err != nil {
		return 0, class, err
	}
	if class == classStranger {
		// Nothing here is this peer's: the answer is known before reading
		// its request. No memory, no service slot, no rate-limit bucket.
		return 0, class, refuse(CodeNotFound, "nothing held for %s", remote)
	}
	if d := s.stalled.left(remote); d > 0 {
		return 0, class, refuse(CodeBusy, "a stream of this peer ran into its deadline; refused for %v more", d.Round(time.Second))
	}
	var budget *streamBudget
	switch class {
	case classOwner:
		// Per peer first, so that a peer over its own rate does not spend
		// the tokens all non-active owners share.
		if !s.fetchLimit.allow(remote) {
			return 0, class, refuse(CodeRateLimited, "too many fetches")
		}
		if !s.strangerFetchLimit.allow("") {
			return 0, class, refuse(CodeRateLimited, "too many fetches by owners that are not active nodes")
		}
		budget = s.fetchStrangers
	default:
		if !s.fetchLimit.allow(remote) {
			return 0, class, refuse(CodeRateLimited, "too many fetches")
		}
		budget = s.fetchActive
	}
	release, ok := budget.acquire(remote)
	if !ok {
		return 0, class, refuse(CodeBusy, "over the fetch allowance of %s peers", class)
	}
	defer release()
	if err := st.Scope().SetService(FetchServiceName); err != nil {
		return 0, class, refuse(CodeBusy, "fetch service: %v", err)
	}
	if err := st.Scope().ReserveMemory(maxRequestSize+maxResponseSize, network.ReservationPriorityAlways); err != nil {
		return 0, class, refuse(CodeBusy, "no memory for the request")
	}
	defer st.Scope().ReleaseMemory(maxRequestSize + maxResponseSize)
	// The request (at most maxRequestSize, already reserved) is read before
	// any later refusal, so the requester has finished writing when the
	// refusal frame is sent and the stream closed.
	b, err := readFrame(st, maxRequestSize)
	switch {
	case errors.Is(err, ErrTooLarge):
		return 0, class, refuse(CodeMalformed, "request over %d bytes", maxRequestSize)
	case errors.Is(err, ErrTruncated):
		return 0, class, refuse(CodeTruncated, "stream ended in the request")
	case err != nil:
		return 0, class, fmt.Errorf("reading request: %w", err)
	}
	var req pb.FetchRequest
	if err := req.Unmarshal(b); err != nil {
		return 0, class, refuse(CodeMalformed, "request: %v", err)
	}
	if req.Vault != "" {
		if err := validVault(req.Vault); err != nil {
			return 0, class, refuse(CodeMalformed, "%v", err)
		}
	}
	// The answer has its own deadline, from here.
	if err := st.SetDeadline(time.Now().Add(s.fetchTimeout)); err != nil {
		return 0, class, fmt.Errorf("setting deadline: %w", err)
	}
	match := func(e store.Entry) bool {
		return (req.Vault == "" || e.Vault == req.Vault) && (req.Commitment == 0 || e.Custody.Commitment == req.Commitment)
	}

	if held == nil {
		if held, err = s.st.Entries(owner); err != nil {
			return 0, class, refuse(CodeInternal, "reading entries")
		}
	}
	var mine []store.Entry
	for _, e := range held {
		if match(e) {
			mine = append(mine, e)
		}
	}
	if len(mine) == 0 {
		// An active node naming a vault or commitment that is held, for
		// someone else, is told so; that it is held is public (custodies
		// are on chain). Only active nodes (a bounded set, each
		// rate-limited) make the holder scan every entry for that.
		if class == classActive && (req.Vault != "" || req.Commitment != 0) {
			all, err := s.st.Entries(nil)
			if err != nil {
				return 0, class, refuse(CodeInternal, "reading entries")
			}
			for _, e := range all {
				if match(e) {
					return 0, class, refuse(CodeNotOwner, "peer %s does not own what it asks for", remote)
				}
			}
		}
		return 0, class, refuse(CodeNotFound, "nothing held for %s", remote)
	}
	_, n, err := sendEntries(st, s.st, mine)
	return n, class, err
}
