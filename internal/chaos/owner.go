package chaos

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/multiformats/go-multiaddr"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
)

const (
	// pushTimeout is an owner's deadline for one push, well under
	// p2p.PushTimeout (the holder's): a push to a frozen holder gives up
	// while the holder still has the stream, as a real owner's retry would.
	pushTimeout = 10 * time.Second
	// retryPause is how long a pusher waits after a push without a
	// receipt, so a dead holder is not dialled in a tight loop.
	retryPause = 100 * time.Millisecond
	// fetchAttempts and fetchPause bound an owner's fetch of its blobs for a
	// check: a holder just back may still be dialled through a stale
	// connection, and a fetch refused as rate limited waits one refill of
	// the holder's per-peer budget (p2p.DefaultFetchInterval).
	fetchAttempts = 6
	fetchPause    = time.Second
)

// slot is one (owner, vault): the owner keeps one blob per vault on the
// holder, and pushes to a slot one at a time.
type slot struct {
	vault string
	// current is the blob the holder must hold now: the last receipted one,
	// or the one the last check found; nil when there must be none.
	current *[32]byte
	// receipted says current came with a receipt, at receivedAt.
	receipted  bool
	receivedAt time.Time
	// pending are the pushes since the last receipt that got none: each may
	// have been stored (the receipt lost to the fault) or not — or may still
	// be, by a holder that goes on with a push its owner gave up on. Only the
	// next receipt clears them: the holder must never go back to a blob older
	// than a receipt.
	pending [][32]byte
	// next is the version committed on chain and not receipted yet: pushed
	// again until a receipt comes, and only then is a new one committed. So
	// the receipted version is at most one version old, and the chain (which
	// keeps two superseded versions of an owner's vault) never deletes it
	// under the holder while the check still expects it.
	next *p2p.Copy
	// last is the copy of the last receipt: pushed again (a duplicate the
	// holder acknowledges again) when no new version can be committed —
	// with the chain down, a holder takes pushes of the custodies its saved
	// chain view knows, and only those.
	last *p2p.Copy
	// tryLast: the last push of next failed, so the next turn pushes last
	// (a holder restarted without the chain does not know next's custody
	// if it was committed after the holder's last chain poll).
	tryLast bool
}

// owner is an active node pushing its blobs to the holder. Each blob is a
// share version it commits on chain first (r copies of random bytes of one
// size; the chain assigns every candidate, so one of them to the holder),
// as a real owner does; it pushes the holder's copy only.
type owner struct {
	idx        int
	id         *identity.Identity
	addr       string
	h          host.Host
	holder     peer.ID
	holderAddr string
	slots      []*slot
	sender     *attest.Sender
	vaultIndex map[string]uint64
	copies     int // r
}

func startOwner(idx int, home string, holder peer.ID, holderAddrs []string, vaults []string, c *attest.Client, index map[string]uint64, r int) (*owner, error) {
	cfg, err := config.Load(filepath.Join(home, config.FileName))
	if err != nil {
		return nil, err
	}
	m, err := identity.Read(identity.Source{File: config.Path(home, cfg.Mnemonic)})
	if err != nil {
		return nil, err
	}
	id, err := identity.New(m)
	if err != nil {
		return nil, err
	}
	// The owner listens where the chain says it does, so the holder's
	// connections to active nodes succeed as in a real network.
	h, err := p2p.NewHost(p2p.HostConfig{Identity: id, Listen: cfg.P2P.Listen})
	if err != nil {
		return nil, fmt.Errorf("owner %d host: %w", idx, err)
	}
	for _, a := range holderAddrs {
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			h.Close()
			return nil, err
		}
		h.Peerstore().AddAddr(holder, ma, peerstore.PermanentAddrTTL)
	}
	hk, err := identity.PubKeyFromPeerID(holder)
	if err != nil {
		h.Close()
		return nil, err
	}
	ha, err := identity.AddressFromPubKey(hk, cfg.HRP)
	if err != nil {
		h.Close()
		return nil, err
	}
	o := &owner{idx: idx, id: id, addr: id.Address(cfg.HRP), h: h, holder: holder, holderAddr: ha,
		sender: attest.NewSender(c, id), vaultIndex: index, copies: r}
	for _, v := range vaults {
		o.slots = append(o.slots, &slot{vault: v})
	}
	return o, nil
}

// holderBack is what an owner does when it learns the holder is back: it
// drops its connections to the old process and forgets failed dials, so the
// next push dials the new process at once. Without it a push in flight over
// QUIC waits out its deadline (a killed process sends nothing over UDP; the
// new one resets the connection only once a retransmission reaches it), and
// new pushes wait out libp2p's dial backoff. Pushes cut here have no receipt
// and count as pending.
func (o *owner) holderBack() {
	o.h.Network().ClosePeer(o.holder)
	if sw, ok := o.h.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(o.holder)
	}
}

// pushCounts are a run's push outcomes.
type pushCounts struct {
	receipts atomic.Int64
	failed   atomic.Int64

	mu      sync.Mutex
	reasons map[string]int // failed pushes by reason
}

func (c *pushCounts) fail(err error) {
	c.failed.Add(1)
	reason := "stream error"
	var ref *p2p.RefusedError
	switch {
	case errors.As(err, &ref):
		reason = "refused: " + ref.Code.String()
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		reason = "timed out"
	case errors.Is(err, context.Canceled):
		reason = "cut at the end of a cycle"
	case errors.Is(err, swarm.ErrDialBackoff):
		reason = "dial backoff"
	}
	c.mu.Lock()
	if c.reasons == nil {
		c.reasons = map[string]int{}
	}
	c.reasons[reason]++
	c.mu.Unlock()
}

// summary lists the failure reasons, most frequent first.
func (c *pushCounts) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range c.reasons {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	s := ""
	for i, e := range l {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", e.k, e.v)
	}
	return s
}

// pusher pushes to its share of an owner's slots, one push at a time.
type pusher struct {
	o     *owner
	slots []*slot
	rng   *rand.Rand // sizes and contents: seeded, per pusher
	next  int
}

// run pushes until ctx is done. Each push's slot, size and bytes come from
// the pusher's seeded generator; a slot's new version is committed on chain
// before its copy is pushed, and pushed again until a receipt comes.
func (w *pusher) run(ctx context.Context, counts *pushCounts) {
	for ctx.Err() == nil {
		s := w.slots[w.next%len(w.slots)]
		w.next++
		if s.next == nil {
			c, err := w.o.commit(ctx, s.vault, w.blob(), w.rng)
			switch {
			case err == nil:
				s.next = c
			case s.last == nil:
				counts.fail(fmt.Errorf("committing: %w", err))
				w.pause(ctx)
				continue
			}
		}
		c := s.last
		if s.next != nil && (!s.tryLast || s.last == nil) {
			c = s.next
		}
		s.tryLast = false
		cp := *c
		d := sha256.Sum256(cp.Blob)
		if !slices.Contains(s.pending, d) {
			s.pending = append(s.pending, d) // it may land even if no receipt comes back
		}
		pctx, cancel := context.WithTimeout(ctx, pushTimeout)
		_, err := p2p.Push(pctx, w.o.h, w.o.holder, w.o.id, cp)
		cancel()
		if err == nil {
			// p2p.Push verified the receipt: signed by the holder, for
			// exactly this pusher, custody, copy index, size and copy root.
			s.current, s.receipted, s.receivedAt, s.pending, s.next, s.last = &d, true, time.Now(), nil, nil, &cp
			counts.receipts.Add(1)
			continue
		}
		counts.fail(err)
		s.tryLast = c == s.next
		w.pause(ctx)
	}
}

func (w *pusher) pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(retryPause):
	}
}

// commit commits a new version of vault: r copies of blob's size (blob,
// then random bytes), in one Commit, and returns the copy the chain
// assigned to the holder, to push.
func (o *owner) commit(ctx context.Context, vault string, blob []byte, rng *rand.Rand) (*p2p.Copy, error) {
	copies := make([][]byte, o.copies)
	copies[0] = blob
	for i := 1; i < len(copies); i++ {
		copies[i] = make([]byte, len(blob))
		var seed [32]byte
		for j := range 4 {
			v := rng.Uint64()
			for k := range 8 {
				seed[8*j+k] = byte(v >> (8 * k))
			}
		}
		rand.NewChaCha8(seed).Read(copies[i])
	}
	cm, err := custody.NewCommitment(copies)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	res, err := o.sender.Commit(cctx, attest.ShareCommit{Vault: o.vaultIndex[vault], Size: cm.Size, Root: cm.Root})
	if err != nil {
		return nil, err
	}
	for _, a := range res.Assignments() {
		if a.Holder != o.holderAddr {
			continue
		}
		i := int(a.CopyIndex)
		path, err := custody.CommitPath(cm.CopyRoots, i)
		if err != nil {
			return nil, err
		}
		return &p2p.Copy{Custody: a.Custody, CopyIndex: i, CommitPath: path, Owner: o.id.PubKey(), Blob: copies[i]}, nil
	}
	return nil, fmt.Errorf("the chain assigned no copy of the version to the holder %s", o.holderAddr)
}

// blob draws the size of the next version's copies (60 KiB half of the
// time, else 1 KiB to 900 KiB) and one copy of it: random bytes, as
// incompressible as a sealed share.
func (w *pusher) blob() []byte {
	n := smallBlobSize
	if w.rng.IntN(2) == 1 {
		n = minBlobSize + w.rng.IntN(maxBlobSize-minBlobSize+1)
	}
	var seed [32]byte
	for i := range 4 {
		v := w.rng.Uint64()
		for j := range 8 {
			seed[8*i+j] = byte(v >> (8 * j))
		}
	}
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// check fetches the owner's blobs from the holder and compares each slot
// with what it must hold. It returns how many slots held a blob that passed,
// and one line per slot that did not. After the check every slot's state is
// what the holder holds now.
//
// A check that finds anything wrong fetches again after confirmPause and
// reports what is still wrong: a blob replaced while the holder answers is
// skipped from that answer (p2p's sendEntries), which a push the owner gave
// up on, finishing late on the holder, can cause. A lost blob stays lost.
//
// fault and back are when the cycle's fault hit the holder and when it was
// healthy again, to say when a lost blob's receipt came.
// rechecked says the first fetch disagreed and a second one was made.
func (o *owner) check(ctx context.Context, fault, back time.Time) (verified int, problems []string, rechecked bool) {
	for attempt := 0; ; attempt++ {
		got, err := o.fetch(ctx)
		if err != nil {
			return 0, []string{fmt.Sprintf("owner %d (%s): fetching its blobs: %v", o.idx, o.addr, err)}, attempt > 0
		}
		verified, problems = o.compare(got, fault, back, attempt > 0)
		if len(problems) == 0 || attempt > 0 {
			return verified, problems, attempt > 0
		}
		sleep(ctx, confirmPause)
	}
}

// confirmPause is how long a check waits before fetching again to confirm a
// problem: far longer than a holder takes to finish a push it already has.
const confirmPause = 2 * time.Second

// compare judges the fetched blobs; with commit it moves the slots to what
// the holder holds (also when nothing is wrong). Of a vault's copies the
// holder keeps the newest version's (the highest commitment id) is the
// slot's; older versions it may still hold, until the chain deletes them.
func (o *owner) compare(got []p2p.Fetched, fault, back time.Time, commit bool) (verified int, problems []string) {
	byVault := map[string]p2p.Fetched{}
	for _, f := range got {
		if old, dup := byVault[f.Vault]; dup {
			switch {
			case old.Custody == f.Custody:
				problems = append(problems, fmt.Sprintf("owner %d: the holder returned custody %d/%d twice", o.idx, f.Custody.Commitment, f.Custody.Slot))
			case old.Custody.Commitment > f.Custody.Commitment:
				continue
			}
		}
		byVault[f.Vault] = f
	}
	type move struct {
		s *slot
		d *[32]byte
	}
	var moves []move
	for _, s := range o.slots {
		f, have := byVault[s.vault]
		delete(byVault, s.vault)
		var d *[32]byte
		if have {
			sum := sha256.Sum256(f.Blob)
			if sum != f.Digest || int64(len(f.Blob)) != f.Size {
				problems = append(problems, fmt.Sprintf("owner %d vault %s: CORRUPT: %d bytes hashing to %x, entry says %x (%d bytes)",
					o.idx, s.vault, len(f.Blob), sum[:8], f.Digest[:8], f.Size))
				continue
			}
			d = &sum
		}
		if p := s.judge(d); p != "" {
			problems = append(problems, fmt.Sprintf("owner %d vault %s: %s%s", o.idx, s.vault, p, s.when(fault, back)))
			continue
		}
		moves = append(moves, move{s, d})
		if d != nil {
			verified++
		}
	}
	for v := range byVault {
		problems = append(problems, fmt.Sprintf("owner %d: the holder returned a blob for vault %s, which it never pushed", o.idx, v))
	}
	if commit || len(problems) == 0 {
		for _, m := range moves {
			m.s.moveTo(m.d)
		}
	}
	return verified, problems
}

// when says when the slot's current blob was receipted, relative to the
// cycle's fault.
func (s *slot) when(fault, back time.Time) string {
	if !s.receipted {
		return ""
	}
	switch at := s.receivedAt; {
	case at.Before(fault):
		return fmt.Sprintf("; receipt %v before the fault", fault.Sub(at).Round(time.Millisecond))
	case at.After(back):
		return fmt.Sprintf("; receipt %v after the holder came back", at.Sub(back).Round(time.Millisecond))
	default:
		return "; receipt during the fault"
	}
}

// judge compares the digest the holder returned (nil: none) with what the
// slot must hold: "" when the holder is right, else what is wrong.
func (s *slot) judge(got *[32]byte) string {
	if eq(got, s.current) {
		return ""
	}
	for _, p := range s.pending {
		if got != nil && *got == p {
			return ""
		}
	}
	what := "a stored blob"
	if s.receipted {
		what = "a receipted blob"
	}
	switch {
	case got == nil:
		return fmt.Sprintf("LOST %s: %x is not on the holder (%d later pushes unacknowledged)", what, s.current[:8], len(s.pending))
	case s.current == nil:
		return fmt.Sprintf("the holder returned %x, which no push of this slot since its last receipt sent", got[:8])
	default:
		return fmt.Sprintf("LOST %s: the holder returned %x instead of %x (an older or unknown blob)", what, got[:8], s.current[:8])
	}
}

// moveTo records that the holder holds got, which judge accepted: from now
// on it must keep it (a blob it stored without a receipt reaching the owner
// included).
func (s *slot) moveTo(got *[32]byte) {
	if !eq(got, s.current) {
		s.current, s.receipted = got, false
	}
}

func eq(a, b *[32]byte) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// fetch asks the holder for all of the owner's blobs, retrying a few times:
// the holder may just be back and the owner's connection to it stale.
func (o *owner) fetch(ctx context.Context) ([]p2p.Fetched, error) {
	var err error
	for attempt := range fetchAttempts {
		if attempt > 0 {
			pause := fetchPause
			if errors.Is(err, p2p.ErrRateLimited) {
				pause = p2p.DefaultFetchInterval
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(pause):
			}
			o.holderBack()
		}
		var got []p2p.Fetched
		fctx, cancel := context.WithTimeout(ctx, p2p.FetchTimeout)
		got, err = p2p.Fetch(fctx, o.h, o.holder, "", 0)
		cancel()
		if err == nil {
			return got, nil
		}
		if errors.Is(err, p2p.ErrNotFound) {
			return nil, nil // the holder has nothing of this owner
		}
	}
	return nil, fmt.Errorf("%d attempts, the last: %w", fetchAttempts, err)
}
