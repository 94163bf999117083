package p2p

import (
	"fmt"
	"time"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p/internal/pb"
)

// receiptDomain prefixes the bytes a holder signs for a receipt, so that a
// receipt signature can never be mistaken for a signature over another ksb
// message (heartbeat, recovery request, chain transaction).
const receiptDomain = "ksb/receipt/v1\n"

// Receipt is a holder's signed statement that it has stored a blob durably.
type Receipt struct {
	Holder    []byte    // holder's 33-byte compressed public key
	Owner     []byte    // owner's 33-byte compressed public key
	Vault     string    // vault public key
	Digest    [32]byte  // sha256 of the blob
	Size      int64     // blob length in bytes
	Time      time.Time // when the holder stored the blob (its clock)
	Signature []byte    // holder's signature over SignedMessage
}

func (r *Receipt) toPB() *pb.Receipt {
	return &pb.Receipt{
		Holder:       r.Holder,
		Owner:        r.Owner,
		Vault:        r.Vault,
		Digest:       r.Digest[:],
		Size:         uint64(r.Size),
		TimeUnixNano: r.Time.UnixNano(),
		Signature:    r.Signature,
	}
}

func receiptFromPB(p *pb.Receipt) (*Receipt, error) {
	if len(p.Digest) != digestSize {
		return nil, fmt.Errorf("%w: digest of %d bytes", ErrBadReceipt, len(p.Digest))
	}
	if p.Size > MaxBlobSize {
		return nil, fmt.Errorf("%w: size %d over cap", ErrBadReceipt, p.Size)
	}
	r := &Receipt{
		Holder:    p.Holder,
		Owner:     p.Owner,
		Vault:     p.Vault,
		Size:      int64(p.Size),
		Time:      time.Unix(0, p.TimeUnixNano),
		Signature: p.Signature,
	}
	copy(r.Digest[:], p.Digest)
	return r, nil
}

// SignedMessage returns the bytes the holder signs: the domain tag
// "ksb/receipt/v1\n" followed by the protobuf encoding of every field but the
// signature. identity.Verify(r.Holder, r.SignedMessage(), r.Signature)
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
