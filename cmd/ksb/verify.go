package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/cometbft/cometbft/types"
	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/verify"
)

// exitNotVerified is the exit status of a --verify command whose answer
// could not be proven: a header, a signature, a proof or a value did not
// verify, or a witness disagreed. Distinct from 1 (unreachable) and 2 (not
// safe): the RPC may be lying.
const exitNotVerified = 3

// verifyFlags are the flags of a command that can read verified state.
type verifyFlags struct {
	on          bool
	trustHeight int64
	trustHash   string
	genesis     string
	chainID     string
	trustPeriod time.Duration
}

func addVerifyFlags(cmd *cobra.Command) *verifyFlags {
	f := &verifyFlags{}
	fl := cmd.Flags()
	fl.BoolVar(&f.on, "verify", false, "trust no RPC: verify the header with CometBFT's light client from a trust anchor (--trust-height and --trust-hash, or --genesis) and every state read's ICS23 proof; several --rpc: the first is the primary, the others witnesses")
	fl.Int64Var(&f.trustHeight, "trust-height", 0, "--verify: a `HEIGHT` you trust, with --trust-hash")
	fl.StringVar(&f.trustHash, "trust-hash", "", "--verify: the hex `HASH` of the header at --trust-height, from a source you trust")
	fl.StringVar(&f.genesis, "genesis", "", "--verify: the chain's genesis.json `FILE` as trust anchor (a new network: its first block must be signed by the genesis validators)")
	fl.StringVar(&f.chainID, "chain-id", "", "--verify: the chain `ID` (default: the genesis file's, else the primary's; the anchor hash pins it either way)")
	fl.DurationVar(&f.trustPeriod, "trust-period", verify.DefaultTrustPeriod, "--verify: how old the trust anchor may be")
	return f
}

// check refuses verify flags without --verify, and an incomplete anchor.
func (f *verifyFlags) check(rpcs []string) error {
	if !f.on {
		if f.trustHeight != 0 || f.trustHash != "" || f.genesis != "" || f.chainID != "" {
			return errors.New("--trust-height, --trust-hash, --genesis and --chain-id go with --verify")
		}
		if len(rpcs) > 1 {
			return errors.New("several --rpc (a primary and witnesses) go with --verify")
		}
		return nil
	}
	switch {
	case f.genesis != "" && (f.trustHeight != 0 || f.trustHash != ""):
		return errors.New("--verify: give --genesis or --trust-height and --trust-hash, not both")
	case f.genesis == "" && (f.trustHeight < 1 || f.trustHash == ""):
		return errors.New("--verify needs a trust anchor: --trust-height and --trust-hash (a header you trust), or --genesis")
	case len(rpcs) > verify.MaxEndpoints:
		return fmt.Errorf("--verify: %d --rpc, at most %d", len(rpcs), verify.MaxEndpoints)
	}
	return nil
}

// client builds the light client: rpcs[0] is the primary, the rest are
// witnesses (none: the primary again, which checks signatures only).
func (f *verifyFlags) client(ctx context.Context, rpcs []string) (*verify.Client, error) {
	cfg := verify.Config{Primary: rpcs[0], Witnesses: rpcs[1:], Genesis: f.genesis, ChainID: f.chainID, TrustPeriod: f.trustPeriod}
	if f.genesis == "" {
		h, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(f.trustHash), "0x"))
		if err != nil || len(h) != 32 {
			return nil, fmt.Errorf("--trust-hash %q: want the 64 hex digits of a header hash", f.trustHash)
		}
		cfg.Anchor = verify.Anchor{Height: f.trustHeight, Hash: h}
	}
	if cfg.ChainID == "" && f.genesis != "" {
		g, err := types.GenesisDocFromFile(f.genesis)
		if err != nil {
			return nil, fmt.Errorf("--genesis: %w", err)
		}
		cfg.ChainID = g.ChainID
	}
	if cfg.ChainID == "" {
		// Untrusted, and harmless: the anchor's header hash covers its chain
		// ID, and every signature the light client checks signs it.
		c, err := rpchttp.New(rpcs[0])
		if err != nil {
			return nil, err
		}
		st, err := c.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("asking %s for its chain ID (or give --chain-id): %w", rpcs[0], err)
		}
		cfg.ChainID = st.NodeInfo.Network
	}
	vc, err := verify.New(ctx, cfg)
	return vc, notVerified(err)
}

// notVerified gives a verification failure its exit status.
func notVerified(err error) error {
	for _, s := range []error{verify.ErrHeaderVerification, verify.ErrWitnessConflict, verify.ErrProofInvalid, verify.ErrValueMismatch, verify.ErrMissingProof, verify.ErrStaleHeader, verify.ErrResponseTooLarge} {
		if errors.Is(err, s) {
			return exitStatus{err: fmt.Errorf("NOT VERIFIED, the RPC may be lying: %w", err), code: exitNotVerified}
		}
	}
	return err
}

// provenAt says at which height and app hash an answer is proven, and from
// what.
type provenAt struct {
	// Height is the state's height; AppHash its app hash, from header
	// HeaderHeight = Height+1 with hash HeaderHash.
	Height       int64    `json:"height"`
	AppHash      string   `json:"app_hash"`
	HeaderHeight int64    `json:"header_height"`
	HeaderHash   string   `json:"header_hash"`
	HeaderTime   string   `json:"header_time"` // RFC 3339, UTC: how fresh the answer is
	TrustHeight  int64    `json:"trust_height"`
	TrustHash    string   `json:"trust_hash"`
	Primary      string   `json:"primary"`
	Witnesses    []string `json:"witnesses"`
	Keys         int      `json:"keys"`
	ProofBytes   int      `json:"proof_bytes"`
}

func proven(vc *verify.Client, s *verify.State, rpcs []string) provenAt {
	st := s.Stats()
	w := rpcs[1:]
	if len(w) == 0 {
		w = []string{rpcs[0]}
	}
	return provenAt{
		Height: s.Height, AppHash: fmt.Sprintf("%X", s.AppHash), HeaderHeight: s.HeaderHeight, HeaderHash: fmt.Sprintf("%X", s.HeaderHash),
		HeaderTime:  s.HeaderTime.UTC().Format(time.RFC3339),
		TrustHeight: vc.Anchor().Height, TrustHash: fmt.Sprintf("%X", vc.Anchor().Hash), Primary: rpcs[0], Witnesses: w,
		Keys: st.Keys, ProofBytes: st.ProofBytes,
	}
}

func (p provenAt) String() string {
	s := fmt.Sprintf("proven at height %d: app hash %s in header %d (%s, %s), verified from the anchor at height %d; primary %s, witnesses %s; %d keys, %d proof bytes",
		p.Height, p.AppHash, p.HeaderHeight, p.HeaderHash, p.HeaderTime, p.TrustHeight, p.Primary, strings.Join(p.Witnesses, ", "), p.Keys, p.ProofBytes)
	if len(p.Witnesses) == 1 && p.Witnesses[0] == p.Primary {
		s += " (one RPC: its own witness, so only the signatures are checked, not that it is on the same fork as others)"
	}
	return s
}
