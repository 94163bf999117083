package attest

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/ksb-project/ksb/attest/attestpb"
)

// getRec reads the record at k into m; false if k is absent. A record that
// does not decode is ErrInternal: the chain wrote it.
func getRec(s kv, k string, m proto.Message) (bool, error) {
	b, err := s.get(k)
	if err != nil || b == nil {
		return false, err
	}
	if err := decodeRec(k, b, m); err != nil {
		return false, err
	}
	return true, nil
}

// decodeRec decodes the value b of key k into m.
func decodeRec(k string, b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("decoding %s: %w: %w", k, ErrInternal, err)
	}
	return nil
}

// putRec writes m at k, deterministically encoded.
func putRec(s kv, k string, m proto.Message) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w: %w", k, ErrInternal, err)
	}
	return s.set(k, b)
}

func getUint(s kv, k string) (uint64, bool, error) {
	b, err := s.get(k)
	if err != nil || b == nil {
		return 0, false, err
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("decoding %s: %w: %w", k, ErrInternal, err)
	}
	return n, true, nil
}

func setUint(s kv, k string, n uint64) error { return s.set(k, []byte(strconv.FormatUint(n, 10))) }

func getCounters(s kv) (*attestpb.Counters, error) {
	c := &attestpb.Counters{}
	if _, err := getRec(s, keyCounters, c); err != nil {
		return nil, err
	}
	if c.NextVault == 0 {
		c.NextVault = 1
	}
	if c.NextCommitment == 0 {
		c.NextCommitment = 1
	}
	return c, nil
}

func getNode(s kv, addr string) (*attestpb.NodeRecord, error) {
	n := &attestpb.NodeRecord{}
	ok, err := getRec(s, KeyNode(addr), n)
	if !ok || err != nil {
		return nil, err
	}
	return n, nil
}

func getAccount(s kv, account uint64) (*attestpb.AccountRecord, error) {
	a := &attestpb.AccountRecord{}
	ok, err := getRec(s, KeyAccount(account), a)
	if !ok || err != nil {
		return nil, err
	}
	return a, nil
}

// accountOf returns the account number of address, if it has one.
func accountOf(s kv, address string) (uint64, bool, error) { return getUint(s, keyAccountOf(address)) }

func getCommitment(s kv, id uint64) (*attestpb.CommitmentRecord, error) {
	c := &attestpb.CommitmentRecord{}
	ok, err := getRec(s, KeyCommitment(id), c)
	if !ok || err != nil {
		return nil, err
	}
	return c, nil
}

func getCustody(s kv, id CustodyID) (*attestpb.CustodyRecord, error) {
	c := &attestpb.CustodyRecord{}
	ok, err := getRec(s, KeyCustody(id), c)
	if !ok || err != nil {
		return nil, err
	}
	return c, nil
}

func getVault(s kv, pubkey string) (*attestpb.VaultRecord, error) {
	v := &attestpb.VaultRecord{}
	ok, err := getRec(s, KeyVault(pubkey), v)
	if !ok || err != nil {
		return nil, err
	}
	return v, nil
}

// vaultByIndex returns the key and record of the vault with index idx, or
// "" and nil.
func vaultByIndex(s kv, idx uint64) (string, *attestpb.VaultRecord, error) {
	b, err := s.get(KeyVaultIndex(idx))
	if err != nil || b == nil {
		return "", nil, err
	}
	v, err := getVault(s, string(b))
	if err != nil {
		return "", nil, err
	}
	if v == nil {
		return "", nil, fmt.Errorf("vault index %d names %s, which is absent: %w", idx, b, ErrInternal)
	}
	return string(b), v, nil
}

// live reports whether commitment c still counts: neither superseded nor
// retired.
func live(c *attestpb.CommitmentRecord) bool { return c.SupersededHeight == 0 && c.RetiredHeight == 0 }
