package p2p

import (
	"crypto/rand"
	"fmt"
	"math/big"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Strategy is how an owner picks the holders of a share.
type Strategy string

const (
	// StrategyRandom draws holders with crypto/rand among the active nodes,
	// preferring those heard from recently (config `strategy = "random"`).
	StrategyRandom Strategy = "random"
	// StrategyVault draws holders among the fellow members of the share's
	// vault, with the same preference (config `strategy = "vault"`).
	StrategyVault Strategy = "vault"
)

// ParseStrategy returns the Strategy named s.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case StrategyRandom, StrategyVault:
		return Strategy(s), nil
	}
	return "", fmt.Errorf("%w: strategy %q (want %q or %q)", ErrBadConfig, s, StrategyRandom, StrategyVault)
}

// Pool is what SelectHolders chooses from.
type Pool struct {
	// Self is this node; it never holds its own shares.
	Self peer.ID
	// Active is the active nodes (StrategyRandom draws from them).
	Active []peer.ID
	// VaultMembers is the members of the share's vault (StrategyVault draws
	// from them).
	VaultMembers []peer.ID
	// Recent reports whether a node was heard from recently (e.g.
	// Gossip.HeardWithin); nil means none was.
	Recent func(peer.ID) bool
}

// SelectHolders returns up to n distinct holders for a share: drawn
// uniformly at random (crypto/rand) from the strategy's candidates, minus
// Self and exclude, taking every candidate heard from recently before any
// that was not. To replace a holder that failed, call it again with n = the
// number missing and exclude = the holders already chosen or failed. It
// returns fewer than n when there are not enough candidates, and
// ErrNoCandidates when there is none.
func SelectHolders(s Strategy, n int, pool Pool, exclude ...peer.ID) ([]peer.ID, error) {
	var from []peer.ID
	switch s {
	case StrategyRandom:
		from = pool.Active
	case StrategyVault:
		from = pool.VaultMembers
	default:
		return nil, fmt.Errorf("%w: strategy %q", ErrBadConfig, s)
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: %d holders asked for", ErrBadConfig, n)
	}
	skip := make(map[peer.ID]bool, len(exclude)+1)
	skip[pool.Self] = true
	for _, p := range exclude {
		skip[p] = true
	}
	var recent, rest []peer.ID
	for _, p := range from {
		if skip[p] || p == "" {
			continue
		}
		skip[p] = true // de-duplicates the candidate list
		if pool.Recent != nil && pool.Recent(p) {
			recent = append(recent, p)
		} else {
			rest = append(rest, p)
		}
	}
	if len(recent)+len(rest) == 0 {
		return nil, ErrNoCandidates
	}
	if err := shuffle(recent); err != nil {
		return nil, err
	}
	if err := shuffle(rest); err != nil {
		return nil, err
	}
	out := append(recent, rest...)
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// shuffle permutes ps uniformly with crypto/rand (Fisher–Yates).
func shuffle(ps []peer.ID) error {
	for i := len(ps) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return fmt.Errorf("drawing holders: %w", err)
		}
		ps[i], ps[j.Int64()] = ps[j.Int64()], ps[i]
	}
	return nil
}
