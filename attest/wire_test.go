package attest_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
)

func sampleMsgs() []attest.Msg {
	root := [32]byte{1, 2, 3}
	h := bytes.Repeat([]byte{7}, 32)
	return []attest.Msg{
		&attest.Commit{Shares: []attest.ShareCommit{{Vault: 1, Size: 27142, Root: root}, {Vault: 2, Size: 2162, Root: root}}},
		&attest.Attest{Custodies: []attest.CustodyID{{Commitment: 1, Slot: 0}, {Commitment: 300, Slot: 2}}},
		&attest.Prove{Epoch: 4, Proofs: []attest.SegmentProof{
			{Custody: attest.CustodyID{Commitment: 9, Slot: 1}, Segment: 17, Data: bytes.Repeat([]byte{5}, 64), CopyPath: [][]byte{h, h}, CommitPath: [][]byte{h}},
		}},
		&attest.Release{Custodies: []attest.CustodyID{{Commitment: 1, Slot: 3}}},
		&attest.Drill{Custody: attest.CustodyID{Commitment: 2, Slot: 1}, Result: attest.DrillMismatch, Millis: 1500},
		&attest.Churn{
			AddNodes:     []attest.NodeSpec{nodeSpec(9)},
			RemoveNodes:  []string{addr(3)},
			CreateVaults: []attest.VaultSpec{{PubKey: otherVault, Members: []string{addr(1), addr(5)}, Threshold: 2}},
			RetireVaults: []string{testVault},
		},
		&attest.UpdateNode{Multiaddrs: []string{"/ip4/127.0.0.1/tcp/1", "/ip6/::1/udp/2/quic-v1"}},
	}
}

func signSample(t testing.TB, msg attest.Msg, seq uint64) []byte {
	t.Helper()
	acct := uint64(5)
	if _, churn := msg.(*attest.Churn); churn {
		acct = attest.AuthorityAccount
	}
	raw, err := attest.SignTx(testIDs[0], testChainID, testHRP, acct, seq, msg)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestTxRoundTrip(t *testing.T) {
	for _, msg := range sampleMsgs() {
		t.Run(msg.Type(), func(t *testing.T) {
			raw := signSample(t, msg, 7)
			tx, err := attest.DecodeTx(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Verify(testChainID, testIDs[0].PubKey()); err != nil {
				t.Fatal(err)
			}
			if tx.Sequence != 7 {
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

// TestSignBytesBindEverything: changing the chain, sequence, account, key
// or message invalidates the signature; the chain ID is signed, not sent.
func TestSignBytesBindEverything(t *testing.T) {
	raw := signSample(t, sampleMsgs()[1], 3)
	if bytes.Contains(raw, []byte(testChainID)) {
		t.Error("the chain ID is in the transaction bytes")
	}
	pub := testIDs[0].PubKey()
	for name, mutate := range map[string]func(*attest.Tx) (string, []byte){
		"chain":    func(tx *attest.Tx) (string, []byte) { return "other", pub },
		"sequence": func(tx *attest.Tx) (string, []byte) { tx.Sequence = 4; return testChainID, pub },
		"account":  func(tx *attest.Tx) (string, []byte) { tx.Signer = 6; return testChainID, pub },
		"key":      func(tx *attest.Tx) (string, []byte) { return testChainID, testIDs[1].PubKey() },
		"message":  func(tx *attest.Tx) (string, []byte) { tx.Msg = sampleMsgs()[3]; return testChainID, pub },
	} {
		tx, _ := attest.DecodeTx(raw)
		chain, key := mutate(tx)
		if err := tx.Verify(chain, key); !errors.Is(err, attest.ErrBadSignature) {
			t.Errorf("%s changed: Verify = %v, want ErrBadSignature", name, err)
		}
	}
	tx, _ := attest.DecodeTx(raw)
	want := append([]byte("ksb/attest/tx/v2\x00"), byte(len(testChainID)))
	if sb := tx.SignBytes(testChainID); !bytes.HasPrefix(sb, append(want, testChainID...)) {
		t.Errorf("sign bytes %q lack the domain tag and length-prefixed chain ID", sb[:30])
	}
}

func field(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func varint(b []byte, num protowire.Number, x uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, x)
}

// TestDecodeTxRefusesNonCanonical: every way to encode the same content
// differently, and every unknown field at any level, is refused.
func TestDecodeTxRefusesNonCanonical(t *testing.T) {
	raw := signSample(t, sampleMsgs()[2], 1) // a Prove: nested messages and packed lists
	tx, err := attest.DecodeTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := tx.Msg.(*attest.Prove).Proofs[0]
	h := p.CopyPath[0]
	proof := func(extra ...[]byte) []byte {
		b := varint(nil, 1, attest.PackCustody(p.Custody))
		b = varint(b, 2, p.Segment)
		b = field(b, 3, p.Data)
		b = field(b, 4, h)
		b = field(b, 4, h)
		b = field(b, 5, h)
		return bytes.Join(append([][]byte{b}, extra...), nil)
	}
	prove := func(pr []byte, extra ...[]byte) []byte {
		b := varint(nil, 1, 4)
		b = field(b, 2, pr)
		return bytes.Join(append([][]byte{b}, extra...), nil)
	}
	signer := varint(nil, 1, 5)
	seq := varint(nil, 2, 1)
	msg := field(nil, 5, prove(proof()))
	sig := field(nil, 15, tx.Signature)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	if got := cat(signer, seq, msg, sig); !bytes.Equal(got, raw) {
		t.Fatalf("hand-built canonical form differs from SignTx's:\n%x\n%x", got, raw)
	}
	// Attest with an unpacked list: the same content as packed.
	unpacked := field(nil, 4, cat(varint(nil, 1, 256), varint(nil, 1, 512)))
	packed := field(nil, 4, field(nil, 1, cat(protowire.AppendVarint(nil, 256), protowire.AppendVarint(nil, 512))))
	if _, err := attest.DecodeTx(cat(signer, seq, packed, sig)); err != nil {
		t.Fatalf("packed Attest refused: %v", err)
	}

	cases := map[string][]byte{
		"fields out of order":      cat(seq, signer, msg, sig),
		"signer twice":             cat(signer, signer, seq, msg, sig),
		"zero sequence encoded":    cat(signer, varint(nil, 2, 0), msg, sig),
		"non-minimal varint":       cat(signer, protowire.AppendTag(nil, 2, protowire.VarintType), []byte{0x81, 0x00}, msg, sig),
		"sequence as bytes":        cat(signer, field(nil, 2, []byte{1}), msg, sig),
		"two messages":             cat(signer, seq, msg, field(nil, 4, nil), sig),
		"no message":               cat(signer, seq, sig),
		"no signature":             cat(signer, seq, msg),
		"short signature":          cat(signer, seq, msg, field(nil, 15, tx.Signature[:63])),
		"empty bytes encoded":      cat(signer, seq, msg, field(nil, 15, nil)),
		"fixed64 field":            cat(signer, seq, msg, protowire.AppendFixed64(protowire.AppendTag(nil, 12, protowire.Fixed64Type), 1), sig),
		"unknown top-level field":  cat(signer, seq, msg, field(nil, 14, []byte("x")), sig),
		"unknown field in Prove":   cat(signer, seq, field(nil, 5, prove(proof(), field(nil, 9, []byte("x")))), sig),
		"unknown field in a proof": cat(signer, seq, field(nil, 5, prove(proof(varint(nil, 7, 1)))), sig),
		"unpacked repeated":        cat(signer, seq, unpacked, sig),
		"truncated":                raw[:len(raw)-3],
		"trailing byte":            append(bytes.Clone(raw), 0),
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
}

// TestDecodeTxCapsCounts: the size is capped before decoding; lists over
// their caps are refused.
func TestDecodeTxCapsCounts(t *testing.T) {
	sig := field(nil, 15, make([]byte, 64))
	var ids []byte
	for i := range attest.MaxEntries + 1 {
		ids = protowire.AppendVarint(ids, uint64(i+1)<<8)
	}
	var addrs []byte
	for range attest.MaxMultiaddrs + 1 {
		addrs = field(addrs, 1, []byte("/ip4/127.0.0.1/tcp/1"))
	}
	var deep []byte
	for range attest.MaxCopyPath + 1 {
		deep = field(deep, 4, make([]byte, 32))
	}
	for name, b := range map[string][]byte{
		"attest custodies": bytes.Join([][]byte{varint(nil, 1, 1), field(nil, 4, field(nil, 1, ids)), sig}, nil),
		"multiaddrs":       bytes.Join([][]byte{varint(nil, 1, 1), field(nil, 9, addrs), sig}, nil),
		"copy path":        bytes.Join([][]byte{varint(nil, 1, 1), field(nil, 5, field(nil, 2, deep)), sig}, nil),
		"oversized":        make([]byte, attest.MaxTxSize+1),
	} {
		if _, err := attest.DecodeTx(b); !errors.Is(err, attest.ErrTooLarge) {
			t.Errorf("%s: DecodeTx = %v, want ErrTooLarge", name, err)
		}
	}
}

func TestCustodyIDPacking(t *testing.T) {
	for _, id := range []attest.CustodyID{{Commitment: 1}, {Commitment: 1, Slot: 255}, {Commitment: attest.MaxCommitmentID, Slot: 7}} {
		if got := attest.UnpackCustody(attest.PackCustody(id)); got != id {
			t.Errorf("%+v → %d → %+v", id, attest.PackCustody(id), got)
		}
	}
	if attest.PackCustody(attest.CustodyID{Commitment: 3, Slot: 2}) != 3*256+2 {
		t.Error("custody id is not commitment<<8 | slot")
	}
}

func TestSignTxRefuses(t *testing.T) {
	id := testIDs[0]
	h := bytes.Repeat([]byte{1}, 32)
	many := make([]attest.CustodyID, attest.MaxEntries+1)
	for i := range many {
		many[i] = attest.CustodyID{Commitment: uint64(i + 1)}
	}
	seg := func(mut func(*attest.SegmentProof)) *attest.Prove {
		p := attest.SegmentProof{Custody: attest.CustodyID{Commitment: 1}, Data: []byte{1}, CopyPath: [][]byte{h}}
		mut(&p)
		return &attest.Prove{Epoch: 1, Proofs: []attest.SegmentProof{p}}
	}
	tests := []struct {
		name    string
		account uint64
		msg     attest.Msg
		want    error
	}{
		{"empty commit", 1, &attest.Commit{}, attest.ErrInvalid},
		{"vault index 0", 1, &attest.Commit{Shares: []attest.ShareCommit{{Vault: 0, Size: 1, Root: [32]byte{1}}}}, attest.ErrInvalid},
		{"zero size", 1, &attest.Commit{Shares: []attest.ShareCommit{{Vault: 1, Size: 0, Root: [32]byte{1}}}}, attest.ErrInvalid},
		{"size over custody.MaxSize", 1, &attest.Commit{Shares: []attest.ShareCommit{{Vault: 1, Size: custody.MaxSize + 1, Root: [32]byte{1}}}}, attest.ErrInvalid},
		{"zero root", 1, &attest.Commit{Shares: []attest.ShareCommit{{Vault: 1, Size: 1}}}, attest.ErrInvalid},
		{"vault twice", 1, &attest.Commit{Shares: []attest.ShareCommit{{Vault: 1, Size: 1, Root: [32]byte{1}}, {Vault: 1, Size: 2, Root: [32]byte{2}}}}, attest.ErrInvalid},
		{"no custodies", 1, &attest.Attest{}, attest.ErrInvalid},
		{"too many custodies", 1, &attest.Attest{Custodies: many}, attest.ErrTooLarge},
		{"custody twice", 1, &attest.Release{Custodies: []attest.CustodyID{{Commitment: 1}, {Commitment: 1}}}, attest.ErrInvalid},
		{"commitment 0", 1, &attest.Attest{Custodies: []attest.CustodyID{{Commitment: 0, Slot: 1}}}, attest.ErrInvalid},
		{"slot 256", 1, &attest.Attest{Custodies: []attest.CustodyID{{Commitment: 1, Slot: 256}}}, attest.ErrInvalid},
		{"no proofs", 1, &attest.Prove{Epoch: 1}, attest.ErrInvalid},
		{"empty segment", 1, seg(func(p *attest.SegmentProof) { p.Data = nil }), attest.ErrInvalid},
		{"long segment", 1, seg(func(p *attest.SegmentProof) { p.Data = make([]byte, 65) }), attest.ErrInvalid},
		{"short hash", 1, seg(func(p *attest.SegmentProof) { p.CopyPath = [][]byte{h[:31]} }), attest.ErrInvalid},
		{"long commit path", 1, seg(func(p *attest.SegmentProof) { p.CommitPath = make([][]byte, 7) }), attest.ErrTooLarge},
		{"drill without result", 1, &attest.Drill{Custody: attest.CustodyID{Commitment: 1}}, attest.ErrInvalid},
		{"drill result 9", 1, &attest.Drill{Custody: attest.CustodyID{Commitment: 1}, Result: 9}, attest.ErrInvalid},
		{"churn by a node account", 1, &attest.Churn{RemoveNodes: []string{addr(1)}}, attest.ErrUnauthorized},
		{"commit by the authority", attest.AuthorityAccount, &attest.Commit{Shares: []attest.ShareCommit{{Vault: 1, Size: 1, Root: [32]byte{1}}}}, attest.ErrUnauthorized},
		{"empty churn", 0, &attest.Churn{}, attest.ErrInvalid},
		{"bad node key", 0, &attest.Churn{AddNodes: []attest.NodeSpec{{PubKey: "02ab", Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}}}}, attest.ErrInvalid},
		{"node without multiaddr", 0, &attest.Churn{AddNodes: []attest.NodeSpec{{PubKey: testIDs[5].PubKeyHex()}}}, attest.ErrInvalid},
		{"multiaddr with p2p", 1, &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1/p2p/" + id.PeerID().String()}}, attest.ErrInvalid},
		{"bad multiaddr", 1, &attest.UpdateNode{Multiaddrs: []string{"/ip4/999.1.1.1/tcp/1"}}, attest.ErrInvalid},
		{"non-canonical multiaddr", 1, &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/01"}}, attest.ErrInvalid},
		{"threshold zero", 0, &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v", Members: []string{addr(1)}, Threshold: 0}}}, attest.ErrInvalid},
		{"member twice", 0, &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v", Members: []string{addr(1), addr(1)}, Threshold: 1}}}, attest.ErrInvalid},
		{"node added and removed", 0, &attest.Churn{AddNodes: []attest.NodeSpec{nodeSpec(5)}, RemoveNodes: []string{addr(5)}}, attest.ErrInvalid},
		{"vault created and retired", 0, &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v", Members: []string{addr(1)}, Threshold: 1}}, RetireVaults: []string{"v"}}, attest.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := attest.SignTx(id, testChainID, testHRP, tt.account, 0, tt.msg)
			if !errorsIs(err, tt.want) || tx != nil {
				t.Fatalf("SignTx = %x, %v; want %v", tx, err, tt.want)
			}
		})
	}
}

func FuzzDecodeTx(f *testing.F) {
	for _, msg := range sampleMsgs() {
		f.Add(signSample(f, msg, 1))
	}
	f.Add(binary.AppendUvarint(nil, 8))
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := attest.DecodeTx(b)
		if err != nil {
			if tx != nil {
				t.Fatal("a refused transaction was returned")
			}
			return
		}
		if !bytes.Equal(tx.Encode(), b) {
			t.Fatalf("accepted a non-canonical encoding")
		}
		if tx.Msg == nil || len(tx.Signature) != 64 {
			t.Fatalf("accepted a transaction without message or signature: %+v", tx)
		}
		_ = tx.Verify(testChainID, testIDs[0].PubKey())
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
