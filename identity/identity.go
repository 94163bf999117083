package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil/bech32"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	bip39 "github.com/cosmos/go-bip39"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"golang.org/x/crypto/ripemd160" //nolint:staticcheck // RIPEMD-160 is fixed by the address format (hash160).
	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/proto"
)

const (
	// DefaultHRP is the bech32 human-readable prefix of THORChain node addresses.
	DefaultHRP = "thor"

	// DerivationPath is the BIP32 path of the node key, as THORChain derives it
	// (BIP44 purpose, coin type 931, account 0, external chain, index 0).
	DerivationPath = "m/44'/931'/0'/0/0"

	// PubKeySize is the length of a compressed secp256k1 public key.
	PubKeySize = 33

	// SignatureSize is the length of a signature made by Sign: r || s, 32 bytes each.
	SignatureSize = 64
)

// derivationIndexes is DerivationPath as BIP32 child indexes.
var derivationIndexes = []uint32{
	hdkeychain.HardenedKeyStart + 44,
	hdkeychain.HardenedKeyStart + 931,
	hdkeychain.HardenedKeyStart + 0,
	0,
	0,
}

// Identity is a node's key material derived from its mnemonic. It is safe for
// concurrent use.
type Identity struct {
	mnemonic string
	priv     *secp256k1.PrivateKey
	pub      []byte
	p2pKey   crypto.PrivKey
	peerID   peer.ID
}

// Normalize returns the canonical form of a mnemonic (see ParseMnemonic).
// For text that is not a valid mnemonic it returns the text in Unicode NFKD,
// lower case, words separated by single spaces, so that it is a total
// function; callers that need a valid mnemonic use ParseMnemonic, which says
// what is wrong.
func Normalize(mnemonic string) string {
	if m, err := ParseMnemonic(mnemonic); err == nil {
		return m
	}
	m := norm.NFKD.String(mnemonic)
	return strings.Join(strings.Fields(strings.ToLower(m)), " ")
}

// Validate checks that mnemonic reads as a BIP39 English mnemonic (word
// list and checksum; see ParseMnemonic for the spellings accepted). It does
// not require 24 words; the envelope does.
func Validate(mnemonic string) error {
	_, _, err := parse(mnemonic)
	return err
}

// Seed returns the 64-byte BIP39 seed of mnemonic with the given passphrase
// (ksb itself always uses the empty passphrase). The seed is that of the
// canonical mnemonic (ParseMnemonic), which is read and validated first.
func Seed(mnemonic, passphrase string) ([]byte, error) {
	m, err := ParseMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	return bip39.NewSeed(m, norm.NFKD.String(passphrase)), nil
}

// New derives a node identity from mnemonic (read by ParseMnemonic): BIP39
// seed of the canonical mnemonic with the empty passphrase, then the
// secp256k1 key at DerivationPath.
func New(mnemonic string) (*Identity, error) {
	m, err := ParseMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	seed := bip39.NewSeed(m, "")
	key, err := DeriveKey(seed, derivationIndexes...)
	if err != nil {
		return nil, err
	}
	return fromKey(m, key)
}

// DeriveKey derives the secp256k1 private key at the BIP32 path given as child
// indexes (hardened ones include hdkeychain.HardenedKeyStart) from a seed.
func DeriveKey(seed []byte, path ...uint32) (*secp256k1.PrivateKey, error) {
	k, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if err != nil {
		return nil, fmt.Errorf("bip32 master key: %w", err)
	}
	for _, i := range path {
		if k, err = k.Derive(i); err != nil {
			return nil, fmt.Errorf("bip32 child %d: %w", i, err)
		}
	}
	ec, err := k.ECPrivKey()
	if err != nil {
		return nil, fmt.Errorf("bip32 private key: %w", err)
	}
	return secp256k1.PrivKeyFromBytes(ec.Serialize()), nil
}

func fromKey(mnemonic string, priv *secp256k1.PrivateKey) (*Identity, error) {
	raw := priv.Serialize()
	p2pKey, err := crypto.UnmarshalSecp256k1PrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("libp2p key: %w", err)
	}
	pid, err := peer.IDFromPrivateKey(p2pKey)
	if err != nil {
		return nil, fmt.Errorf("peer id: %w", err)
	}
	return &Identity{
		mnemonic: mnemonic,
		priv:     priv,
		pub:      priv.PubKey().SerializeCompressed(),
		p2pKey:   p2pKey,
		peerID:   pid,
	}, nil
}

// Mnemonic returns the canonical mnemonic (ParseMnemonic), which is also
// the envelope passphrase. Treat it as the secret it is.
func (id *Identity) Mnemonic() string { return id.mnemonic }

// PubKey returns a copy of the 33-byte compressed public key.
func (id *Identity) PubKey() []byte { return append([]byte(nil), id.pub...) }

// PubKeyHex returns the compressed public key in lower-case hex.
func (id *Identity) PubKeyHex() string { return hex.EncodeToString(id.pub) }

// Address returns the node address for the bech32 prefix hrp (DefaultHRP if
// empty).
func (id *Identity) Address(hrp string) string {
	a, err := AddressFromPubKey(id.pub, hrp)
	if err != nil {
		// Only an invalid hrp can fail here; the key is always well formed.
		return ""
	}
	return a
}

// PeerID returns the libp2p peer ID of the node key.
func (id *Identity) PeerID() peer.ID { return id.peerID }

// P2PKey returns the node key as a libp2p private key, for the libp2p host.
func (id *Identity) P2PKey() crypto.PrivKey { return id.p2pKey }

// Sign signs sha256(msg) with the node key and returns the 64-byte r || s
// signature in canonical low-S form (RFC 6979 deterministic nonce).
func (id *Identity) Sign(msg []byte) []byte {
	h := sha256.Sum256(msg)
	sig := ecdsa.Sign(id.priv, h[:])
	r, s := sig.R(), sig.S()
	out := make([]byte, SignatureSize)
	r.PutBytesUnchecked(out[:32])
	s.PutBytesUnchecked(out[32:])
	return out
}

// Verify checks a signature made by Sign over msg against a compressed public
// key. High-S signatures are refused so that a valid signature cannot be
// altered into a second valid one.
func Verify(pubKey, msg, sig []byte) error {
	pk, err := ParsePubKey(pubKey)
	if err != nil {
		return err
	}
	if len(sig) != SignatureSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadSignature, len(sig), SignatureSize)
	}
	var r, s secp256k1.ModNScalar
	if overflow := r.SetByteSlice(sig[:32]); overflow || r.IsZero() {
		return fmt.Errorf("%w: r out of range", ErrBadSignature)
	}
	if overflow := s.SetByteSlice(sig[32:]); overflow || s.IsZero() {
		return fmt.Errorf("%w: s out of range", ErrBadSignature)
	}
	if s.IsOverHalfOrder() {
		return fmt.Errorf("%w: s is not in low-S form", ErrBadSignature)
	}
	h := sha256.Sum256(msg)
	if !ecdsa.NewSignature(&r, &s).Verify(h[:], pk) {
		return ErrBadSignature
	}
	return nil
}

// ParsePubKey parses a 33-byte compressed secp256k1 public key. The
// result is shared with other callers (keys that parsed are cached,
// keycache.go): do not modify it.
func ParsePubKey(pubKey []byte) (*secp256k1.PublicKey, error) {
	if len(pubKey) != PubKeySize || (pubKey[0] != 2 && pubKey[0] != 3) {
		return nil, fmt.Errorf("%w: want %d-byte compressed key", ErrBadPubKey, PubKeySize)
	}
	k := [PubKeySize]byte(pubKey)
	if pk, ok := parsedKeys.Get(k); ok {
		return pk, nil
	}
	pk, err := secp256k1.ParsePubKey(pubKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPubKey, err)
	}
	parsedKeys.Add(k, pk)
	return pk, nil
}

// MaxHRPLen is the longest bech32 prefix of a node address: BIP-173 caps a
// whole bech32 string at 90 characters, and a node address spends 39 of
// them after the prefix (the separator "1", 32 characters of the 20-byte key
// hash and a 6-character checksum).
const MaxHRPLen = 90 - 39

// ValidateHRP checks that hrp can prefix a node address under BIP-173: 1 to
// MaxHRPLen characters of US-ASCII 33 to 126 ('!' to '~'), in lower case as
// chain addresses are. Errors wrap ErrBadHRP and say what is wrong.
func ValidateHRP(hrp string) error {
	switch {
	case hrp == "":
		return fmt.Errorf("%w: empty (BIP-173 needs at least 1 character)", ErrBadHRP)
	case len(hrp) > MaxHRPLen:
		return fmt.Errorf("%w: %d characters; a node address allows at most %d", ErrBadHRP, len(hrp), MaxHRPLen)
	}
	for i, r := range hrp {
		switch {
		case r < 33 || r > 126:
			return fmt.Errorf("%w %q: character %d is %U, outside BIP-173's US-ASCII 33 to 126 ('!' to '~')", ErrBadHRP, hrp, i+1, r)
		case r >= 'A' && r <= 'Z':
			return fmt.Errorf("%w %q: upper case; node addresses are lower case", ErrBadHRP, hrp)
		}
	}
	return nil
}

// AddressFromPubKey returns bech32(hrp, RIPEMD160(SHA256(pubKey))) for a
// compressed public key; an empty hrp means DefaultHRP, any other must pass
// ValidateHRP.
func AddressFromPubKey(pubKey []byte, hrp string) (string, error) {
	if _, err := ParsePubKey(pubKey); err != nil {
		return "", err
	}
	if hrp == "" {
		hrp = DefaultHRP
	}
	if err := ValidateHRP(hrp); err != nil {
		return "", err
	}
	sh := sha256.Sum256(pubKey)
	rh := ripemd160.New()
	rh.Write(sh[:])
	conv, err := bech32.ConvertBits(rh.Sum(nil), 8, 5, true)
	if err != nil {
		return "", fmt.Errorf("bech32: %w", err)
	}
	a, err := bech32.Encode(hrp, conv)
	if err != nil {
		return "", fmt.Errorf("bech32 prefix %q: %w", hrp, err)
	}
	return a, nil
}

// ParseAddress decodes a bech32 node address and returns its prefix and the
// 20-byte key hash.
func ParseAddress(addr string) (hrp string, hash []byte, err error) {
	hrp, data, err := bech32.Decode(addr)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrBadAddress, err)
	}
	hash, err = bech32.ConvertBits(data, 5, 8, false)
	if err != nil || len(hash) != 20 {
		return "", nil, fmt.Errorf("%w: payload is not 20 bytes", ErrBadAddress)
	}
	return hrp, hash, nil
}

// PeerIDFromPubKey returns the libp2p peer ID of a compressed secp256k1 public
// key.
func PeerIDFromPubKey(pubKey []byte) (peer.ID, error) {
	if _, err := ParsePubKey(pubKey); err != nil {
		return "", err
	}
	pk, err := crypto.UnmarshalSecp256k1PublicKey(pubKey)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadPubKey, err)
	}
	return peer.IDFromPublicKey(pk)
}

// PubKeyFromPeerID extracts the compressed secp256k1 public key embedded in a
// peer ID. It fails for peer IDs of other key types.
func PubKeyFromPeerID(id peer.ID) ([]byte, error) {
	if k, ok := peerKeys.Get(id); ok {
		return k[:], nil
	}
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: peer id %s: %v", ErrBadPubKey, id, err)
	}
	if _, ok := pk.(*crypto.Secp256k1PublicKey); !ok {
		return nil, fmt.Errorf("%w: peer id %s is not a secp256k1 key", ErrBadPubKey, id)
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != PubKeySize {
		return nil, fmt.Errorf("%w: peer id %s: key of %d bytes (%v)", ErrBadPubKey, id, len(raw), err)
	}
	peerKeys.Add(id, [PubKeySize]byte(raw))
	return raw, nil
}

// compressedKeyLen is the length of a compressed secp256k1 public key.
const compressedKeyLen = 33

// PeerIDKey returns the 33 bytes of the compressed secp256k1 public key a
// peer ID embeds (an identity multihash of the protobuf-encoded key), as
// PubKeyFromPeerID does, but without decompressing them to check that they
// are a point of the curve: that takes a field square root, ~50 µs, and
// gossipsub's peer scoring asks for every peer's key every second (N² a
// second in a process of N nodes). For comparing a peer with keys known to
// be valid (the chain's active set) only; a key that is about to verify a
// signature goes through PubKeyFromPeerID. It fails (ErrBadPubKey) for a
// peer ID that does not embed a 33-byte secp256k1 key.
func PeerIDKey(id peer.ID) ([]byte, error) {
	dec, err := multihash.Decode([]byte(id))
	if err != nil || dec.Code != multihash.IDENTITY {
		return nil, fmt.Errorf("%w: peer id %s does not embed its key", ErrBadPubKey, id)
	}
	var pk cryptopb.PublicKey
	if err := proto.Unmarshal(dec.Digest, &pk); err != nil {
		return nil, fmt.Errorf("%w: peer id %s: %v", ErrBadPubKey, id, err)
	}
	if pk.GetType() != cryptopb.KeyType_Secp256k1 || len(pk.GetData()) != compressedKeyLen {
		return nil, fmt.Errorf("%w: peer id %s is not a compressed secp256k1 key", ErrBadPubKey, id)
	}
	return pk.GetData(), nil
}
