package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksb-project/ksb/identity"
)

// signDomain starts the bytes every transaction signature covers, so that a
// signature over a ksb transaction is never valid for anything else.
const signDomain = "ksb/attest/tx/v1\x00"

// Field numbers of proto/attest.proto.
const (
	fTxChainID    protowire.Number = 1
	fTxSigner     protowire.Number = 2
	fTxSequence   protowire.Number = 3
	fTxAttest     protowire.Number = 4
	fTxRelease    protowire.Number = 5
	fTxChurn      protowire.Number = 6
	fTxUpdateNode protowire.Number = 7
	fTxSignature  protowire.Number = 15

	signatureSize = 64
	pubKeySize    = 33
)

// Tx is a signed transaction.
type Tx struct {
	// ChainID is the chain the transaction is for.
	ChainID string
	// Signer is the signer's 33-byte compressed secp256k1 public key.
	Signer []byte
	// Sequence is the signer's next sequence number on the chain.
	Sequence uint64
	// Msg is the message.
	Msg Msg
	// Signature is the 64-byte r||s signature over SignBytes.
	Signature []byte
}

// SignTx builds the transaction carrying msg, signed by id for sequence seq on
// chain chainID, and returns its encoding. It refuses a message that the
// chain would refuse without looking at its state; hrp is the chain's address
// prefix (identity.DefaultHRP on THORChain).
func SignTx(id *identity.Identity, chainID, hrp string, seq uint64, msg Msg) ([]byte, error) {
	tx := &Tx{ChainID: chainID, Signer: id.PubKey(), Sequence: seq, Msg: msg}
	if err := tx.checkBasic(chainID, hrp); err != nil {
		return nil, err
	}
	tx.Signature = id.Sign(tx.SignBytes())
	b := tx.Encode()
	if len(b) > MaxTxSize {
		return nil, fmt.Errorf("transaction of %d bytes, at most %d: %w", len(b), MaxTxSize, ErrTooLarge)
	}
	return b, nil
}

// SignBytes returns what the signature covers: the domain tag
// "ksb/attest/tx/v1\x00" followed by the encoding of tx without its
// signature (chain ID, signer, sequence, message).
func (tx *Tx) SignBytes() []byte {
	b := append([]byte(nil), signDomain...)
	return tx.appendUnsigned(b)
}

// Encode returns the canonical protobuf encoding of tx.
func (tx *Tx) Encode() []byte {
	b := tx.appendUnsigned(nil)
	return appendBytes(b, fTxSignature, tx.Signature)
}

// Hash returns the CometBFT hash of an encoded transaction (sha256), as the
// upper-case hex that RPC answers use.
func Hash(encoded []byte) string {
	h := sha256.Sum256(encoded)
	return fmt.Sprintf("%X", h[:])
}

// Verify checks the signature (low S, see identity.Verify).
func (tx *Tx) Verify() error {
	if err := identity.Verify(tx.Signer, tx.SignBytes(), tx.Signature); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}

// SignerAddress returns the signer's bech32 address with prefix hrp.
func (tx *Tx) SignerAddress(hrp string) (string, error) {
	a, err := identity.AddressFromPubKey(tx.Signer, hrp)
	if err != nil {
		return "", fmt.Errorf("signer: %w: %w", ErrMalformed, err)
	}
	return a, nil
}

// checkBasic is every check that needs no chain state: chain ID, message
// content, and that a holder does not attest its own blobs.
func (tx *Tx) checkBasic(chainID, hrp string) error {
	if tx.ChainID != chainID {
		return fmt.Errorf("transaction for chain %q, this is %q: %w", tx.ChainID, chainID, ErrWrongChain)
	}
	if tx.Msg == nil {
		return fmt.Errorf("no message: %w", ErrMalformed)
	}
	signer, err := tx.SignerAddress(hrp)
	if err != nil {
		return err
	}
	if err := tx.Msg.validate(hrp); err != nil {
		return fmt.Errorf("%s: %w", tx.Msg.Type(), err)
	}
	if a, ok := tx.Msg.(*Attest); ok {
		for i, e := range a.Entries {
			if e.Owner == signer {
				return fmt.Errorf("attest: entry %d: holder %s attests its own blob: %w", i, signer, ErrInvalid)
			}
		}
	}
	return nil
}

func (tx *Tx) appendUnsigned(b []byte) []byte {
	b = appendString(b, fTxChainID, tx.ChainID)
	b = appendBytes(b, fTxSigner, tx.Signer)
	b = appendVarint(b, fTxSequence, tx.Sequence)
	if tx.Msg != nil {
		b = protowire.AppendTag(b, tx.Msg.field(), protowire.BytesType)
		b = protowire.AppendBytes(b, tx.Msg.appendBody(nil))
	}
	return b
}

// DecodeTx decodes a transaction. It refuses anything that is not the
// canonical encoding of a Tx (see proto/attest.proto) and anything over the
// caps, but does not verify the signature: see Tx.Verify.
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxSize {
		return nil, fmt.Errorf("transaction of %d bytes, at most %d: %w", len(b), MaxTxSize, ErrTooLarge)
	}
	tx := &Tx{}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case fTxChainID:
			tx.ChainID, err = str(typ, v, MaxChainIDLen, "chain_id")
		case fTxSigner:
			tx.Signer, err = fixedBytes(typ, v, pubKeySize, "signer")
		case fTxSequence:
			if typ != protowire.VarintType {
				return wireTypeErr("sequence")
			}
			tx.Sequence = x
		case fTxAttest, fTxRelease, fTxChurn, fTxUpdateNode:
			if typ != protowire.BytesType {
				return wireTypeErr("msg")
			}
			if tx.Msg != nil {
				return fmt.Errorf("two messages in one transaction: %w", ErrMalformed)
			}
			tx.Msg, err = decodeMsg(num, v)
		case fTxSignature:
			tx.Signature, err = fixedBytes(typ, v, signatureSize, "signature")
		default:
			return unknownField(num)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if tx.Msg == nil {
		return nil, fmt.Errorf("transaction carries no message: %w", ErrMalformed)
	}
	if len(tx.Signer) == 0 || len(tx.Signature) == 0 {
		return nil, fmt.Errorf("transaction without signer or signature: %w", ErrMalformed)
	}
	if !bytes.Equal(tx.Encode(), b) {
		return nil, fmt.Errorf("not the canonical encoding (field order, repeated or default-valued fields): %w", ErrMalformed)
	}
	return tx, nil
}

func decodeMsg(num protowire.Number, b []byte) (Msg, error) {
	switch num {
	case fTxAttest:
		m := &Attest{}
		err := eachBytes(b, "attest", func(num protowire.Number, v []byte) error {
			if num != 1 {
				return unknownField(num)
			}
			if len(m.Entries) >= MaxEntries {
				return fmt.Errorf("more than %d entries: %w", MaxEntries, ErrTooLarge)
			}
			e, err := decodeEntry(v, true)
			m.Entries = append(m.Entries, Entry{Owner: e.Owner, Vault: e.Vault, Digest: e.Digest, Size: e.Size})
			return err
		})
		return m, err
	case fTxRelease:
		m := &Release{}
		err := eachBytes(b, "release", func(num protowire.Number, v []byte) error {
			if num != 1 {
				return unknownField(num)
			}
			if len(m.Entries) >= MaxEntries {
				return fmt.Errorf("more than %d entries: %w", MaxEntries, ErrTooLarge)
			}
			e, err := decodeEntry(v, false)
			m.Entries = append(m.Entries, e.Key())
			return err
		})
		return m, err
	case fTxChurn:
		return decodeChurn(b)
	default: // fTxUpdateNode
		m := &UpdateNode{}
		err := eachBytes(b, "update_node", func(num protowire.Number, v []byte) error {
			if num != 1 {
				return unknownField(num)
			}
			if len(m.Multiaddrs) >= MaxMultiaddrs {
				return fmt.Errorf("more than %d multiaddrs: %w", MaxMultiaddrs, ErrTooLarge)
			}
			s, err := str(protowire.BytesType, v, MaxMultiaddrLen, "multiaddr")
			m.Multiaddrs = append(m.Multiaddrs, s)
			return err
		})
		return m, err
	}
}

// decodeEntry decodes an Entry (withSize) or an EntryKey.
func decodeEntry(b []byte, withSize bool) (Entry, error) {
	var e Entry
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch {
		case num == 1:
			e.Owner, err = str(typ, v, MaxAddressLen, "owner")
		case num == 2:
			e.Vault, err = str(typ, v, MaxVaultKeyLen, "vault")
		case num == 3:
			var d []byte
			d, err = fixedBytes(typ, v, DigestSize, "digest")
			copy(e.Digest[:], d)
		case num == 4 && withSize:
			if typ != protowire.VarintType {
				return wireTypeErr("size")
			}
			e.Size = x
		default:
			return unknownField(num)
		}
		return err
	})
	return e, err
}

func decodeChurn(b []byte) (*Churn, error) {
	m := &Churn{}
	err := eachBytes(b, "churn", func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			if len(m.AddNodes) >= MaxChurnNodes {
				return fmt.Errorf("more than %d add_nodes: %w", MaxChurnNodes, ErrTooLarge)
			}
			n, err := decodeNodeSpec(v)
			m.AddNodes = append(m.AddNodes, n)
			return err
		case 2:
			if len(m.RemoveNodes) >= MaxChurnNodes {
				return fmt.Errorf("more than %d remove_nodes: %w", MaxChurnNodes, ErrTooLarge)
			}
			s, err := str(protowire.BytesType, v, MaxAddressLen, "remove_nodes")
			m.RemoveNodes = append(m.RemoveNodes, s)
			return err
		case 3:
			if len(m.CreateVaults) >= MaxChurnVaults {
				return fmt.Errorf("more than %d create_vaults: %w", MaxChurnVaults, ErrTooLarge)
			}
			vs, err := decodeVaultSpec(v)
			m.CreateVaults = append(m.CreateVaults, vs)
			return err
		case 4:
			if len(m.RetireVaults) >= MaxChurnVaults {
				return fmt.Errorf("more than %d retire_vaults: %w", MaxChurnVaults, ErrTooLarge)
			}
			s, err := str(protowire.BytesType, v, MaxVaultKeyLen, "retire_vaults")
			m.RetireVaults = append(m.RetireVaults, s)
			return err
		}
		return unknownField(num)
	})
	return m, err
}

func decodeNodeSpec(b []byte) (NodeSpec, error) {
	var n NodeSpec
	err := eachBytes(b, "node", func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			if n.PubKey != "" {
				return fmt.Errorf("node pubkey twice: %w", ErrMalformed)
			}
			k, err := fixedBytes(protowire.BytesType, v, pubKeySize, "node pubkey")
			n.PubKey = hex.EncodeToString(k)
			return err
		case 2:
			if len(n.Multiaddrs) >= MaxMultiaddrs {
				return fmt.Errorf("more than %d multiaddrs: %w", MaxMultiaddrs, ErrTooLarge)
			}
			s, err := str(protowire.BytesType, v, MaxMultiaddrLen, "multiaddr")
			n.Multiaddrs = append(n.Multiaddrs, s)
			return err
		}
		return unknownField(num)
	})
	return n, err
}

func decodeVaultSpec(b []byte) (VaultSpec, error) {
	var vs VaultSpec
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			vs.PubKey, err = str(typ, v, MaxVaultKeyLen, "vault pubkey")
		case 2:
			if len(vs.Members) >= MaxVaultMembers {
				return fmt.Errorf("more than %d members: %w", MaxVaultMembers, ErrTooLarge)
			}
			var s string
			s, err = str(typ, v, MaxAddressLen, "member")
			vs.Members = append(vs.Members, s)
		case 3:
			if typ != protowire.VarintType {
				return wireTypeErr("threshold")
			}
			if x > math.MaxUint32 {
				return fmt.Errorf("threshold %d out of range: %w", x, ErrMalformed)
			}
			vs.Threshold = uint32(x)
		default:
			return unknownField(num)
		}
		return err
	})
	return vs, err
}

// eachField walks the fields of a message: length-delimited fields go to fn
// with their bytes, varint fields with their value. Any other wire type or a
// truncated field is ErrMalformed. Order, repetition and minimal encodings are
// checked by DecodeTx re-encoding the whole transaction.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad tag: %w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("field %d: %w: %w", num, ErrMalformed, protowire.ParseError(n))
			}
			b = b[n:]
			if err := fn(num, typ, v, 0); err != nil {
				return err
			}
		case protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("field %d: %w: %w", num, ErrMalformed, protowire.ParseError(n))
			}
			b = b[n:]
			if err := fn(num, typ, nil, x); err != nil {
				return err
			}
		default:
			return fmt.Errorf("field %d: wire type %d not used by ksb: %w", num, typ, ErrMalformed)
		}
	}
	return nil
}

// eachBytes walks a message whose fields are all length-delimited.
func eachBytes(b []byte, what string, fn func(protowire.Number, []byte) error) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return wireTypeErr(fmt.Sprintf("%s field %d", what, num))
		}
		return fn(num, v)
	})
}

func str(typ protowire.Type, v []byte, limit int, what string) (string, error) {
	if typ != protowire.BytesType {
		return "", wireTypeErr(what)
	}
	if len(v) > limit {
		return "", fmt.Errorf("%s of %d bytes, at most %d: %w", what, len(v), limit, ErrTooLarge)
	}
	return string(v), nil
}

func fixedBytes(typ protowire.Type, v []byte, size int, what string) ([]byte, error) {
	if typ != protowire.BytesType {
		return nil, wireTypeErr(what)
	}
	if len(v) != size {
		return nil, fmt.Errorf("%s of %d bytes, want %d: %w", what, len(v), size, ErrMalformed)
	}
	return append([]byte(nil), v...), nil
}

func wireTypeErr(what string) error {
	return fmt.Errorf("%s: wrong wire type: %w", what, ErrMalformed)
}

func unknownField(num protowire.Number) error {
	return fmt.Errorf("unknown field %d: %w", num, ErrMalformed)
}

// Encoders. Singular fields with their default value are omitted, as proto3
// does; repeated fields are written element by element.

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, x uint64) []byte {
	if x == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, x)
}

func appendMsg(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

func (m *Attest) field() protowire.Number { return fTxAttest }
func (m *Attest) appendBody(b []byte) []byte {
	for _, e := range m.Entries {
		b = appendMsg(b, 1, appendEntry(nil, e.Key(), e.Size))
	}
	return b
}

func (m *Release) field() protowire.Number { return fTxRelease }
func (m *Release) appendBody(b []byte) []byte {
	for _, k := range m.Entries {
		b = appendMsg(b, 1, appendEntry(nil, k, 0))
	}
	return b
}

func appendEntry(b []byte, k EntryKey, size uint64) []byte {
	b = appendString(b, 1, k.Owner)
	b = appendString(b, 2, k.Vault)
	b = appendBytes(b, 3, k.Digest[:])
	return appendVarint(b, 4, size)
}

func (m *Churn) field() protowire.Number { return fTxChurn }
func (m *Churn) appendBody(b []byte) []byte {
	for _, n := range m.AddNodes {
		var nb []byte
		pub, _ := hex.DecodeString(n.PubKey) // validated before encoding
		nb = appendBytes(nb, 1, pub)
		for _, a := range n.Multiaddrs {
			nb = protowire.AppendTag(nb, 2, protowire.BytesType)
			nb = protowire.AppendString(nb, a)
		}
		b = appendMsg(b, 1, nb)
	}
	for _, a := range m.RemoveNodes {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, a)
	}
	for _, v := range m.CreateVaults {
		var vb []byte
		vb = appendString(vb, 1, v.PubKey)
		for _, a := range v.Members {
			vb = protowire.AppendTag(vb, 2, protowire.BytesType)
			vb = protowire.AppendString(vb, a)
		}
		vb = appendVarint(vb, 3, uint64(v.Threshold))
		b = appendMsg(b, 3, vb)
	}
	for _, k := range m.RetireVaults {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	return b
}

func (m *UpdateNode) field() protowire.Number { return fTxUpdateNode }
func (m *UpdateNode) appendBody(b []byte) []byte {
	for _, a := range m.Multiaddrs {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, a)
	}
	return b
}
