package recovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
)

// Defaults of the Options durations, and fixed limits.
const (
	// DefaultChainTimeout bounds each chain query (parameters, this node's
	// attestations, the active nodes). A CometBFT node answers an ABCI query
	// in milliseconds; ten seconds covers a slow link, and an RPC that has
	// not answered by then is treated as unreachable, so recovery falls back
	// to gossip instead of waiting on it.
	DefaultChainTimeout = 10 * time.Second

	// DefaultHolderTimeout bounds one fetch from one holder: dialling it
	// (libp2p gives up on a dial after 15 s) and receiving one blob of at
	// most a few hundred kilobytes. A holder that has delivered nothing by
	// then is skipped as silent. Holders are asked concurrently, so a silent
	// holder delays a vault only when no other holder delivers.
	DefaultHolderTimeout = 30 * time.Second

	// republishInterval is how often the gossip path republishes its
	// recovery request (p2p's default is 15 s), in case the first one was
	// lost anyway (a holder that joined late, a relay still forming its
	// mesh). Holders accept one request per owner every 2 s and answer an
	// owner once per recovery, so this costs one small message per peer
	// every 3 s.
	republishInterval = 3 * time.Second

	// DefaultGossipGrace is how long the gossip path waits, once every
	// vault heard of has a verified copy and no holder is still sending,
	// for holders later than the others: counted from the request and from
	// the last holder's offer. Holders answer within milliseconds on a LAN
	// and within a second when they dial back across the internet (the
	// offer is the first thing they send); two seconds leaves room for a
	// holder reached through a relay or a slow dial. A holder later than
	// that is missed only when every vault it holds already has a verified
	// copy, which is the point. Vaults no holder answered for within it are
	// not waited for: without the chain there is no list of them.
	DefaultGossipGrace = 2 * time.Second

	// legacyMeshWait is the wait for one gossipsub heartbeat (and a fifth)
	// the gossip path made before publishing, for a mesh to form. Needless:
	// p2p's gossipsub floods a node's own messages to every topic peer. The
	// benchmark's "before" measurement keeps it.
	legacyMeshWait = 1200 * time.Millisecond

	// DefaultGossipQuiet is how long the gossip path waits, once a valid
	// blob has arrived, for another new one before it stops, when it cannot
	// stop sooner (DefaultGossipGrace): a vault heard of has no verified
	// copy yet (every copy so far failed), or a holder is still sending.
	// Ten seconds spans three republished requests, for holders that missed
	// earlier ones, with a second to spare.
	DefaultGossipQuiet = 3*republishInterval + time.Second

	// DefaultGossipFirstWait is how long the gossip path waits for the
	// first valid blob before it stops with ErrNoBackups: what a mnemonic no
	// holder knows (a wrong one) costs. Holders usually answer within
	// seconds, but a holder that still has a connection to this peer ID
	// from before a crash, dead without its knowing, first tries that
	// connection: measured with `ksb node` processes, a node recovered
	// moments after being killed got its first blob after about 20 s (the
	// failed return, then the holder's 10 s per-owner request interval).
	// Forty-five seconds is twice that with room.
	DefaultGossipFirstWait = 45 * time.Second

	// DefaultGossipTimeout bounds the whole gossip path even while new blobs
	// keep arriving: forty republished requests.
	DefaultGossipTimeout = 2 * time.Minute

	// waitProgressInterval is how often the gossip path says, on Progress,
	// that it is still waiting: nine lines over the first wait.
	waitProgressInterval = 5 * time.Second

	// topicJoinWait bounds how long the gossip path waits for a first
	// connected bootstrap peer to appear on the recovery topic before it
	// publishes anyway (the request is republished every 3 s, and p2p
	// republishes when a peer joins). Gossipsub exchanges subscriptions
	// right after connecting, within a second on any link.
	topicJoinWait = 10 * time.Second

	// topicOthersWait is how long, once one bootstrap peer is on the topic,
	// the gossip path waits for the others before it publishes: so that
	// the first request reaches each of them directly, without letting one
	// slow peer hold the request back (it gets it relayed, or the request
	// republished when it joins).
	topicOthersWait = 500 * time.Millisecond

	// topicPollInterval is how often the topic membership is checked while
	// waiting for it: gossip exposes no join event outside Recover.
	topicPollInterval = 50 * time.Millisecond

	// fetchFanout is how many holders of one blob are asked at once. The
	// chain's replication target is 3 by default, so 8 asks every holder of
	// a normally replicated share at once, while bounding the dials a chain
	// full of (possibly false) attestations can make one recovery open.
	fetchFanout = 8

	// maxConcurrentOpens is how many blobs are decrypted at once. Opening
	// costs one scrypt: 256 MiB and one core for about a second at the
	// default work factor, 1 GiB at the highest one Open accepts. Two at
	// once halve the wall time of the usual node (an ECDSA and an EdDSA
	// vault) and keep memory within 2 GiB in the worst case.
	maxConcurrentOpens = 2

	// OutputMode is the permission of the files Run writes: they hold a
	// keyshare in the clear.
	OutputMode os.FileMode = 0o600

	// outDirMode is the permission of OutDir when Run creates it.
	outDirMode os.FileMode = 0o700
)

// DefaultGossipListen are the addresses the gossip path's host listens on
// when Options.Listen is empty: any interface, ephemeral ports, TCP and QUIC.
// Holders that are not among the bootstrap peers dial back to one of them to
// return blobs.
var DefaultGossipListen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}

// Options configure Run. Mnemonic and OutDir are required, and at least one
// of RPC and Bootstrap. Zero durations mean their defaults.
type Options struct {
	// Mnemonic is the node's 24-word BIP39 mnemonic: it gives the node's
	// address and peer ID, and opens the blobs. It is never logged.
	Mnemonic string
	// OutDir is where localstate-<vault>.json files are written; it is
	// created (mode 0700) when the first file is written, so a recovery
	// that writes nothing leaves nothing behind.
	OutDir string
	// RPC is the CometBFT RPC address of a node running the ksb chain
	// ("http://127.0.0.1:26657"); empty means no chain.
	RPC string
	// Bootstrap are peers to ask over gossip when the chain is not used or
	// not reachable: multiaddrs ending in /p2p/<peer ID>.
	Bootstrap []string
	// NoChain skips the chain even if RPC is set, and recovers over gossip.
	NoChain bool
	// Verified, when set, is where the chain path reads its commitments,
	// custodies and holders from instead of the RPC's JSON: it returns a
	// getter of verified state (package verify: every read checked against
	// an app hash its light client verified) and the height it is proven
	// at. Only each vault's newest commitment of this node is read then
	// (attest.ReadOwnerCommitments), and a failure of Verified or of any
	// read ends the recovery: it never falls back to gossip, so a lying RPC
	// cannot steer it.
	Verified func(ctx context.Context) (get attest.StateGetter, height int64, err error)
	// HRP is the bech32 prefix of node addresses; empty means the chain's
	// (or identity.DefaultHRP without the chain).
	HRP string
	// Force replaces existing output files; without it one with other bytes
	// than the recovered share is refused (ErrExists) and left untouched.
	// One with exactly those bytes is left as it is either way
	// (VaultResult.Unchanged).
	Force bool
	// Listen are the multiaddrs the gossip path's host listens on; empty
	// means DefaultGossipListen. The chain path's host only dials.
	Listen []string
	// Logger receives structured logs (holders skipped and why, fallbacks);
	// nil discards them. Neither the mnemonic nor any blob or plaintext is
	// ever logged.
	Logger *slog.Logger
	// Progress receives human-readable progress lines; nil means none.
	Progress io.Writer

	// ChainTimeout bounds each chain query (DefaultChainTimeout).
	ChainTimeout time.Duration
	// HolderTimeout bounds one fetch from one holder (DefaultHolderTimeout).
	HolderTimeout time.Duration
	// GossipQuiet is the gossip path's quiet period after a new blob
	// (DefaultGossipQuiet).
	GossipQuiet time.Duration
	// GossipFirstWait is how long the gossip path waits for the first
	// valid blob (DefaultGossipFirstWait).
	GossipFirstWait time.Duration
	// GossipTimeout bounds the gossip path (DefaultGossipTimeout).
	GossipTimeout time.Duration
	// GossipGrace is the gossip path's wait for late holders once every
	// vault heard of has a verified copy (DefaultGossipGrace).
	GossipGrace time.Duration

	// Now is the wall clock Run reads (nil means time.Now): the time its
	// recovery requests carry and the clock it compares with the chain's
	// and the holders' (Report.Clock). Tests give Run a wrong clock with it.
	Now func() time.Time

	// legacyGossip makes the gossip path behave as before holders' offers
	// were used (the benchmark's "before"): it waits legacyMeshWait before
	// publishing, opens one blob at a time, and stops only on the quiet
	// period. Set by the tests' export_test.go.
	legacyGossip bool
}

// Path is how blobs were found.
type Path string

// The two recovery paths.
const (
	// PathChain: commitments read from the chain, copies fetched from the
	// holders of their custodies over /ksb/fetch/2.0.0.
	PathChain Path = "chain"
	// PathGossip: a recovery request published on gossip, copies returned by
	// holders over /ksb/return/2.0.0.
	PathGossip Path = "gossip"
)

// Report says what Run did. Run returns it with a nil error, an
// *IncompleteError, ErrNoBackups, or any other error that came after holders
// were asked; it returns nil when it failed before learning what is held
// (bad options, chain unreachable, no bootstrap peer reachable).
type Report struct {
	// Path is the path that was used.
	Path Path
	// Owner is this node's address, and PeerID its libp2p peer ID.
	Owner  string
	PeerID peer.ID
	// Fallback, when Path is PathGossip and the chain was tried first, is
	// why the chain was not used.
	Fallback string
	// ProvenHeight, with Options.Verified, is the height of the verified
	// state the commitments were read from.
	ProvenHeight int64
	// Vaults has one entry per vault, in vault order: every attested vault
	// on the chain path, every vault a valid blob came back for on the
	// gossip path.
	Vaults []VaultResult
	// Skipped are the blobs and holders that were not used, and why.
	Skipped []Skip
	// Duration is Run's wall time.
	Duration time.Duration
	// Clock is this machine's clock against the chain's or the holders',
	// when Run could measure it; nil otherwise.
	Clock *ClockCheck
}

// Recovered returns the results of the vaults that were written.
func (r *Report) Recovered() []VaultResult {
	var out []VaultResult
	for _, v := range r.Vaults {
		if v.Err == nil {
			out = append(out, v)
		}
	}
	return out
}

// VaultResult is the outcome for one vault.
type VaultResult struct {
	// Vault is the vault public key.
	Vault string
	// Holder is the address of the holder whose blob was used (derived from
	// its peer ID on the gossip path), and Peer its peer ID; empty if none.
	Holder string
	Peer   peer.ID
	// Digest is, on the chain path, the root of the commitment whose copy
	// was used (hex); on the gossip path, the sha256 of the blob used.
	Digest string
	// Commitment is the chain's id of that commitment, and Height the block
	// that committed it (chain path).
	Commitment uint64
	Height     int64
	// Received is when the holder says it received the blob (gossip path).
	Received time.Time
	// Bytes is the size of the keyshare file written.
	Bytes int
	// Duration is the time from the start of the search (the chain read, or
	// the first gossip request) to the file being written.
	Duration time.Duration
	// File is the path written (or found already holding the share); empty
	// if none.
	File string
	// Unchanged says File already held exactly the recovered share, so
	// nothing was written: a recovery run again into the same directory.
	Unchanged bool
	// Err is why the vault was not recovered; nil if File was written.
	Err error
}

// Skip is a blob or holder that was not used.
type Skip struct {
	Vault string
	// Holder is the holder's address (empty if unknown) and Peer its peer
	// ID.
	Holder string
	Peer   peer.ID
	// Digest is the commitment root asked for (chain path, with
	// Commitment its id) or the digest announced (gossip path), hex.
	Digest     string
	Commitment uint64
	// Err is why: ErrBadCopy, ErrDigestMismatch, a *WrongVaultError, an
	// envelope or keyshare error, ErrHolderTimeout, ErrNoAddress, a p2p
	// refusal.
	Err error
}

// config is Options checked and completed.
type config struct {
	Options
	id        *identity.Identity
	client    *attest.Client // nil without the chain
	bootstrap []peer.AddrInfo
	log       *slog.Logger
	progress  *progress
	opens     chan struct{}
	fetches   sync.WaitGroup // fetch goroutines of the chain path
}

func (o Options) resolve() (*config, error) {
	c := &config{Options: o}
	if strings.TrimSpace(o.Mnemonic) == "" {
		return nil, fmt.Errorf("%w: no mnemonic", ErrBadOptions)
	}
	id, err := identity.New(o.Mnemonic)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	c.id = id
	if o.OutDir == "" {
		return nil, fmt.Errorf("%w: no output directory", ErrBadOptions)
	}
	for _, d := range []time.Duration{o.ChainTimeout, o.HolderTimeout, o.GossipQuiet, o.GossipFirstWait, o.GossipTimeout, o.GossipGrace} {
		if d < 0 {
			return nil, fmt.Errorf("%w: negative duration %v", ErrBadOptions, d)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ChainTimeout, DefaultChainTimeout)
	def(&c.HolderTimeout, DefaultHolderTimeout)
	def(&c.GossipQuiet, DefaultGossipQuiet)
	def(&c.GossipFirstWait, DefaultGossipFirstWait)
	def(&c.GossipTimeout, DefaultGossipTimeout)
	def(&c.GossipGrace, DefaultGossipGrace)
	if len(o.Bootstrap) > 0 {
		addrs := make([]ma.Multiaddr, 0, len(o.Bootstrap))
		for _, s := range o.Bootstrap {
			m, err := ma.NewMultiaddr(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("%w: bootstrap address %q: %v", ErrBadOptions, s, err)
			}
			if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
				return nil, fmt.Errorf("%w: bootstrap address %q: want a multiaddr ending in /p2p/<peer ID>", ErrBadOptions, s)
			}
			addrs = append(addrs, m)
		}
		infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
		if err != nil {
			return nil, fmt.Errorf("%w: bootstrap addresses: %v", ErrBadOptions, err)
		}
		slices.SortFunc(infos, func(a, b peer.AddrInfo) int { return strings.Compare(string(a.ID), string(b.ID)) })
		c.bootstrap = infos
	}
	if len(o.Listen) == 0 {
		c.Listen = DefaultGossipListen
	}
	for _, s := range c.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return nil, fmt.Errorf("%w: listen address %q: %v", ErrBadOptions, s, err)
		}
	}
	if (o.RPC == "" || o.NoChain) && len(c.bootstrap) == 0 {
		return nil, ErrNoSource
	}
	if o.RPC != "" && !o.NoChain {
		if c.client, err = attest.NewClient(o.RPC); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadOptions, err)
		}
	}
	if o.HRP != "" {
		if err := identity.ValidateHRP(o.HRP); err != nil {
			return nil, fmt.Errorf("%w: address prefix: %w", ErrBadOptions, err)
		}
	}
	c.log = o.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.progress = newProgress(o.Progress)
	if c.Now == nil {
		c.Now = time.Now
	}
	c.opens = make(chan struct{}, maxConcurrentOpens)
	return c, nil
}

// Run recovers this node's keyshares from its mnemonic alone and writes
// them to OutDir, as the package documentation describes. The error is nil
// only when every vault found was written; with an *IncompleteError the
// Report says which were not, and the others are written.
func Run(ctx context.Context, opts Options) (*Report, error) {
	start := time.Now()
	c, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(c.OutDir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%w: output %s is not a directory", ErrBadOptions, c.OutDir)
	}
	rep := &Report{PeerID: c.id.PeerID()}
	err = run(ctx, c, rep)
	rep.Duration = time.Since(start)
	if err != nil && rep.Vaults == nil && rep.Skipped == nil && !errors.Is(err, ErrNoBackups) {
		return nil, err // nothing learnt about what is held
	}
	return rep, err
}

// run tries the chain path, then the gossip path, as Options say.
func run(ctx context.Context, c *config, rep *Report) error {
	if c.RPC != "" && !c.NoChain {
		err := runChain(ctx, c, rep)
		var unreachable *chainUnreachable
		if !errors.As(err, &unreachable) {
			if ctx.Err() == nil {
				rep.Clock = c.chainClock(ctx)
				c.reportClock(rep.Clock)
			}
			return err
		}
		if len(c.bootstrap) == 0 {
			return fmt.Errorf("%w: %s: %w", ErrChainUnreachable, c.RPC, unreachable.err)
		}
		// A refused connection fails the first query at once (nothing
		// listens there): no wait before the gossip path. A chain that does
		// not answer has cost ChainTimeout.
		how := "unreachable"
		if errors.Is(unreachable.err, syscall.ECONNREFUSED) {
			how = "refused the connection"
		}
		rep.Fallback = fmt.Sprintf("chain RPC %s %s: %v", c.RPC, how, unreachable.err)
		c.log.Warn("chain unreachable; recovering over gossip", "rpc", c.RPC, "err", unreachable.err)
		c.progress.printf("chain RPC %s %s (%v); asking bootstrap peers over gossip", c.RPC, how, unreachable.err)
	}
	return runGossip(ctx, c, rep)
}

// chainUnreachable is a chain read that failed for want of an answer (as
// opposed to an answer refusing the query); the gossip path may be tried.
type chainUnreachable struct{ err error }

func (e *chainUnreachable) Error() string { return e.err.Error() }

// finish sorts the report and turns missing vaults into an
// *IncompleteError.
func finish(rep *Report) error {
	slices.SortFunc(rep.Vaults, func(a, b VaultResult) int { return strings.Compare(a.Vault, b.Vault) })
	var inc IncompleteError
	for _, v := range rep.Vaults {
		if v.Err != nil {
			inc.Missing = append(inc.Missing, Missing{Vault: v.Vault, Err: v.Err})
		}
	}
	if len(inc.Missing) > 0 {
		return &inc
	}
	return nil
}
