package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ksb-project/ksb/attest/attestpb"
	"github.com/ksb-project/ksb/identity"
)

// signDomain starts the bytes every transaction signature covers, so that a
// signature over a ksb transaction is never valid for anything else. v2:
// the transactions of proto/ksb/attest/v2.
const signDomain = "ksb/attest/tx/v2\x00"

const (
	signatureSize = 64
	pubKeySize    = 33

	// AuthorityAccount is the authority's account number: the only signer
	// of a Churn.
	AuthorityAccount = 0
)

// Tx is a signed transaction.
type Tx struct {
	// Signer is the signer's account number (Node.Account; the authority
	// is AuthorityAccount).
	Signer uint64
	// Sequence is the account's next sequence number on the chain.
	Sequence uint64
	// Msg is the message.
	Msg Msg
	// Signature is the 64-byte r||s signature over SignBytes.
	Signature []byte
}

// SignTx builds the transaction carrying msg, signed by id as account
// account at sequence seq for chain chainID, and returns its encoding. It
// refuses a message that the chain would refuse without looking at its
// state; hrp is the chain's address prefix (identity.DefaultHRP on
// THORChain).
func SignTx(id *identity.Identity, chainID, hrp string, account, seq uint64, msg Msg) ([]byte, error) {
	tx := &Tx{Signer: account, Sequence: seq, Msg: msg}
	if err := tx.checkBasic(hrp); err != nil {
		return nil, err
	}
	tx.Signature = id.Sign(tx.SignBytes(chainID))
	b := tx.Encode()
	if b == nil {
		return nil, fmt.Errorf("%s: a string is not UTF-8: %w", msg.Type(), ErrInvalid)
	}
	if len(b) > MaxTxSize {
		return nil, fmt.Errorf("transaction of %d bytes, at most %d: %w", len(b), MaxTxSize, ErrTooLarge)
	}
	return b, nil
}

// SignBytes returns what the signature covers on chain chainID: the domain
// tag "ksb/attest/tx/v2\x00", the chain ID preceded by its length as a
// uvarint, then the encoding of tx without its signature. The chain ID is
// signed but not sent: a transaction for another chain fails its signature.
func (tx *Tx) SignBytes(chainID string) []byte {
	b := append([]byte(nil), signDomain...)
	b = binary.AppendUvarint(b, uint64(len(chainID)))
	b = append(b, chainID...)
	unsigned := *tx
	unsigned.Signature = nil
	return append(b, marshal(unsigned.toPB())...)
}

// Encode returns the canonical protobuf encoding of tx (nil if a string in
// it is not UTF-8, which SignTx and DecodeTx never let through).
func (tx *Tx) Encode() []byte { return marshal(tx.toPB()) }

// Hash returns the CometBFT hash of an encoded transaction (sha256), as the
// upper-case hex that RPC answers use.
func Hash(encoded []byte) string {
	h := sha256.Sum256(encoded)
	return fmt.Sprintf("%X", h[:])
}

// Verify checks the signature (low S, see identity.Verify) for chain
// chainID under pubKey, the 33-byte key of the signer's account.
func (tx *Tx) Verify(chainID string, pubKey []byte) error {
	if err := identity.Verify(pubKey, tx.SignBytes(chainID), tx.Signature); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}

// checkBasic is every check that needs no chain state: the message content,
// and that a Churn comes from the authority's account and nothing else does.
func (tx *Tx) checkBasic(hrp string) error {
	if tx.Msg == nil {
		return fmt.Errorf("no message: %w", ErrMalformed)
	}
	if _, churn := tx.Msg.(*Churn); churn != (tx.Signer == AuthorityAccount) {
		if churn {
			return fmt.Errorf("churn signed by account %d, not the authority's (%d): %w", tx.Signer, AuthorityAccount, ErrUnauthorized)
		}
		return fmt.Errorf("the authority's account signs churns only, not %s: %w", tx.Msg.Type(), ErrUnauthorized)
	}
	if err := tx.Msg.validate(hrp); err != nil {
		return fmt.Errorf("%s: %w", tx.Msg.Type(), err)
	}
	return nil
}

// DecodeTx decodes a transaction. It refuses anything over MaxTxSize before
// decoding, an unknown field at any level, anything that is not the one
// canonical encoding of its content (it re-encodes deterministically and
// compares), and counts and lengths over their caps; it does not check the
// content against the message rules (SignTx and the chain do) nor verify the
// signature (see Tx.Verify).
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxSize {
		return nil, fmt.Errorf("transaction of %d bytes, at most %d: %w", len(b), MaxTxSize, ErrTooLarge)
	}
	var p attestpb.Tx
	if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := noUnknown(p.ProtoReflect()); err != nil {
		return nil, err
	}
	if !bytes.Equal(marshal(&p), b) {
		return nil, fmt.Errorf("not the canonical encoding (field order, repeated or default-valued fields, unpacked scalars, long varints): %w", ErrMalformed)
	}
	tx, err := fromPB(&p)
	if err != nil {
		return nil, err
	}
	return tx, nil
}

// noUnknown refuses a message that carries unknown fields, at any level.
func noUnknown(m protoreflect.Message) error {
	if len(m.GetUnknown()) > 0 {
		return fmt.Errorf("unknown field in %s: %w", m.Descriptor().Name(), ErrMalformed)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = noUnknown(l.Get(i).Message())
			}
		} else {
			err = noUnknown(v.Message())
		}
		return err == nil
	})
	return err
}

// marshal is the deterministic encoding of m, or nil if m cannot be
// encoded: protobuf refuses a string that is not UTF-8, which a message
// that passed its checks (SignTx) or was decoded (DecodeTx) never has.
func marshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil
	}
	if b == nil {
		b = []byte{}
	}
	return b
}

func (tx *Tx) toPB() *attestpb.Tx {
	p := &attestpb.Tx{Signer: tx.Signer, Sequence: tx.Sequence, Signature: tx.Signature}
	switch m := tx.Msg.(type) {
	case *Commit:
		c := &attestpb.Commit{}
		for _, s := range m.Shares {
			c.Shares = append(c.Shares, &attestpb.ShareCommit{Vault: s.Vault, Size: s.Size, Root: bytes.Clone(s.Root[:])})
		}
		p.Commit = c
	case *Attest:
		p.Attest = &attestpb.Attest{Custodies: packAll(m.Custodies)}
	case *Prove:
		pr := &attestpb.Prove{Epoch: m.Epoch}
		for _, sp := range m.Proofs {
			pr.Proofs = append(pr.Proofs, &attestpb.SegmentProof{
				Custody: PackCustody(sp.Custody), Segment: sp.Segment, Data: sp.Data,
				CopyPath: sp.CopyPath, CommitPath: sp.CommitPath,
			})
		}
		p.Prove = pr
	case *Release:
		p.Release = &attestpb.Release{Custodies: packAll(m.Custodies)}
	case *Drill:
		p.Drill = &attestpb.Drill{Custody: PackCustody(m.Custody), Result: attestpb.DrillResult(m.Result), Millis: m.Millis}
	case *Churn:
		c := &attestpb.Churn{RemoveNodes: m.RemoveNodes, RetireVaults: m.RetireVaults}
		for _, n := range m.AddNodes {
			pub, _ := hex.DecodeString(n.PubKey) // checked before signing; a decoded one came from bytes
			c.AddNodes = append(c.AddNodes, &attestpb.NodeSpec{Pubkey: pub, Multiaddrs: n.Multiaddrs})
		}
		for _, v := range m.CreateVaults {
			c.CreateVaults = append(c.CreateVaults, &attestpb.VaultSpec{Pubkey: v.PubKey, Members: v.Members, Threshold: v.Threshold})
		}
		p.Churn = c
	case *UpdateNode:
		p.UpdateNode = &attestpb.UpdateNode{Multiaddrs: m.Multiaddrs}
	}
	return p
}

func packAll(ids []CustodyID) []uint64 {
	out := make([]uint64, len(ids))
	for i, id := range ids {
		out[i] = PackCustody(id)
	}
	return out
}

func unpackAll(xs []uint64) []CustodyID {
	out := make([]CustodyID, len(xs))
	for i, x := range xs {
		out[i] = UnpackCustody(x)
	}
	return out
}

// fromPB converts a decoded transaction, checking every count and length
// against its cap and the fixed sizes of keys, roots and signatures.
func fromPB(p *attestpb.Tx) (*Tx, error) {
	tx := &Tx{Signer: p.Signer, Sequence: p.Sequence}
	if len(p.Signature) != signatureSize {
		return nil, fmt.Errorf("signature of %d bytes, want %d: %w", len(p.Signature), signatureSize, ErrMalformed)
	}
	tx.Signature = p.Signature
	set := 0
	for _, m := range []proto.Message{p.Commit, p.Attest, p.Prove, p.Release, p.Drill, p.Churn, p.UpdateNode} {
		if m.ProtoReflect().IsValid() {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("transaction carries %d messages, want 1: %w", set, ErrMalformed)
	}
	switch {
	case p.Commit != nil:
		if err := checkCount("shares", len(p.Commit.Shares), MaxShares); err != nil {
			return nil, err
		}
		c := &Commit{Shares: make([]ShareCommit, len(p.Commit.Shares))}
		for i, s := range p.Commit.Shares {
			if len(s.Root) != HashSize {
				return nil, fmt.Errorf("share %d: root of %d bytes, want %d: %w", i, len(s.Root), HashSize, ErrMalformed)
			}
			c.Shares[i] = ShareCommit{Vault: s.Vault, Size: s.Size, Root: [HashSize]byte(s.Root)}
		}
		tx.Msg = c
	case p.Attest != nil:
		if err := checkCount("custodies", len(p.Attest.Custodies), MaxEntries); err != nil {
			return nil, err
		}
		tx.Msg = &Attest{Custodies: unpackAll(p.Attest.Custodies)}
	case p.Prove != nil:
		if err := checkCount("proofs", len(p.Prove.Proofs), MaxProofs); err != nil {
			return nil, err
		}
		pr := &Prove{Epoch: p.Prove.Epoch, Proofs: make([]SegmentProof, len(p.Prove.Proofs))}
		for i, sp := range p.Prove.Proofs {
			if len(sp.CopyPath) > MaxCopyPath || len(sp.CommitPath) > MaxCommitPath {
				return nil, fmt.Errorf("proof %d: paths of %d and %d hashes, at most %d and %d: %w",
					i, len(sp.CopyPath), len(sp.CommitPath), MaxCopyPath, MaxCommitPath, ErrTooLarge)
			}
			pr.Proofs[i] = SegmentProof{
				Custody: UnpackCustody(sp.Custody), Segment: sp.Segment, Data: sp.Data,
				CopyPath: sp.CopyPath, CommitPath: sp.CommitPath,
			}
		}
		tx.Msg = pr
	case p.Release != nil:
		if err := checkCount("custodies", len(p.Release.Custodies), MaxEntries); err != nil {
			return nil, err
		}
		tx.Msg = &Release{Custodies: unpackAll(p.Release.Custodies)}
	case p.Drill != nil:
		if p.Drill.Result < 0 || p.Drill.Result > math.MaxUint8 {
			return nil, fmt.Errorf("drill result %d: %w", p.Drill.Result, ErrMalformed)
		}
		tx.Msg = &Drill{Custody: UnpackCustody(p.Drill.Custody), Result: DrillResult(p.Drill.Result), Millis: p.Drill.Millis}
	case p.Churn != nil:
		c, err := churnFromPB(p.Churn)
		if err != nil {
			return nil, err
		}
		tx.Msg = c
	case p.UpdateNode != nil:
		if err := checkCount("multiaddrs", len(p.UpdateNode.Multiaddrs), MaxMultiaddrs); err != nil {
			return nil, err
		}
		for _, a := range p.UpdateNode.Multiaddrs {
			if len(a) > MaxMultiaddrLen {
				return nil, fmt.Errorf("multiaddr of %d bytes, at most %d: %w", len(a), MaxMultiaddrLen, ErrTooLarge)
			}
		}
		tx.Msg = &UpdateNode{Multiaddrs: p.UpdateNode.Multiaddrs}
	}
	return tx, nil
}

func churnFromPB(p *attestpb.Churn) (*Churn, error) {
	for _, n := range []struct {
		what       string
		got, limit int
	}{
		{"add_nodes", len(p.AddNodes), MaxChurnNodes},
		{"remove_nodes", len(p.RemoveNodes), MaxChurnNodes},
		{"create_vaults", len(p.CreateVaults), MaxChurnVaults},
		{"retire_vaults", len(p.RetireVaults), MaxChurnVaults},
	} {
		if err := checkCount(n.what, n.got, n.limit); err != nil {
			return nil, err
		}
	}
	c := &Churn{RemoveNodes: p.RemoveNodes, RetireVaults: p.RetireVaults}
	for i, n := range p.AddNodes {
		if len(n.Pubkey) != pubKeySize {
			return nil, fmt.Errorf("add_nodes[%d]: pubkey of %d bytes, want %d: %w", i, len(n.Pubkey), pubKeySize, ErrMalformed)
		}
		if err := checkCount("multiaddrs", len(n.Multiaddrs), MaxMultiaddrs); err != nil {
			return nil, err
		}
		c.AddNodes = append(c.AddNodes, NodeSpec{PubKey: hex.EncodeToString(n.Pubkey), Multiaddrs: n.Multiaddrs})
	}
	for i, v := range p.CreateVaults {
		if err := checkCount("members", len(v.Members), MaxVaultMembers); err != nil {
			return nil, fmt.Errorf("create_vaults[%d]: %w", i, err)
		}
		c.CreateVaults = append(c.CreateVaults, VaultSpec{PubKey: v.Pubkey, Members: v.Members, Threshold: v.Threshold})
	}
	return c, nil
}
