package identity_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/identity"
)

// The 24-word BIP39 vector for all-zero entropy; published, so safe to commit.
const abandonArt = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon " +
	"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art"

// TestBIP39Vectors checks validation and seed derivation against the
// reference vectors of trezor/python-mnemonic (passphrase "TREZOR"), and the
// BIP32 master key against the xprv each vector lists.
func TestBIP39Vectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "bip39-trezor-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ English [][4]string }
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.English) < 24 {
		t.Fatalf("only %d vectors", len(v.English))
	}
	for _, vec := range v.English {
		mnemonic, wantSeed, xprv := vec[1], vec[2], vec[3]
		if err := identity.Validate(mnemonic); err != nil {
			t.Errorf("%q: %v", mnemonic, err)
			continue
		}
		seed, err := identity.Seed(mnemonic, "TREZOR")
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(seed); got != wantSeed {
			t.Errorf("seed of %q = %s, want %s", mnemonic, got, wantSeed)
		}
		master, err := identity.DeriveKey(seed)
		if err != nil {
			t.Fatal(err)
		}
		ext, err := hdkeychain.NewKeyFromString(xprv)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ext.ECPrivKey()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(master.Serialize(), want.Serialize()) {
			t.Errorf("master key of %q differs from %s", mnemonic, xprv)
		}
	}
}

// TestBIP32Vectors checks DeriveKey against BIP32's published test vectors 1
// and 2 (private keys along the paths).
func TestBIP32Vectors(t *testing.T) {
	const h = hdkeychain.HardenedKeyStart
	tests := []struct {
		seed string
		path []uint32
		priv string
	}{
		{"000102030405060708090a0b0c0d0e0f", nil, "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"},
		{"000102030405060708090a0b0c0d0e0f", []uint32{h}, "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea"},
		{"000102030405060708090a0b0c0d0e0f", []uint32{h, 1}, "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368"},
		{"000102030405060708090a0b0c0d0e0f", []uint32{h, 1, h + 2}, "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca"},
		{"000102030405060708090a0b0c0d0e0f", []uint32{h, 1, h + 2, 2}, "0f479245fb19a38a1954c5c7c0ebab2f9bdfd96a17563ef28a6a4b1a2a764ef4"},
		{"000102030405060708090a0b0c0d0e0f", []uint32{h, 1, h + 2, 2, 1000000000}, "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8"},
		{"fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542", nil, "4b03d6fc340455b363f51020ad3ecca4f0850280cf436c70c727923f6db46c3e"},
		{"fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542", []uint32{0}, "abe74a98f6c7eabee0428f53798f0ab8aa1bd37873999041703c742f15ac7e1e"},
	}
	for _, tt := range tests {
		seed, _ := hex.DecodeString(tt.seed)
		k, err := identity.DeriveKey(seed, tt.path...)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(k.Serialize()); got != tt.priv {
			t.Errorf("seed %s.. path %v: %s, want %s", tt.seed[:8], tt.path, got, tt.priv)
		}
	}
}

// TestTHORChainAddress checks the whole chain mnemonic → m/44'/931'/0'/0/0 →
// address against an independent implementation: KeepKey's firmware tests
// (python-keepkey, test_msg_thorchain_getaddress) expect this testnet address.
func TestTHORChainAddress(t *testing.T) {
	id, err := identity.New("alcohol woman abuse must during monitor noble actual mixed trade anger aisle")
	if err != nil {
		t.Fatal(err)
	}
	if got := id.Address("tthor"); got != "tthor1ls33ayg26kmltw7jjy55p32ghjna09zp6z69y8" {
		t.Errorf("address = %s", got)
	}
	// The same key hash under the default prefix.
	_, h1, _ := identity.ParseAddress(id.Address("tthor"))
	hrp, h2, err := identity.ParseAddress(id.Address(""))
	if err != nil || hrp != identity.DefaultHRP || !bytes.Equal(h1, h2) {
		t.Errorf("default address %s: hrp %q err %v", id.Address(""), hrp, err)
	}
}

func TestPeerIDIsTheNodeKey(t *testing.T) {
	id, err := identity.New(abandonArt)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := identity.PeerIDFromPubKey(id.PubKey())
	if err != nil || pid != id.PeerID() {
		t.Fatalf("PeerIDFromPubKey = %s, %v; want %s", pid, err, id.PeerID())
	}
	pub, err := identity.PubKeyFromPeerID(id.PeerID())
	if err != nil || !bytes.Equal(pub, id.PubKey()) {
		t.Fatalf("PubKeyFromPeerID = %x, %v", pub, err)
	}
	raw, _ := id.P2PKey().GetPublic().Raw()
	if !bytes.Equal(raw, id.PubKey()) {
		t.Fatal("libp2p key is not the node key")
	}
}

func TestNormalize(t *testing.T) {
	messy := "  ABANDON\tabandon\n" + strings.Repeat("abandon  ", 20) + "Abandon ART \r\n"
	if got := identity.Normalize(messy); got != abandonArt {
		t.Fatalf("Normalize = %q", got)
	}
	a, err := identity.New(messy)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := identity.New(abandonArt)
	if a.PeerID() != b.PeerID() || a.Mnemonic() != abandonArt {
		t.Fatal("messy and clean mnemonics give different identities")
	}
}

func TestInvalidMnemonics(t *testing.T) {
	for name, m := range map[string]string{
		"empty":     "",
		"one word":  "abandon",
		"23 words":  strings.Repeat("abandon ", 22) + "art",
		"checksum":  strings.Repeat("abandon ", 23) + "abandon",
		"not words": strings.Repeat("abandon ", 23) + "arts",
	} {
		if _, err := identity.New(m); !errors.Is(err, identity.ErrInvalidMnemonic) {
			t.Errorf("%s: err = %v, want ErrInvalidMnemonic", name, err)
		}
	}
	// The error names the position, never the word itself.
	err := identity.Validate(strings.Repeat("abandon ", 23) + "zzsecretzz")
	if err == nil || strings.Contains(err.Error(), "zzsecretzz") || !strings.Contains(err.Error(), "word 24") {
		t.Errorf("err = %v", err)
	}
}

func TestSignVerify(t *testing.T) {
	id, _ := identity.New(abandonArt)
	msg := []byte("attest")
	sig := id.Sign(msg)
	if len(sig) != identity.SignatureSize {
		t.Fatalf("signature is %d bytes", len(sig))
	}
	if err := identity.Verify(id.PubKey(), msg, sig); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	if err := identity.Verify(id.PubKey(), []byte("attesT"), sig); !errors.Is(err, identity.ErrBadSignature) {
		t.Errorf("altered message: %v", err)
	}
	other, _ := identity.New("alcohol woman abuse must during monitor noble actual mixed trade anger aisle")
	if err := identity.Verify(other.PubKey(), msg, sig); !errors.Is(err, identity.ErrBadSignature) {
		t.Errorf("wrong key: %v", err)
	}
	// The high-S twin (s' = n - s) is a valid ECDSA signature too; it must be
	// refused so signatures are not malleable.
	var s secp256k1.ModNScalar
	s.SetByteSlice(sig[32:])
	s.Negate()
	twin := append(append([]byte(nil), sig[:32]...), make([]byte, 32)...)
	s.PutBytesUnchecked(twin[32:])
	if err := identity.Verify(id.PubKey(), msg, twin); !errors.Is(err, identity.ErrBadSignature) {
		t.Errorf("high-S twin: %v", err)
	}
	for name, bad := range map[string][]byte{"short": sig[:63], "zero": make([]byte, 64), "long": append(sig, 0)} {
		if err := identity.Verify(id.PubKey(), msg, bad); !errors.Is(err, identity.ErrBadSignature) {
			t.Errorf("%s signature: %v", name, err)
		}
	}
	if err := identity.Verify(id.PubKey()[:32], msg, sig); !errors.Is(err, identity.ErrBadPubKey) {
		t.Errorf("short pubkey: %v", err)
	}
}

func TestParseAddressRefuses(t *testing.T) {
	for _, a := range []string{"", "thor1", "thor1tzqpazne9ku5ds4jghr94qy2ry2xf7qp33l4kw", "cosmos1qqqsyqcyq5rqwzqfpg9scrgwpugpzysn3sr5nf"} {
		if _, _, err := identity.ParseAddress(a); !errors.Is(err, identity.ErrBadAddress) {
			t.Errorf("ParseAddress(%q) = %v", a, err)
		}
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mnemonic")
	if err := os.WriteFile(file, []byte(" "+strings.ToUpper(abandonArt)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == identity.EnvVar {
				return v
			}
			return ""
		}
	}
	keepkey := "alcohol woman abuse must during monitor noble actual mixed trade anger aisle"

	// The file wins over the environment.
	m, err := identity.Read(identity.Source{File: file, Getenv: env(keepkey)})
	if err != nil || m != abandonArt {
		t.Fatalf("file: %q, %v", m, err)
	}
	m, err = identity.Read(identity.Source{Getenv: env(keepkey)})
	if err != nil || m != keepkey {
		t.Fatalf("env: %q, %v", m, err)
	}
	if _, err := identity.Read(identity.Source{Getenv: env("")}); !errors.Is(err, identity.ErrNoMnemonic) {
		t.Fatalf("nothing: %v", err)
	}
	if _, err := identity.Read(identity.Source{File: filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, bytes.Repeat([]byte("abandon "), 1000), 0o600)
	if _, err := identity.Read(identity.Source{File: big}); !errors.Is(err, identity.ErrInvalidMnemonic) {
		t.Fatalf("oversize file: %v", err)
	}
	if _, err := identity.Read(identity.Source{Getenv: env("abandon abandon")}); !errors.Is(err, identity.ErrInvalidMnemonic) {
		t.Fatalf("invalid env mnemonic: %v", err)
	}
}

func TestGenerate(t *testing.T) {
	a, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := identity.Generate()
	if len(strings.Fields(a)) != 24 || a == b {
		t.Fatalf("Generate: %d words, repeated=%v", len(strings.Fields(a)), a == b)
	}
	if err := identity.Validate(a); err != nil {
		t.Fatal(err)
	}
}

func TestPeerIDKey(t *testing.T) {
	id, err := identity.New(abandonArt)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := identity.PeerIDKey(id.PeerID()); err != nil || !bytes.Equal(got, id.PubKey()) {
		t.Fatalf("PeerIDKey = %x, %v; want %x", got, err, id.PubKey())
	}
	_, edPub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	edID, err := peer.IDFromPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	hashed, err := peer.IDFromBytes(append([]byte{0x12, 0x20}, make([]byte, 32)...)) // sha2-256, as for RSA keys
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]peer.ID{
		"ed25519":      edID,
		"hashed":       hashed,
		"garbage":      peer.ID("not a peer id"),
		"empty":        peer.ID(""),
		"bad protobuf": peer.ID(append([]byte{0x00, 0x03}, 0x08, 0x02, 0x12)),
	} {
		if k, err := identity.PeerIDKey(p); !errors.Is(err, identity.ErrBadPubKey) {
			t.Errorf("%s: PeerIDKey = %x, %v; want ErrBadPubKey", name, k, err)
		}
	}
}

// BenchmarkPeerIDKey compares the key extraction gossipsub scoring runs for
// every peer every second with the one that also checks the curve point.
func BenchmarkPeerIDKey(b *testing.B) {
	id, err := identity.New(abandonArt)
	if err != nil {
		b.Fatal(err)
	}
	pid := id.PeerID()
	b.Run("PeerIDKey", func(b *testing.B) {
		for b.Loop() {
			if _, err := identity.PeerIDKey(pid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PubKeyFromPeerID", func(b *testing.B) {
		for b.Loop() {
			if _, err := identity.PubKeyFromPeerID(pid); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestParsedKeysAreCached checks that a key parsed again (now from the
// cache) is the same point, that a bad key is still refused after a good
// one of the same prefix was cached, and that a peer ID gives its key
// again.
func TestParsedKeysAreCached(t *testing.T) {
	id, err := identity.New(abandonArt)
	if err != nil {
		t.Fatal(err)
	}
	first, err := identity.ParsePubKey(id.PubKey())
	if err != nil {
		t.Fatal(err)
	}
	again, err := identity.ParsePubKey(id.PubKey())
	if err != nil || !again.IsEqual(first) {
		t.Fatalf("second parse: %v, equal %v", err, err == nil && again.IsEqual(first))
	}
	// A compressed key whose x has no point on the curve: refused each
	// time (refusals are not cached as keys).
	bad := make([]byte, identity.PubKeySize)
	bad[0] = 2
	for x := byte(1); ; x++ {
		bad[32] = x
		if _, err := secp256k1.ParsePubKey(bad); err != nil {
			break
		}
	}
	for range 2 {
		if _, err := identity.ParsePubKey(bad); !errors.Is(err, identity.ErrBadPubKey) {
			t.Fatalf("x off the curve: %v, want ErrBadPubKey", err)
		}
	}
	if _, err := identity.ParsePubKey(bad[:32]); !errors.Is(err, identity.ErrBadPubKey) {
		t.Fatalf("short key: %v, want ErrBadPubKey", err)
	}
	for range 2 {
		k, err := identity.PubKeyFromPeerID(id.PeerID())
		if err != nil || !bytes.Equal(k, id.PubKey()) {
			t.Fatalf("PubKeyFromPeerID = %x, %v; want %x", k, err, id.PubKey())
		}
	}
}
