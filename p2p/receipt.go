package p2p

import (
	"fmt"
	"time"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p/internal/pb"
)

// receiptDomain prefixes the bytes a holder signs for a receipt, so that a
// receipt signature can never be mistaken for a signature over another ksb
// message (heartbeat, recovery request, chain transaction). v2: receipts
// name a custody.
const receiptDomain = "ksb/receipt/v2\n"

// Receipt is a holder's signed statement that it has stored a copy durably
// for a custody.
type Receipt struct {
	Holder    []byte            // holder's 33-byte compressed public key
	Pusher    []byte            // the pushing node's key (the owner, or a repair's source)
	Custody   custody.CustodyID // the custody the copy is held for
	CopyIndex int               // the copy's index
	Size      int64             // copy length in bytes
	CopyRoot  [32]byte          // custody.CopyRoot of the copy
	Time      time.Time         // when the holder stored the copy (its clock)
	Signature []byte            // holder's signature over SignedMessage
}

func (r *Receipt) toPB() *pb.Receipt {
	return &pb.Receipt{
		Holder:       r.Holder,
		Pusher:       r.Pusher,
		Commitment:   r.Custody.Commitment,
		Slot:         r.Custody.Slot,
		CopyIndex:    uint32(r.CopyIndex),
		Size:         uint64(r.Size),
		CopyRoot:     r.CopyRoot[:],
		TimeUnixNano: r.Time.UnixNano(),
		Signature:    r.Signature,
	}
}

func receiptFromPB(p *pb.Receipt) (*Receipt, error) {
	if len(p.CopyRoot) != digestSize {
		return nil, fmt.Errorf("%w: copy root of %d bytes", ErrBadReceipt, len(p.CopyRoot))
	}
	if p.Size > MaxBlobSize {
		return nil, fmt.Errorf("%w: size %d over cap", ErrBadReceipt, p.Size)
	}
	if p.Slot > maxSlot || p.CopyIndex >= custody.MaxCopies {
		return nil, fmt.Errorf("%w: slot %d, copy %d", ErrBadReceipt, p.Slot, p.CopyIndex)
	}
	r := &Receipt{
		Holder:    p.Holder,
		Pusher:    p.Pusher,
		Custody:   custody.CustodyID{Commitment: p.Commitment, Slot: p.Slot},
		CopyIndex: int(p.CopyIndex),
		Size:      int64(p.Size),
		Time:      time.Unix(0, p.TimeUnixNano),
		Signature: p.Signature,
	}
	copy(r.CopyRoot[:], p.CopyRoot)
	return r, nil
}

// SignedMessage returns the bytes the holder signs: the domain tag
// "ksb/receipt/v2\n" followed by the protobuf encoding of every field but
// the signature. identity.Verify(r.Holder, r.SignedMessage(), r.Signature)
// checks a receipt.
func (r *Receipt) SignedMessage() []byte {
	return append([]byte(receiptDomain), r.toPB().Unsigned()...)
}

// Verify checks that the receipt is signed by its Holder key.
func (r *Receipt) Verify() error {
	if err := identity.Verify(r.Holder, r.SignedMessage(), r.Signature); err != nil {
		return fmt.Errorf("%w: %w", ErrBadReceipt, err)
	}
	return nil
}

// MarshalBinary encodes the receipt (protobuf, as on the wire) so that the
// daemon can keep it.
func (r *Receipt) MarshalBinary() ([]byte, error) { return r.toPB().Marshal(), nil }

// UnmarshalBinary decodes a receipt written by MarshalBinary. It does not
// verify the signature; call Verify.
func (r *Receipt) UnmarshalBinary(b []byte) error {
	var p pb.Receipt
	if err := p.Unmarshal(b); err != nil {
		return fmt.Errorf("%w: %w", ErrBadReceipt, err)
	}
	got, err := receiptFromPB(&p)
	if err != nil {
		return err
	}
	*r = *got
	return nil
}

func signReceipt(id *identity.Identity, r *Receipt) {
	r.Signature = id.Sign(r.SignedMessage())
}
