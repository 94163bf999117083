package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// maxCommitHold bounds how long a sealed share version waits for the
// other files the watcher still has to hand over before it is committed
// anyway. The owner commits as soon as the watcher is idle (nothing seen and
// not handed over: see watcher), so the versions keygen writes together —
// a churn's ECDSA and EdDSA shares — share one Commit without a fixed delay;
// this bound only matters when a file in the directory never settles (a
// writer that keeps rewriting a .json), which must not hold up the
// commitment of the shares beside it. Two settle times: what the settle
// rule takes for a file that stopped changing (two looks, settleTime
// apart). A half-written share needs no settling: the event of the write
// that completes it has it read at once.
const maxCommitHold = 2 * settleTime

// runOwner backs up every share file the watcher reports: it seals r
// copies (r is the chain's replication), commits them on chain (one Commit
// for the versions sealed together), and pushes copy i to the holder the
// chain assigned to slot i. Every poll interval it reconciles: versions not
// committed yet are committed, and every custody of a live commitment that
// is not attested (a push that failed, a holder that lost its copy, a
// repair's replacement) gets its copy again.
func (n *Node) runOwner(ctx context.Context) error {
	dir := config.Path(n.home, n.cfg.Backup.KeysharesDir)
	files := make(chan candidate)
	w := newWatcher(dir, n.log.With("component", "watcher"))
	werr := make(chan error, 1)
	go func() { werr <- w.run(ctx, files) }()

	if !n.waitView(ctx) {
		return nil
	}
	t := time.NewTicker(n.cfg.Chain.PollInterval.Duration)
	defer t.Stop()
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	// retry holds files whose backup failed for a reason that may pass (an
	// unreadable file, a store error, no chain parameters yet); they are
	// tried again every tick.
	retry := map[string]bool{}
	// batching: share versions were sealed (or a commit was asked for)
	// since the last commit, and wait until the watcher is idle or the hold
	// timer fires.
	batching := false
	commit := func() {
		batching = false
		hold.Stop()
		n.pushAll(ctx, n.commitPending(ctx))
		n.reconcileAll(ctx)
	}
	wait := func() {
		if !batching {
			batching = true
			resetTimer(hold, maxCommitHold)
		}
		if w.Idle() {
			commit()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-werr:
			if err != nil {
				return fmt.Errorf("watching %s: %w", dir, err)
			}
			return nil
		case c := <-files:
			delete(retry, c.Path)
			if !n.backupFile(c.Path) {
				retry[c.Path] = true
			}
			wait()
		case <-w.Quiet():
			if batching && w.Idle() {
				commit()
			}
		case <-n.commitKick:
			wait()
		case <-hold.C:
			if batching {
				commit()
			}
		case <-t.C:
			for p := range retry {
				if n.backupFile(p) {
					delete(retry, p)
				}
			}
			if !batching {
				// Versions sealed before the chain knew their vault, or
				// whose Commit failed: the batch is long over.
				n.pushAll(ctx, n.commitPending(ctx))
			}
			n.reconcileAll(ctx)
		}
	}
}

// backupFile recognises one share file and, when its content is new, seals
// it into r copies and records the new version for commitment. A file that
// is not a keyshare is reported and left alone. It returns false when the
// backup failed for a reason that may pass (read or store errors, the
// chain's parameters not known yet), so the caller tries again.
func (n *Node) backupFile(path string) bool {
	log := n.log.With("file", filepath.Base(path))
	data, info, err := keyshare.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return true // removed since it was seen
	case errors.Is(err, keyshare.ErrNotKeyshare):
		n.m.files.WithLabelValues("not_keyshare").Inc()
		log.Warn("not a keyshare; left alone", "err", err)
		return true
	case err != nil:
		n.m.files.WithLabelValues("unreadable").Inc()
		log.Warn("cannot read file; will retry", "err", err)
		return false
	}
	plain := sha256.Sum256(data)
	vault := info.VaultPubKey
	log = log.With("vault", vault)

	n.ownMu.Lock()
	defer n.ownMu.Unlock()
	var old shareRecord
	found, err := getJSON(n.st, ownPrefix+vault, &old)
	if err != nil {
		log.Error("reading share record", "err", err)
		return false
	}
	if found && old.PlainSHA256 == hex.EncodeToString(plain[:]) {
		n.m.files.WithLabelValues("unchanged").Inc()
		log.Debug("share already sealed")
		return true
	}
	if found && old.File != path {
		if fi, err := os.Stat(old.File); err == nil && fi.ModTime().After(mtime(path)) {
			// Two files of one vault (a stale copy beside the live share):
			// the newer file is the share; never replace it with an older one.
			n.m.files.WithLabelValues("older_duplicate").Inc()
			log.Warn("an older file of a vault already backed up from a newer file; left alone", "newer", old.File)
			return true
		}
	}
	p := n.params.Load()
	if p == nil {
		log.Info("chain parameters not known yet (replication r); will seal once the chain answers")
		return false
	}
	r := int(p.Replication)
	start := time.Now()
	copies, err := envelope.SealCopies(data, n.id.Mnemonic(), r, &envelope.SealOptions{
		WorkFactor:         n.cfg.Backup.WorkFactor,
		AllowLowWorkFactor: n.cfg.Backup.AllowLowWorkFactor,
	})
	if err != nil {
		n.m.files.WithLabelValues("seal_failed").Inc()
		log.Error("sealing share failed; nothing was committed", "err", err)
		return !errors.Is(err, envelope.ErrSanityCheck) // a chance match may not repeat
	}
	cm, err := custody.NewCommitment(copies)
	if err != nil {
		n.m.files.WithLabelValues("seal_failed").Inc()
		log.Error("committing to the sealed copies", "err", err)
		return true
	}
	ver := version{Root: hex.EncodeToString(cm.Root[:]), Size: cm.Size, Copies: r}
	for _, cr := range cm.CopyRoots {
		ver.CopyRoots = append(ver.CopyRoots, hex.EncodeToString(cr[:]))
	}
	// The copies first: a record never names copies that are not there.
	writes := make([]store.MetaWrite, len(copies))
	for i, c := range copies {
		writes[i] = store.MetaWrite{Key: ownCopyKey(vault, ver.Root, i), Value: c}
	}
	if err := n.st.WriteMeta(writes); err != nil {
		log.Error("storing sealed copies", "err", err)
		return false
	}
	rec := shareRecord{
		Vault: vault, File: path, Kind: string(info.Kind), Algorithm: string(info.Algorithm),
		PlainSHA256: hex.EncodeToString(plain[:]), SealedAt: time.Now().UTC(), Version: ver,
	}
	// Until the new version is committed, the previous committed one is
	// the live one: its copies stay (the chain may name this node as a
	// repair's source). A previous version never committed is replaced.
	switch {
	case found && old.Version.Commitment != 0:
		rec.Previous = &old.Version
		if old.Previous != nil {
			n.deleteCopies(vault, old.Previous)
		}
	case found:
		rec.Previous = old.Previous
		n.deleteCopies(vault, &old.Version)
	}
	if err := putJSON(n.st, ownPrefix+vault, rec); err != nil {
		log.Error("storing share record", "err", err)
		return false
	}
	n.m.files.WithLabelValues("sealed").Inc()
	log.Info("share sealed", "kind", info.Kind, "algorithm", info.Algorithm, "copies", r, "size", cm.Size,
		"root", ver.Root, "seal_ms", time.Since(start).Milliseconds())
	return true
}

// deleteCopies deletes the sealed copies of version v of vault's share.
func (n *Node) deleteCopies(vault string, v *version) {
	writes := make([]store.MetaWrite, v.Copies)
	for i := range writes {
		writes[i] = store.MetaWrite{Key: ownCopyKey(vault, v.Root, i), Delete: true}
	}
	if err := n.st.WriteMeta(writes); err != nil {
		n.log.Warn("deleting sealed copies of an old version", "vault", vault, "err", err)
	}
}

func mtime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// commitPending commits, in one transaction, every share version sealed
// but not committed yet whose vault the chain holds live with this node as
// a member. A version the chain already has (committed before a crash lost
// the answer) is adopted instead of committed again. It returns the pushes
// to the holders the chain assigned in the Commit's block.
func (n *Node) commitPending(ctx context.Context) []pushJob {
	n.ownMu.Lock()
	defer n.ownMu.Unlock()
	recs, keys, err := scanJSON[shareRecord](n.st, ownPrefix)
	if err != nil {
		n.log.Error("listing share records", "err", err)
		return nil
	}
	view := n.member.current()
	if _, active := view.nodes[n.id.PubKeyHex()]; !active {
		return nil // the chain refuses every transaction of a node that is not active
	}
	var pending []string
	for _, k := range keys {
		r := recs[k]
		if r.Version.Commitment != 0 {
			continue
		}
		v, ok := view.vaults[r.Vault]
		if !ok || v.Retired || !view.member(r.Vault, n.addr) {
			// The chain refuses a commitment to a vault it does not know
			// (yet: the churn that creates it may come after keygen), a
			// retired one, or by a node that is not a member. Sealed, it is
			// committed once the vault is on chain.
			n.log.Debug("vault not live on chain with this node as a member; not committing yet", "vault", r.Vault, "known", ok)
			continue
		}
		pending = append(pending, k)
	}
	if len(pending) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	// A Commit whose answer a crash (or a timeout) lost is on chain: adopt
	// it rather than commit the same version again.
	onChain, err := n.chain.CommitmentsByOwner(cctx, n.addr)
	if err != nil {
		n.m.chainErrors.Inc()
		n.log.Warn("reading this node's commitments; will retry", "err", err)
		return nil
	}
	var shares []attest.ShareCommit
	var toCommit []string
	limit := maxSharesPerCommit(n.params.Load())
	for _, k := range pending {
		r := recs[k]
		vi := view.vaults[r.Vault].Index
		if c, ok := findCommitment(onChain, vi, r.Version.Root); ok {
			r.Version.Commitment, r.Version.CommitHeight = c.ID, c.CommitHeight
			n.committed(k, &r)
			n.m.commits.WithLabelValues("adopted").Inc()
			n.log.Info("share version found committed on chain", "vault", r.Vault, "commitment", c.ID)
			continue
		}
		root, err := parseHash(r.Version.Root)
		if err != nil {
			n.log.Error("share record with a bad root; sealing again", "vault", r.Vault, "err", err)
			n.st.DeleteMeta(k)
			continue
		}
		if len(shares) == limit {
			break // the rest at the next tick
		}
		shares = append(shares, attest.ShareCommit{Vault: vi, Size: r.Version.Size, Root: root})
		toCommit = append(toCommit, k)
	}
	if len(shares) == 0 {
		return nil
	}
	res, err := n.sender.Commit(cctx, shares...)
	if err != nil {
		n.m.chainErrors.Inc()
		reason := "error"
		var te *attest.TxError
		if errors.As(err, &te) {
			reason = "refused"
		}
		n.m.commits.WithLabelValues(reason).Add(float64(len(shares)))
		n.log.Warn("committing share versions; will retry", "count", len(shares), "err", err)
		return nil
	}
	ids := res.Commitments()
	if len(ids) != len(toCommit) {
		n.log.Error("the Commit's result names another number of commitments; reading them at the next tick", "want", len(toCommit), "got", len(ids))
		return nil
	}
	byCommitment := map[uint64][]attest.Custody{}
	for _, a := range res.Assignments() {
		byCommitment[a.Custody.Commitment] = append(byCommitment[a.Custody.Commitment], attest.Custody{
			Commitment: a.Custody.Commitment, Slot: a.Custody.Slot, CopyIndex: a.CopyIndex, Holder: a.Holder,
			Status: custody.StatusPending.String(), Source: a.Source,
		})
	}
	for i, k := range toCommit {
		r := recs[k]
		r.Version.Commitment, r.Version.CommitHeight = ids[i], res.Height
		n.committed(k, &r)
		n.m.commits.WithLabelValues("committed").Inc()
		if got := len(byCommitment[ids[i]]); got < r.Version.Copies {
			n.m.underReplicated.Inc()
			n.log.Warn("the chain assigned fewer holders than r (too few candidates); coverage shows the share not covered",
				"vault", r.Vault, "commitment", ids[i], "holders", got, "copies", r.Version.Copies)
		}
		n.log.Info("share version committed", "vault", r.Vault, "commitment", ids[i], "height", res.Height, "holders", len(byCommitment[ids[i]]))
	}
	// Push at once, from the Commit's own assignments: the holders check
	// them against the chain, which has them since this block.
	var jobs []pushJob
	for i, k := range toCommit {
		r := recs[k]
		r.Version.Commitment, r.Version.CommitHeight = ids[i], res.Height
		for _, c := range byCommitment[ids[i]] {
			jobs = append(jobs, pushJob{key: k, vault: r.Vault, ver: r.Version, custody: c})
		}
	}
	return jobs
}

// maxSharesPerCommit is how many share versions one Commit carries: at most
// attest.MaxShares, and few enough that the Commit's state writes (the
// chain counts 6 + 3r per share against attest.MaxBlockWrites, 4,096 per
// block, and never proposes a transaction over it) stay within half a
// block. At r = 3 that is all 64; at r = 64, 10.
func maxSharesPerCommit(p *attest.Params) int {
	r := 3
	if p != nil {
		r = int(p.Replication)
	}
	return max(1, min(attest.MaxShares, attest.MaxBlockWrites/2/(6+3*r)))
}

// committed records that rec's version is committed (key is its record
// key): the previous version no longer counts on chain, so its copies go.
// ownMu is held.
func (n *Node) committed(key string, rec *shareRecord) {
	if rec.Previous != nil {
		n.deleteCopies(rec.Vault, rec.Previous)
		rec.Previous = nil
	}
	if err := putJSON(n.st, key, rec); err != nil {
		n.log.Error("storing share record", "vault", rec.Vault, "err", err)
	}
}

// findCommitment returns the commitment of cs for vault index vi with root
// (hex), if any.
func findCommitment(cs []attest.Commitment, vi uint64, root string) (attest.Commitment, bool) {
	for _, c := range cs {
		if c.VaultIndex == vi && c.Root == root {
			return c, true
		}
	}
	return attest.Commitment{}, false
}

// pushJob is one copy to push: custody's copy of record key's version.
type pushJob struct {
	key     string
	vault   string
	ver     version
	custody attest.Custody
}

// reconcileAll reads this node's commitments from the chain and pushes every
// custody of a live commitment that needs its copy: not attested, not
// failed, and not pushed within repushAfter. A commitment the chain no
// longer has while its vault is live is committed again; the copies of a
// commitment that no longer counts (its vault retired) are deleted.
func (n *Node) reconcileAll(ctx context.Context) {
	n.ownMu.Lock()
	recs, keys, err := scanJSON[shareRecord](n.st, ownPrefix)
	if err != nil {
		n.ownMu.Unlock()
		n.log.Error("listing share records", "err", err)
		return
	}
	if len(keys) == 0 {
		n.ownMu.Unlock()
		n.setUnderReplicated(nil, nil, nil)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	onChain, err := n.chain.CommitmentsByOwner(cctx, n.addr)
	cancel()
	if err != nil {
		n.ownMu.Unlock()
		n.m.chainErrors.Inc()
		n.log.Warn("reading this node's commitments; will retry", "err", err)
		return
	}
	byID := make(map[uint64]attest.Commitment, len(onChain))
	for _, c := range onChain {
		byID[c.ID] = c
	}
	n.setUnderReplicated(recs, keys, byID)
	view := n.member.current()
	var jobs []pushJob
	now := time.Now()
	for _, k := range keys {
		r := recs[k]
		if r.Version.Commitment == 0 {
			continue
		}
		c, ok := byID[r.Version.Commitment]
		if !ok {
			if v, live := view.vaults[r.Vault]; live && !v.Retired {
				// Not in state although the vault is live: the chain does not
				// know it (another chain, a reset). Commit it again.
				n.log.Warn("commitment not on chain; committing the share again", "vault", r.Vault, "commitment", r.Version.Commitment)
				r.Version.Commitment, r.Version.CommitHeight, r.Version.Pushes = 0, 0, nil
				n.committed(k, &r)
				n.kickCommit()
			}
			continue
		}
		if !c.Live {
			if c.RetiredHeight != 0 {
				// Its vault is retired: the chain repairs it no more (nothing
				// names this owner a source), and holders keep their copies
				// for the grace. The owner's sealed copies go now, or every
				// retired vault would leave r copies behind for ever.
				n.releaseRetired(r)
			}
			continue // superseded (by a newer version) or retired: nothing to push
		}
		for _, cu := range c.Custodies {
			if cu.Holder == n.addr || cu.Attested || cu.Status == custody.StatusFailed.String() {
				continue
			}
			if p, ok := r.Version.Pushes[cu.Slot]; ok && now.Sub(p.PushedAt) < repushAfter {
				continue
			}
			jobs = append(jobs, pushJob{key: k, vault: r.Vault, ver: r.Version, custody: cu})
		}
	}
	n.ownMu.Unlock()
	n.pushAll(ctx, jobs)
}

// setUnderReplicated sets ksb_owner_under_replicated_shares from the share
// records and this node's commitments on chain, whatever the cause.
func (n *Node) setUnderReplicated(recs map[string]shareRecord, keys []string, byID map[uint64]attest.Commitment) {
	count := map[string]int{}
	view := n.member.current()
	self := n.self.Load()
	for _, k := range keys {
		r := recs[k]
		c, found := byID[r.Version.Commitment]
		if reason, _ := shareProblem(view, self, n.addr, r, c, found); reason != "" {
			count[reason]++
		}
	}
	for _, reason := range underReplicatedReasons {
		n.m.underShares.WithLabelValues(reason).Set(float64(count[reason]))
	}
}

// releaseRetired deletes the sealed copies of r's version, whose vault is
// retired, if they are still there. ownMu is held.
func (n *Node) releaseRetired(r shareRecord) {
	if _, err := n.st.GetMeta(ownCopyKey(r.Vault, r.Version.Root, 0)); err != nil {
		return // gone already (or unreadable: the next reconcile tries again)
	}
	n.deleteCopies(r.Vault, &r.Version)
	n.log.Info("vault retired: deleted the sealed copies of its share", "vault", r.Vault, "commitment", r.Version.Commitment)
}

func (n *Node) kickCommit() {
	select {
	case n.commitKick <- struct{}{}:
	default:
	}
}

// pushAll runs jobs, maxConcurrentPushes at a time, and records each
// receipt in its share record.
func (n *Node) pushAll(ctx context.Context, jobs []pushJob) {
	if len(jobs) == 0 {
		return
	}
	sort.Slice(jobs, func(i, j int) bool {
		a, b := jobs[i].custody, jobs[j].custody
		return a.Commitment < b.Commitment || a.Commitment == b.Commitment && a.Slot < b.Slot
	})
	sem := make(chan struct{}, maxConcurrentPushes)
	var wg sync.WaitGroup
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n.pushOne(ctx, j)
		}()
	}
	wg.Wait()
}

// pushOne pushes one copy to the holder the chain assigned its custody to,
// and records the receipt.
func (n *Node) pushOne(ctx context.Context, j pushJob) {
	id := custody.CustodyID{Commitment: j.custody.Commitment, Slot: j.custody.Slot}
	log := n.log.With("vault", j.vault, "custody", idString(id), "holder", j.custody.Holder)
	view := n.member.current()
	ai, ok := view.addrInfoOf(j.custody.Holder)
	if !ok {
		// The chain fails the custody of a holder that left the active set
		// and assigns a replacement; nothing to push to meanwhile.
		log.Debug("holder is not an active node; not pushing")
		return
	}
	i := int(j.custody.CopyIndex)
	if i >= j.ver.Copies {
		log.Error("the chain names a copy index this version does not have", "copy", i, "copies", j.ver.Copies)
		return
	}
	blob, err := n.st.GetMeta(ownCopyKey(j.vault, j.ver.Root, i))
	if err != nil {
		log.Error("reading a sealed copy", "copy", i, "err", err)
		return
	}
	roots, err := j.ver.copyRoots()
	if err != nil {
		log.Error("share record", "err", err)
		return
	}
	path, err := custody.CommitPath(roots, i)
	if err != nil {
		log.Error("commit path", "err", err)
		return
	}
	n.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	rcpt, err := n.svc.Push(ctx, ai.ID, p2p.Copy{Custody: id, CopyIndex: i, CommitPath: path, Owner: n.id.PubKey(), Blob: blob, CopyRoot: roots[i]})
	pushed := time.Now().UTC()
	rec := pushRecord{Holder: j.custody.Holder, CopyIndex: i, PushedAt: pushed}
	if err != nil {
		n.m.pushes.WithLabelValues(reasonOf(err)).Inc()
		if errors.Is(err, p2p.ErrBusy) || errors.Is(err, p2p.ErrUnknownCustody) {
			log.Info("holder busy or a block behind; will push again", "err", err)
		} else {
			log.Warn("push failed; will push again", "err", err)
		}
	} else {
		n.m.pushes.WithLabelValues("ok").Inc()
		rec.ReceiptTime = rcpt.Time.UTC()
		rec.Raw, _ = rcpt.MarshalBinary()
		log.Info("copy pushed", "copy", i)
	}
	n.ownMu.Lock()
	defer n.ownMu.Unlock()
	var cur shareRecord
	if found, err := getJSON(n.st, j.key, &cur); err != nil || !found || cur.Version.Root != j.ver.Root {
		return // a newer version replaced it meanwhile
	}
	if cur.Version.Pushes == nil {
		cur.Version.Pushes = map[uint64]pushRecord{}
	}
	if err != nil && cur.Version.Pushes[j.custody.Slot].Raw != nil {
		// Keep the receipt of an earlier push; note the attempt.
		old := cur.Version.Pushes[j.custody.Slot]
		old.PushedAt = pushed
		rec = old
	}
	cur.Version.Pushes[j.custody.Slot] = rec
	if err := putJSON(n.st, j.key, cur); err != nil {
		log.Error("storing the receipt", "err", err)
	}
}

// reasonOf names a push failure for metrics.
func reasonOf(err error) string {
	if errors.Is(err, p2p.ErrBusy) {
		return "busy" // a BUSY refusal, or a resource manager's limit
	}
	var re *p2p.RefusedError
	if errors.As(err, &re) {
		return "refused_" + re.Code.String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "error"
}
