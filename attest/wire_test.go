package attest_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksb-project/ksb/attest"
)

func sampleMsgs() []attest.Msg {
	return []attest.Msg{
		&attest.Attest{Entries: []attest.Entry{entry(1, testVault, "a"), entry(2, otherVault, "b")}},
		&attest.Release{Entries: []attest.EntryKey{entry(1, testVault, "a").Key()}},
		&attest.Churn{
			AddNodes:     []attest.NodeSpec{nodeSpec(5)},
			RemoveNodes:  []string{addr(3)},
			CreateVaults: []attest.VaultSpec{{PubKey: otherVault, Members: []string{addr(1), addr(5)}, Threshold: 2}},
			RetireVaults: []string{testVault},
		},
		&attest.UpdateNode{Multiaddrs: []string{"/ip4/127.0.0.1/tcp/1", "/ip6/::1/udp/2/quic-v1"}},
	}
}

func TestTxRoundTrip(t *testing.T) {
	for _, msg := range sampleMsgs() {
		t.Run(msg.Type(), func(t *testing.T) {
			raw, err := attest.SignTx(testIDs[0], testChainID, testHRP, 7, msg)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := attest.DecodeTx(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Verify(); err != nil {
				t.Fatal(err)
			}
			if tx.ChainID != testChainID || tx.Sequence != 7 || !bytes.Equal(tx.Signer, testIDs[0].PubKey()) {
				t.Fatalf("decoded %+v", tx)
			}
			if !reflect.DeepEqual(tx.Msg, msg) {
				t.Fatalf("message %+v, want %+v", tx.Msg, msg)
			}
			if !bytes.Equal(tx.Encode(), raw) {
				t.Fatal("re-encoding differs")
			}
		})
	}
}

// TestSignBytesBindEverything: changing the chain, sequence, signer or
// message invalidates the signature.
func TestSignBytesBindEverything(t *testing.T) {
	raw, err := attest.SignTx(testIDs[0], testChainID, testHRP, 3, sampleMsgs()[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*attest.Tx){
		"chain":    func(tx *attest.Tx) { tx.ChainID = "other" },
		"sequence": func(tx *attest.Tx) { tx.Sequence = 4 },
		"signer":   func(tx *attest.Tx) { tx.Signer = testIDs[1].PubKey() },
		"message":  func(tx *attest.Tx) { tx.Msg = sampleMsgs()[1] },
	} {
		tx, _ := attest.DecodeTx(raw)
		mutate(tx)
		if err := tx.Verify(); !errors.Is(err, attest.ErrBadSignature) {
			t.Errorf("%s changed: Verify = %v, want ErrBadSignature", name, err)
		}
	}
	tx, _ := attest.DecodeTx(raw)
	if !bytes.HasPrefix(tx.SignBytes(), []byte("ksb/attest/tx/v1\x00")) {
		t.Error("sign bytes lack the domain tag")
	}
}

func TestDecodeTxRefusesNonCanonical(t *testing.T) {
	raw, err := attest.SignTx(testIDs[0], testChainID, testHRP, 1, sampleMsgs()[3])
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := attest.DecodeTx(raw)
	// Rebuild by hand with variations.
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	body := []byte{}
	body = field(body, 1, []byte("/ip4/127.0.0.1/tcp/1"))
	chain := field(nil, 1, []byte(testChainID))
	signer := field(nil, 2, tx.Signer)
	seq := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1)
	msg := field(nil, 7, body)
	sig := field(nil, 15, tx.Signature)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	cases := map[string][]byte{
		"fields out of order": cat(signer, chain, seq, msg, sig),
		"chain twice":         cat(chain, chain, signer, seq, msg, sig),
		"zero sequence encoded": cat(chain, signer,
			protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 0), msg, sig),
		"non-minimal varint":  cat(chain, signer, protowire.AppendTag(nil, 3, protowire.VarintType), []byte{0x81, 0x00}, msg, sig),
		"sequence as bytes":   cat(chain, signer, field(nil, 3, []byte{1}), msg, sig),
		"two messages":        cat(chain, signer, seq, msg, field(nil, 4, nil), sig),
		"no message":          cat(chain, signer, seq, sig),
		"no signature":        cat(chain, signer, seq, msg),
		"short signature":     cat(chain, signer, seq, msg, field(nil, 15, tx.Signature[:63])),
		"short signer":        cat(chain, field(nil, 2, tx.Signer[:32]), seq, msg, sig),
		"fixed64 field":       cat(chain, signer, seq, msg, protowire.AppendFixed64(protowire.AppendTag(nil, 9, protowire.Fixed64Type), 1), sig),
		"unknown inner field": cat(chain, signer, seq, field(nil, 7, field(body, 2, []byte("x"))), sig),
		"chain id too long":   cat(field(nil, 1, bytes.Repeat([]byte("c"), attest.MaxChainIDLen+1)), signer, seq, msg, sig),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := attest.DecodeTx(b)
			if err == nil || got != nil {
				t.Fatalf("DecodeTx accepted it: %+v", got)
			}
			if !errors.Is(err, attest.ErrMalformed) && !errors.Is(err, attest.ErrTooLarge) {
				t.Fatalf("error %v, want ErrMalformed or ErrTooLarge", err)
			}
		})
	}
	if _, err := attest.DecodeTx(cat(chain, signer, seq, msg, sig)); err != nil {
		t.Fatalf("the hand-built canonical form was refused: %v", err)
	}
}

// TestDecodeTxCapsCounts: a list over its cap is refused while decoding,
// before the whole list is read.
func TestDecodeTxCapsCounts(t *testing.T) {
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	var body []byte
	for range attest.MaxMultiaddrs + 1 {
		body = field(body, 1, []byte("/ip4/127.0.0.1/tcp/1"))
	}
	b := field(nil, 1, []byte(testChainID))
	b = field(b, 7, body)
	if _, err := attest.DecodeTx(b); !errors.Is(err, attest.ErrTooLarge) {
		t.Fatalf("DecodeTx = %v, want ErrTooLarge", err)
	}
}

func FuzzDecodeTx(f *testing.F) {
	for _, msg := range sampleMsgs() {
		raw, err := attest.SignTx(testIDs[0], testChainID, testHRP, 1, msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := attest.DecodeTx(b)
		if err != nil {
			return
		}
		if !bytes.Equal(tx.Encode(), b) {
			t.Fatalf("accepted a non-canonical encoding")
		}
		_ = tx.Verify()
	})
}

func TestParseChurn(t *testing.T) {
	c, err := attest.ParseChurn([]byte(`{"add_nodes":[{"pubkey":"` + testIDs[5].PubKeyHex() + `","multiaddrs":["/ip4/127.0.0.1/tcp/1"]}],
		"remove_nodes":["` + addr(1) + `"],"create_vaults":[{"pubkey":"v","members":["` + addr(0) + `"],"threshold":1}],"retire_vaults":["w"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.AddNodes) != 1 || c.RemoveNodes[0] != addr(1) || c.CreateVaults[0].Threshold != 1 || c.RetireVaults[0] != "w" {
		t.Fatalf("ParseChurn = %+v", c)
	}
	for _, bad := range []string{`{"add_node":[]}`, `{} {}`, `[`, `{"create_vaults":[{"threshold":-1}]}`} {
		if c, err := attest.ParseChurn([]byte(bad)); !errors.Is(err, attest.ErrInvalid) || c != nil {
			t.Errorf("ParseChurn(%s) = %+v, %v", bad, c, err)
		}
	}
}
