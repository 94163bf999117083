package attest

import "fmt"

// getterKV is a read-only kv over a StateGetter: what the query code reads
// a verified state through. A scan is ErrNotNamed.
type getterKV struct{ fn StateGetter }

func (g getterKV) get(k string) ([]byte, error) { return g.fn(k) }

func (g getterKV) set(k string, _ []byte) error {
	return fmt.Errorf("writing %s to read-only state: %w", k, ErrInternal)
}

func (g getterKV) del(k string) error {
	return fmt.Errorf("deleting %s from read-only state: %w", k, ErrInternal)
}

func (g getterKV) scan(prefix string, _ func(string, []byte) error) error {
	return fmt.Errorf("listing %s: %w", prefix, ErrNotNamed)
}

func named(get StateGetter) kv { return getterKV{fn: get} }

// ReadOwnerCommitments returns, for every vault owner is a member of, its
// newest commitment (live, or superseded or retired but not yet deleted)
// with its custodies, read through get from keys it names only:
// KeyCounters → KeyVaultIndex(i) → KeyVault → KeyLatest(owner, i) →
// KeyCommitment → KeyCustody per slot. It is what `ksb recover --verify`
// recovers from. Older versions are not listed: reaching them needs the
// owner's commitment index, a listing no proof can show complete.
func ReadOwnerCommitments(get StateGetter, owner string) ([]Commitment, error) {
	s := named(get)
	cnt, err := getCounters(s)
	if err != nil {
		return nil, err
	}
	out := []Commitment{}
	for i := uint64(1); i < cnt.NextVault; i++ {
		key, v, err := vaultByIndex(s, i)
		if err != nil {
			return nil, err
		}
		if v == nil || key == "" {
			continue
		}
		member := false
		for _, m := range v.Members {
			member = member || m == owner
		}
		if !member {
			continue
		}
		id, ok, err := getUint(s, KeyLatest(owner, i))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		c, err := commitmentAnswer(s, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, nil
}

// ReadNodes returns the node records of those of addrs that are active
// nodes (KeyNode present), in the order given, read through get.
func ReadNodes(get StateGetter, addrs []string) ([]Node, error) {
	s := named(get)
	out := []Node{}
	for _, a := range addrs {
		r, err := getNode(s, a)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, nodeAnswer(a, r))
		}
	}
	return out, nil
}
