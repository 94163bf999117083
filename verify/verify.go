package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/light"
	"github.com/cometbft/cometbft/light/provider"
	httpp "github.com/cometbft/cometbft/light/provider/http"
	dbs "github.com/cometbft/cometbft/light/store/db"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	jsonrpcclient "github.com/cometbft/cometbft/rpc/jsonrpc/client"
	"github.com/cometbft/cometbft/types"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/ksb-project/ksb/attest"
)

const (
	// DefaultTrustPeriod is how old a trust anchor may be. CometBFT wants it
	// below the unbonding period; ksb has no bonds, so it is a policy: two
	// weeks, the period CometBFT's own examples use. An older anchor needs a
	// new one (a recent trusted height and hash).
	DefaultTrustPeriod = 14 * 24 * time.Hour

	// queryTimeout bounds one proven query: an answer is a value and a proof
	// of about a kilobyte, so ten seconds covers a slow link.
	queryTimeout = 10 * time.Second

	// DefaultMaxHeaderAge is Config.MaxHeaderAge's default. A ksb chain
	// commits a block every block interval (a second or so) even when idle
	// (CometBFT's create_empty_blocks, which ksb leaves on), so the latest
	// header of a live chain is seconds old; ten minutes allows for clock
	// skew and a slow or briefly stalled chain, and is the furthest back
	// a primary can pass off an old state as the latest.
	DefaultMaxHeaderAge = 10 * time.Minute

	// MaxEndpoints caps the RPC endpoints (one primary, the rest witnesses):
	// the light client asks every witness for every header it verifies.
	MaxEndpoints = 16

	// MaxResponseBytes caps the body of one RPC answer, read before it is
	// decoded. The largest honest answer is a light block's commit or a
	// page of 100 validators: a commit of 10^4 signatures (the CometBFT
	// light provider's own validator cap) is about 3 MB of JSON; a proven
	// state read is a value and a proof of a few kilobytes. 16 MiB is
	// several times that, and with Config.Concurrency reads in flight a
	// flooding RPC costs at most a few hundred megabytes, not all memory.
	MaxResponseBytes = 16 << 20
)

// Anchor is the trust anchor: a height the caller trusts and the hash of
// that height's header (32 bytes), taken from a source it trusts (its own
// node, a block explorer it trusts, a colleague). Anchor.Height 0 means
// "use Config.Genesis".
type Anchor struct {
	Height int64
	Hash   []byte
}

// Config configures New.
type Config struct {
	// ChainID is the chain to verify; a header of another chain is refused.
	ChainID string
	// Primary is the CometBFT RPC URL the headers and state are read from.
	Primary string
	// Witnesses are the RPC URLs every header is cross-checked against;
	// none means Primary again (a lone RPC checks only the signatures).
	Witnesses []string
	// Anchor is the trust anchor; with Height 0, Genesis is used.
	Anchor Anchor
	// Genesis is the chain's genesis file (CometBFT genesis.json), the anchor
	// of a new network: header InitialHeight must be signed by more than 2/3
	// of its validators, and that header's hash becomes the anchor.
	Genesis string
	// TrustPeriod is how old the anchor may be (DefaultTrustPeriod if 0).
	TrustPeriod time.Duration
	// MaxHeaderAge is how old, by the local clock, the latest header
	// Client.Latest verifies may be (DefaultMaxHeaderAge if 0).
	MaxHeaderAge time.Duration
	// Concurrency is how many proven queries State.Coverage and
	// State.Prefetch keep in flight (DefaultConcurrency if 0).
	Concurrency int
}

// Client verifies headers and state reads of one chain.
type Client struct {
	chainID     string
	primary     string
	witnesses   []string
	lc          *light.Client
	rpc         *rpchttp.HTTP
	anchor      Anchor
	maxAge      time.Duration // Config.MaxHeaderAge
	concurrency int           // Config.Concurrency, 1..maxConcurrency
	mu          sync.Mutex    // serialises the light client
}

// maxConcurrency caps Config.Concurrency: more would only load the RPC node.
const maxConcurrency = 64

// New builds a light client from cfg's anchor: it fetches the anchor's
// header from the primary, checks its hash (or, from a genesis file, its
// signatures against the genesis validators) and cross-checks it with the
// witnesses. A refused anchor is a *HeaderError.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.ChainID == "" {
		return nil, errors.New("verify: no chain ID")
	}
	if cfg.Primary == "" {
		return nil, errors.New("verify: no primary RPC")
	}
	if 1+len(cfg.Witnesses) > MaxEndpoints {
		return nil, fmt.Errorf("verify: %d RPC endpoints, at most %d", 1+len(cfg.Witnesses), MaxEndpoints)
	}
	witnesses := cfg.Witnesses
	if len(witnesses) == 0 {
		witnesses = []string{cfg.Primary}
	}
	period := cfg.TrustPeriod
	if period == 0 {
		period = DefaultTrustPeriod
	}
	primary, err := newProvider(cfg.ChainID, cfg.Primary)
	if err != nil {
		return nil, fmt.Errorf("verify: primary %s: %w", cfg.Primary, err)
	}
	var ws []provider.Provider
	for _, w := range witnesses {
		p, err := newProvider(cfg.ChainID, w)
		if err != nil {
			return nil, fmt.Errorf("verify: witness %s: %w", w, err)
		}
		ws = append(ws, p)
	}
	anchor := cfg.Anchor
	if anchor.Height == 0 {
		if cfg.Genesis == "" {
			return nil, errors.New("verify: no trust anchor: give a trusted height and header hash, or the genesis file")
		}
		if anchor, err = genesisAnchor(ctx, cfg.ChainID, cfg.Genesis, primary); err != nil {
			return nil, err
		}
	}
	if anchor.Height < 1 || len(anchor.Hash) != 32 {
		return nil, fmt.Errorf("verify: trust anchor height %d hash of %d bytes: want a height ≥ 1 and a 32-byte header hash", anchor.Height, len(anchor.Hash))
	}
	rpc, err := newRPC(cfg.Primary, queryTimeout)
	if err != nil {
		return nil, fmt.Errorf("verify: primary %s: %w", cfg.Primary, err)
	}
	lc, err := light.NewClient(ctx, cfg.ChainID,
		light.TrustOptions{Period: period, Height: anchor.Height, Hash: anchor.Hash},
		primary, ws, dbs.New(dbm.NewMemDB(), cfg.ChainID),
		light.SkippingVerification(light.DefaultTrustLevel),
		light.Logger(cmtlog.NewNopLogger()),
		light.MaxRetryAttempts(2))
	if err != nil {
		return nil, headerErr(0, err, distinct(cfg.Primary, cfg.Witnesses))
	}
	maxAge := cfg.MaxHeaderAge
	if maxAge <= 0 {
		maxAge = DefaultMaxHeaderAge
	}
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	return &Client{
		chainID: cfg.ChainID, primary: cfg.Primary, witnesses: witnesses,
		lc: lc, rpc: rpc, anchor: anchor, maxAge: maxAge, concurrency: min(conc, maxConcurrency),
	}, nil
}

// providerTimeout bounds one request of the light client's providers: the
// timeout CometBFT's own HTTP provider uses (light/provider/http).
const providerTimeout = 5 * time.Second

// newProvider is httpp.New with every answer capped at MaxResponseBytes.
func newProvider(chainID, remote string) (provider.Provider, error) {
	if !strings.Contains(remote, "://") { // as httpp.New: http by default
		remote = "http://" + remote
	}
	rpc, err := newRPC(remote, providerTimeout)
	if err != nil {
		return nil, err
	}
	return httpp.NewWithClient(chainID, rpc), nil
}

// newRPC is an RPC client of remote whose requests time out after timeout
// and whose answers are cut at MaxResponseBytes (ErrResponseTooLarge): the
// CometBFT client reads a body whole, with no cap of its own.
func newRPC(remote string, timeout time.Duration) (*rpchttp.HTTP, error) {
	hc, err := jsonrpcclient.DefaultHTTPClient(remote)
	if err != nil {
		return nil, err
	}
	hc.Timeout = timeout
	if t, ok := hc.Transport.(*http.Transport); ok {
		t.IdleConnTimeout = attest.RPCIdleConnTimeout // see there: no request on a connection the server is closing
	}
	hc.Transport = cappedTransport{hc.Transport}
	return rpchttp.NewWithClient(remote, hc)
}

// cappedTransport cuts every response body at MaxResponseBytes.
type cappedTransport struct{ next http.RoundTripper }

func (t cappedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > MaxResponseBytes {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes announced, at most %d", ErrResponseTooLarge, resp.ContentLength, MaxResponseBytes)
	}
	resp.Body = &cappedBody{rc: resp.Body, left: MaxResponseBytes}
	return resp, nil
}

// cappedBody reads at most left bytes, then fails with ErrResponseTooLarge.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, MaxResponseBytes)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte past the cap tells "too large" from "exactly the cap"
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - 1, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, MaxResponseBytes)
	}
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// distinct reports whether the witnesses include an endpoint other than
// the primary: only then can a witness disagree.
func distinct(primary string, witnesses []string) bool {
	return slices.ContainsFunc(witnesses, func(w string) bool { return w != primary })
}

// headerErr classifies a light client error.
func headerErr(h int64, err error, witnesses bool) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var conflict light.ErrConflictingHeaders
	var diverge light.ErrProposerPrioritiesDiverge
	switch {
	case errors.Is(err, light.ErrLightClientAttack), errors.Is(err, light.ErrFailedHeaderCrossReferencing),
		errors.As(err, &conflict), errors.As(err, &diverge),
		witnesses && errors.Is(err, light.ErrNoWitnesses):
		return &HeaderError{Height: h, Err: ErrWitnessConflict, Cause: err}
	}
	return &HeaderError{Height: h, Err: ErrHeaderVerification, Cause: err}
}

// genesisAnchor makes the anchor of a new network from its genesis file:
// header InitialHeight from the primary, whose validator set must be the
// genesis validators' and whose commit more than 2/3 of them must have
// signed. The light client then cross-checks it with the witnesses.
func genesisAnchor(ctx context.Context, chainID, path string, primary provider.Provider) (Anchor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Anchor{}, fmt.Errorf("verify: genesis: %w", err)
	}
	g, err := types.GenesisDocFromJSON(b)
	if err != nil {
		return Anchor{}, fmt.Errorf("verify: genesis %s: %w", path, err)
	}
	if g.ChainID != chainID {
		return Anchor{}, fmt.Errorf("verify: genesis %s is of chain %q, not %q", path, g.ChainID, chainID)
	}
	vals := make([]*types.Validator, len(g.Validators))
	for i, v := range g.Validators {
		vals[i] = types.NewValidator(v.PubKey, v.Power)
	}
	vs := types.NewValidatorSet(vals)
	h := g.InitialHeight
	lb, err := primary.LightBlock(ctx, h)
	if err != nil {
		return Anchor{}, &HeaderError{Height: h, Err: ErrHeaderVerification, Cause: fmt.Errorf("first block of the genesis: %w", err)}
	}
	if err := lb.ValidateBasic(chainID); err != nil {
		return Anchor{}, &HeaderError{Height: h, Err: ErrHeaderVerification, Cause: err}
	}
	if !bytes.Equal(lb.ValidatorsHash, vs.Hash()) {
		return Anchor{}, &HeaderError{Height: h, Err: ErrHeaderVerification,
			Cause: fmt.Errorf("validators hash %X, the genesis validators' is %X", lb.ValidatorsHash, vs.Hash())}
	}
	if err := vs.VerifyCommitLight(chainID, lb.Commit.BlockID, lb.Height, lb.Commit); err != nil {
		return Anchor{}, &HeaderError{Height: h, Err: ErrHeaderVerification, Cause: fmt.Errorf("commit of the genesis validators: %w", err)}
	}
	return Anchor{Height: h, Hash: lb.Hash()}, nil
}

// Anchor returns the trust anchor the client started from (from a genesis
// file: the first block's height and header hash).
func (c *Client) Anchor() Anchor { return c.anchor }

// Latest verifies the primary's latest header L and returns the state of
// height L−1, whose app hash L carries. A header L older than
// Config.MaxHeaderAge is refused (a *HeaderError wrapping ErrStaleHeader):
// witnesses only check that L is the chain's header at its height, not that
// it is the newest.
func (c *Client) Latest(ctx context.Context) (*State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, err := c.lc.Update(ctx, time.Now())
	if err != nil {
		return nil, headerErr(0, err, distinct(c.primary, c.witnesses))
	}
	if lb == nil { // already at the primary's latest
		if lb, err = c.lc.TrustedLightBlock(0); err != nil {
			return nil, err
		}
	}
	if age := time.Since(lb.Time); age > c.maxAge {
		return nil, &HeaderError{Height: lb.Height, Err: ErrStaleHeader,
			Cause: fmt.Errorf("the primary's latest header is from %s, %s ago, more than %s: it is behind, or hides newer blocks", lb.Time.UTC().Format(time.RFC3339), age.Round(time.Second), c.maxAge)}
	}
	if lb.Height < 2 {
		return nil, fmt.Errorf("verify: the latest verified header is %d; the state of height 1 is proven by header 2, not committed yet", lb.Height)
	}
	return c.state(lb), nil
}

// At verifies header h+1 and returns the state of height h. Header h+1
// must exist already.
func (c *Client) At(ctx context.Context, h int64) (*State, error) {
	if h < 1 {
		return nil, fmt.Errorf("verify: height %d, want ≥ 1", h)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, err := c.lc.VerifyLightBlockAtHeight(ctx, h+1, time.Now())
	if err != nil {
		return nil, headerErr(h+1, err, distinct(c.primary, c.witnesses))
	}
	return c.state(lb), nil
}

func (c *Client) state(lb *types.LightBlock) *State {
	return &State{
		Height: lb.Height - 1, AppHash: bytes.Clone(lb.AppHash),
		HeaderHeight: lb.Height, HeaderHash: bytes.Clone(lb.Hash()), HeaderTime: lb.Time,
		c: c, cache: map[string][]byte{},
	}
}

// State is the chain's state at one verified height: every Get is checked
// against AppHash, the app hash header HeaderHeight = Height+1 carries.
// A State is safe for concurrent use.
type State struct {
	Height       int64
	AppHash      []byte
	HeaderHeight int64
	HeaderHash   []byte
	HeaderTime   time.Time // header HeaderHeight's time (its block's)

	c     *Client
	mu    sync.Mutex
	cache map[string][]byte // verified values (nil: absent)
	stats Stats
}

// Stats counts a State's verified reads.
type Stats struct {
	// Keys is the number of distinct keys read and verified.
	Keys int `json:"keys"`
	// ProofBytes is the size of their proofs (the ProofOps' Data).
	ProofBytes int `json:"proof_bytes"`
	// VerifyTime is the time spent decoding and checking the proofs, apart
	// from waiting for the RPC.
	VerifyTime time.Duration `json:"verify_ns"`
}

// Stats returns the reads so far.
func (s *State) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Get reads one state key from the primary with prove=true at s.Height and
// returns its value as the application reads it (attest.DecodeStateValue),
// nil if the key is absent — only once its proof has verified against
// s.AppHash. A refused answer is a *ProofError.
func (s *State) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	v, ok := s.cache[key]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	res, err := s.c.rpc.ABCIQueryWithOptions(qctx, attest.StateQueryPath, []byte(key),
		rpcclient.ABCIQueryOptions{Height: s.Height, Prove: true})
	if err != nil {
		return nil, fmt.Errorf("verify: querying %q at %d: %w", key, s.Height, err)
	}
	r := res.Response
	if r.Code != 0 {
		return nil, fmt.Errorf("verify: query %q at %d refused: code %d: %s", key, s.Height, r.Code, r.Log)
	}
	perr := func(sentinel error, format string, a ...any) error {
		return &ProofError{Key: key, Height: s.Height, Err: sentinel, Detail: fmt.Sprintf(format, a...)}
	}
	if r.Height != s.Height {
		return nil, perr(ErrValueMismatch, "the answer is for height %d", r.Height)
	}
	if len(r.Key) != 0 && string(r.Key) != key {
		return nil, perr(ErrValueMismatch, "the answer is for key %q", r.Key)
	}
	if r.ProofOps == nil || len(r.ProofOps.Ops) == 0 {
		return nil, perr(ErrMissingProof, "no proof op")
	}
	if len(r.ProofOps.Ops) != 1 {
		return nil, perr(ErrMissingProof, "%d proof ops, want 1", len(r.ProofOps.Ops))
	}
	op := r.ProofOps.Ops[0]
	if op.Type != attest.StateProofOpType {
		return nil, perr(ErrProofInvalid, "proof op of type %q, want %q", op.Type, attest.StateProofOpType)
	}
	if string(op.Key) != key {
		return nil, perr(ErrProofInvalid, "a proof of key %q", op.Key)
	}
	start := time.Now()
	var p ics23.CommitmentProof
	if err := p.Unmarshal(op.Data); err != nil {
		return nil, perr(ErrProofInvalid, "decoding the proof: %v", err)
	}
	value := r.Value
	if len(value) == 0 {
		value = nil // a present key's value is never empty (attest: empty is stored as 0x00)
	}
	switch {
	case p.GetExist() != nil:
		ex := p.GetExist()
		if value == nil {
			return nil, perr(ErrValueMismatch, "the answer says absent, its proof is of membership")
		}
		if !bytes.Equal(ex.Key, []byte(key)) {
			return nil, perr(ErrProofInvalid, "a membership proof of key %q", ex.Key)
		}
		if !bytes.Equal(ex.Value, value) {
			return nil, perr(ErrValueMismatch, "the answer's value (%d bytes, sha256 %.8x) is not the proof's (%d bytes, sha256 %.8x)",
				len(value), sha256.Sum256(value), len(ex.Value), sha256.Sum256(ex.Value))
		}
		if !ics23.VerifyMembership(attest.StateProofSpec, s.AppHash, &p, []byte(key), value) {
			return nil, perr(ErrProofInvalid, "the membership proof does not lead to app hash %X", s.AppHash)
		}
	case p.GetNonexist() != nil:
		if value != nil {
			return nil, perr(ErrValueMismatch, "the answer has a value, its proof is of absence")
		}
		if !bytes.Equal(p.GetNonexist().Key, []byte(key)) {
			return nil, perr(ErrProofInvalid, "an absence proof of key %q", p.GetNonexist().Key)
		}
		if !ics23.VerifyNonMembership(attest.StateProofSpec, s.AppHash, &p, []byte(key)) {
			return nil, perr(ErrProofInvalid, "the absence proof does not lead to app hash %X", s.AppHash)
		}
	default:
		return nil, perr(ErrProofInvalid, "neither a membership nor an absence proof")
	}
	v = attest.DecodeStateValue(value)
	took := time.Since(start)
	s.mu.Lock()
	s.stats.VerifyTime += took
	if _, ok := s.cache[key]; !ok {
		s.cache[key] = v
		s.stats.Keys++
		s.stats.ProofBytes += len(op.Data)
	}
	s.mu.Unlock()
	return v, nil
}

// Getter returns s.Get as an attest.StateGetter bound to ctx.
func (s *State) Getter(ctx context.Context) attest.StateGetter {
	return func(key string) ([]byte, error) { return s.Get(ctx, key) }
}

// Params reads the chain parameters from verified state.
func (s *State) Params(ctx context.Context) (*attest.Params, error) {
	return attest.ReadParams(s.Getter(ctx))
}

// Coverage computes, from verified reads only, the coverage of the vault
// with public key vault, or of every live vault when vault is "": the
// answer of attest.ComputeCoverage, with Height s.Height.
func (s *State) Coverage(ctx context.Context, vault string) (*attest.Coverage, error) {
	if err := s.prefetchCoverage(ctx, vault); err != nil {
		return nil, err
	}
	get := s.Getter(ctx)
	p, err := attest.ReadParams(get)
	if err != nil {
		return nil, err
	}
	cov, err := attest.ComputeCoverage(get, p, vault)
	if err != nil {
		return nil, err
	}
	cov.Height = s.Height
	return cov, nil
}
