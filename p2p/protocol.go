package p2p

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/internal/field"
	"github.com/ksb-project/ksb/store"
)

// Protocol IDs, resource-manager service names, caps and timeouts of the
// stream protocols (docs/protocol.md gives the frames).
const (
	// PushProtocol carries one sealed copy from its owner to the holder the
	// chain assigned it to (a custody): version 2, whose header names the
	// custody and carries the copy's commit path.
	PushProtocol protocol.ID = "/ksb/push/2.0.0"
	// FetchProtocol returns an owner's copies to that owner, on its
	// request, each with its custody, copy index and commit path.
	FetchProtocol protocol.ID = "/ksb/fetch/2.0.0"
	// ReturnProtocol carries an owner's copies from a holder to the owner
	// after a recovery request on gossip; the holder opens the stream, offers
	// the copies (a ReturnOffer) and sends them, as fetch v2's entries, only
	// if the owner accepts.
	ReturnProtocol protocol.ID = "/ksb/return/2.0.0"

	// PushServiceName, FetchServiceName and ReturnServiceName are the
	// resource-manager services the streams of each protocol are attached
	// to (see Limits).
	PushServiceName   = "ksb.push"
	FetchServiceName  = "ksb.fetch"
	ReturnServiceName = "ksb.return"

	// MaxBlobSize is the largest blob any ksb protocol carries: the store's
	// cap (just under 1 MiB, the largest value Badger keeps inline). A sealed
	// keyshare of a 40-member vault is under 100 KiB, so this is ten times
	// the largest real blob while bounding what one stream can make a peer
	// allocate.
	MaxBlobSize = store.MaxBlobSize

	// MaxVaultLen is the longest vault public key string (the store's cap):
	// a bech32 "thorpub1…" key is about 80 characters.
	MaxVaultLen = store.MaxVaultLen

	// maxHeaderSize caps a push header: four varints (at most 40 bytes with
	// their tags), a commit path of at most maxCommitPath 32-byte hashes
	// (204 bytes framed) and a 33-byte key take under 290 bytes.
	maxHeaderSize = 512
	// maxRequestSize caps a fetch request: a vault of at most MaxVaultLen
	// and a commitment id.
	maxRequestSize = 256
	// maxResponseSize caps a push response or fetch/return frame: a receipt
	// (two keys, four varints, a copy root, time, 64-byte signature) is under
	// 250 bytes; an entry header (a key, a vault of at most MaxVaultLen, a
	// digest, six varints, a 6-hash commit path) under 560; an error frame
	// under maxErrorMessage+8.
	maxResponseSize = 1024

	// maxCommitPath caps a commit path: a commitment has at most
	// custody.MaxCopies = 2^6 copies, so a copy root is at most 6 levels
	// below the commitment root.
	maxCommitPath = 6
	// maxSlot is the largest slot of a custody: the chain packs it into 8
	// bits of a custody id.
	maxSlot = 255
	// maxErrorMessage truncates the text of an error frame; the code is what
	// programs act on, the text is for logs.
	maxErrorMessage = 256

	// PushTimeout is the deadline of a whole push stream, both sides: a
	// 1 MiB blob takes 8 s on a 1 Mbit/s link, plus an fsync; a stalled or
	// slow peer holds a stream slot no longer than this.
	PushTimeout = 30 * time.Second
	// FetchTimeout is the deadline of a whole fetch or return stream: it may
	// carry several blobs (an owner is in a few vaults at most).
	FetchTimeout = time.Minute

	// MaxFetchEntries and MaxFetchBytes cap what Fetch and a recovering
	// node accept from one stream. An owner keeps one blob per vault it is a
	// member of, and nodes are in a handful of vaults; the caps are far above
	// that and below what would exhaust the recovering machine.
	MaxFetchEntries = 256
	MaxFetchBytes   = 64 << 20
)

// digestSize is the length of a sha256 digest, and of a commit path hash.
const digestSize = 32

// checkCopyFields checks what a push header or fetch entry says of a copy
// before anything is read or allocated for it: slot, copy index and commit
// path within their caps.
func checkCopyFields(slot uint64, copyIndex uint32, path [][]byte) error {
	switch {
	case slot > maxSlot:
		return fmt.Errorf("slot %d, at most %d", slot, maxSlot)
	case copyIndex >= custody.MaxCopies:
		return fmt.Errorf("copy index %d, at most %d", copyIndex, custody.MaxCopies-1)
	case len(path) > maxCommitPath:
		return fmt.Errorf("commit path of %d hashes, at most %d", len(path), maxCommitPath)
	}
	for i, h := range path {
		if len(h) != digestSize {
			return fmt.Errorf("commit path hash %d is %d bytes", i, len(h))
		}
	}
	return nil
}

// readFrame reads one varint-delimited frame of at most max bytes.
func readFrame(r io.Reader, max int) ([]byte, error) {
	vr := msgio.NewVarintReaderSize(r, max)
	msg, err := vr.ReadMsg()
	switch {
	case errors.Is(err, msgio.ErrMsgTooLarge):
		return nil, fmt.Errorf("%w: frame over %d bytes", ErrTooLarge, max)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if msg != nil {
			vr.ReleaseMsg(msg)
		}
		return nil, fmt.Errorf("%w: %v", ErrTruncated, err)
	case err != nil:
		return nil, err
	}
	out := append([]byte(nil), msg...)
	vr.ReleaseMsg(msg)
	return out, nil
}

// writeFrame writes msg as one varint-delimited frame.
func writeFrame(w io.Writer, msg []byte) error {
	b := protowire.AppendVarint(make([]byte, 0, len(msg)+protowire.SizeVarint(uint64(len(msg)))), uint64(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

// readBlob reads exactly size bytes after reserving them in the stream's
// scope. The caller releases the reservation.
func readBlob(s network.Stream, size int) ([]byte, error) {
	if err := s.Scope().ReserveMemory(size, network.ReservationPriorityHigh); err != nil {
		return nil, fmt.Errorf("%w: reserving %d bytes: %v", ErrBusy, size, err)
	}
	blob := make([]byte, size)
	if _, err := io.ReadFull(s, blob); err != nil {
		s.Scope().ReleaseMemory(size)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: blob of %d bytes: %v", ErrTruncated, size, err)
		}
		return nil, fmt.Errorf("reading blob: %w", err)
	}
	return blob, nil
}

// validVault reports whether v is a vault key the store keeps and the
// attestation chain accepts: one definition for all three (field.Vault), so
// that no blob a holder acknowledges is refused when it attests it.
func validVault(v string) error { return field.Vault(v) }

func truncateMessage(m string) string {
	if len(m) > maxErrorMessage {
		return m[:maxErrorMessage]
	}
	return m
}
