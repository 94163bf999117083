package attest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest/attestpb"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
)

// Node is an active node, as the /nodes query returns it.
type Node struct {
	Address string `json:"address"`
	PubKey  string `json:"pubkey"`
	PeerID  string `json:"peer_id"`
	// Account is the node's account number: the signer of its
	// transactions.
	Account    uint64   `json:"account"`
	Multiaddrs []string `json:"multiaddrs"`
	// Height is the block that added the node (0: genesis).
	Height int64 `json:"height"`
	// FailedHeight is the block the node last failed as a holder (missed
	// every challenge of two epochs in a row), 0 if never.
	FailedHeight int64 `json:"failed_height,omitempty"`
}

// Vault is a vault, as the /vaults query returns it.
type Vault struct {
	PubKey string `json:"pubkey"`
	// Index is the vault's chain index: Commit names vaults by it.
	Index     uint64   `json:"index"`
	Members   []string `json:"members"`
	Threshold uint32   `json:"threshold"`
	Height    int64    `json:"height"`
	Retired   bool     `json:"retired"`
	// RetiredHeight is the block that retired the vault, if Retired. A
	// retired vault is deleted Params.RetentionBlocks later.
	RetiredHeight int64 `json:"retired_height,omitempty"`
}

// Account is the answer of /sequence/{address}: the account number the
// address signs as, and its next sequence.
type Account struct {
	Address  string `json:"address"`
	Account  uint64 `json:"account"`
	Sequence uint64 `json:"sequence"`
}

// Custody is one custody: who holds which copy of a commitment, and how
// well. Statuses are "pending", "fresh", "stale", "failed".
type Custody struct {
	// ID is the custody id: Commitment << 8 | Slot (PackCustody).
	ID         uint64 `json:"id"`
	Commitment uint64 `json:"commitment"`
	Slot       uint64 `json:"slot"`
	// CopyIndex is the copy the holder holds (custody.CommitPath names its
	// path).
	CopyIndex      uint32 `json:"copy"`
	Holder         string `json:"holder"`
	Status         string `json:"status"`
	Attested       bool   `json:"attested"`
	AssignedHeight int64  `json:"assigned_height"`
	AttestHeight   int64  `json:"attest_height,omitempty"`
	// AttestDeadline: unattested after this block, the custody fails.
	AttestDeadline  int64  `json:"attest_deadline"`
	LastProofHeight int64  `json:"last_proof_height"`
	FailedHeight    int64  `json:"failed_height,omitempty"`
	FailReason      string `json:"fail_reason,omitempty"`
	// Source is, for a repair's custody, who sends the copy (a holder, or
	// the owner); SourceDeadline the block after which another is drawn.
	Source          string `json:"source,omitempty"`
	SourceDeadline  int64  `json:"source_deadline,omitempty"`
	LastDrillHeight int64  `json:"last_drill_height,omitempty"`
	LastDrillOK     bool   `json:"last_drill_ok,omitempty"`
}

// CommitmentInfo is what a holder, a source or a replacement checks a copy
// against: the commitment of a custody.
type CommitmentInfo struct {
	Owner string `json:"owner"`
	// Vault is the vault's key ("" once the vault is deleted) and
	// VaultIndex its chain index.
	Vault      string `json:"vault"`
	VaultIndex uint64 `json:"vault_index"`
	// Size is every copy's size in bytes; Root the commitment root (hex);
	// Copies the number of copies r it covers.
	Size         uint64 `json:"size"`
	Root         string `json:"root"`
	Copies       uint32 `json:"copies"`
	CommitHeight int64  `json:"commit_height"`
	// Live: neither superseded nor retired. A commitment that is not live
	// is deleted RetentionBlocks after SupersededHeight or RetiredHeight;
	// holders drop a copy once its custody is gone.
	Live             bool  `json:"live"`
	SupersededHeight int64 `json:"superseded_height,omitempty"`
	RetiredHeight    int64 `json:"retired_height,omitempty"`
}

// Commitment is one commitment with its custodies, as
// /commitments/owner/{address} and /commitment/{id} return it.
type Commitment struct {
	ID uint64 `json:"id"`
	CommitmentInfo
	LastDrillHeight int64 `json:"last_drill_height,omitempty"`
	LastDrillOK     bool  `json:"last_drill_ok,omitempty"`
	// Custodies are by slot: the holders assigned at commit time (slots
	// 0..r-1, holding copy = slot) and repairs.
	Custodies []Custody `json:"custodies"`
}

// HeldCustody is a custody with its commitment: what /custody/{c}/{s} and
// /custodies/holder/{address} return.
type HeldCustody struct {
	Custody
	CommitmentInfo
}

// Challenge is an open challenge: the holder proves segment Segment of its
// copy of custody ID in a Prove for Epoch, in a block up to Deadline.
type Challenge struct {
	Epoch      uint64 `json:"epoch"`
	ID         uint64 `json:"id"`
	Commitment uint64 `json:"commitment"`
	Slot       uint64 `json:"slot"`
	Segment    uint64 `json:"segment"`
	Deadline   int64  `json:"deadline"`
}

// Repair is a replacement that waits for its copy: Source sends its copy
// (index CopyIndex) of custody ID's commitment to Replacement, which checks
// it against the commitment, stores it and attests custody ID.
type Repair struct {
	ID          uint64 `json:"id"`
	Commitment  uint64 `json:"commitment"`
	Slot        uint64 `json:"slot"`
	Replacement string `json:"replacement"`
	Source      string `json:"source"`
	CopyIndex   uint32 `json:"copy"`
	// SourceDeadline: after this block another source is drawn.
	SourceDeadline int64 `json:"source_deadline"`
	// AttestDeadline: unattested after this block, the replacement fails
	// (and is replaced).
	AttestDeadline int64 `json:"attest_deadline"`
	CommitmentInfo
}

// Epoch is the answer of /epoch: the current epoch and its proof window.
type Epoch struct {
	Epoch       uint64 `json:"epoch"`
	StartHeight int64  `json:"start_height"`
	// ProofDeadline is the last block a Prove for this epoch is accepted in.
	ProofDeadline int64 `json:"proof_deadline"`
	// NextStart is the first block of the next epoch.
	NextStart  int64  `json:"next_start"`
	Round      uint64 `json:"round"`
	Position   uint64 `json:"position"`
	Challenges uint32 `json:"challenges"`
	// Seed is custody.EpochSeed of the epoch's first block, hex.
	Seed string `json:"seed"`
}

type nodesAnswer struct {
	Nodes []Node `json:"nodes"`
}

type vaultsAnswer struct {
	Vaults []Vault `json:"vaults"`
}

type commitmentsAnswer struct {
	Commitments []Commitment `json:"commitments"`
}

type custodiesAnswer struct {
	Custodies []HeldCustody `json:"custodies"`
}

type challengesAnswer struct {
	Challenges []Challenge `json:"challenges"`
}

type repairsAnswer struct {
	Repairs []Repair `json:"repairs"`
}

// Query answers the JSON queries (see the package documentation for the
// paths) and the raw state path StateQueryPath, at req.Height (0: the last
// committed block; a recent height: as committed then, while it is kept).
// With req.Prove, ProofOps holds one StateProofOpType proof per state key
// the answer read, in first-read order, against the app hash of the
// answer's Height (the header of Height+1 carries it). An unknown path or a
// bad argument is a non-zero code with a log, never an error.
func (a *App) Query(_ context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	fail := func(err error, height int64) (*abci.QueryResponse, error) {
		return &abci.QueryResponse{Code: errCode(err), Log: err.Error(), Codespace: Codespace, Height: height}, nil
	}
	snap, err := a.queryVersion(req.Height)
	if err != nil {
		return fail(err, req.Height)
	}
	height := snap.Version()
	if isStatePath(req.Path) {
		res, err := queryState(snap, req)
		if err != nil {
			return fail(err, height)
		}
		return res, nil
	}
	var s kv = snapKV{snap}
	var reads *readSet
	if req.Prove {
		reads = newReadSet(s)
		s = reads
	}
	// The parameters are read from the queried state, through s, so that
	// an answer built on them is proven with them.
	var (
		v  any
		p  *Params
		pv Params
	)
	ok, err := getJSON(s, keyParams, &pv)
	if ok {
		p = &pv
	}
	if err == nil {
		v, err = query(s, p, req.Path)
	}
	if err == nil && v == nil {
		err = fmt.Errorf("%q: %w", req.Path, ErrBadQuery)
	}
	if err != nil {
		return fail(err, height)
	}
	if c, ok := v.(*Coverage); ok {
		c.Height = height
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fail(fmt.Errorf("encoding the answer: %w: %w", ErrInternal, err), height)
	}
	res := &abci.QueryResponse{Code: CodeOK, Key: []byte(req.Path), Value: b, Height: height}
	if reads != nil {
		if res.ProofOps, err = reads.proofOps(snap); err != nil {
			return fail(err, height)
		}
	}
	return res, nil
}

func query(s kv, p *Params, path string) (any, error) {
	if p == nil {
		return nil, fmt.Errorf("chain not initialised: %w", ErrNotFound)
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	addrArg := func(i int) (string, error) { return parts[i], validAddress(parts[i], p.HRP) }
	switch {
	case path == "/params":
		return p, nil
	case path == "/nodes":
		nodes, err := activeNodes(s)
		return &nodesAnswer{Nodes: nodes}, err
	case path == "/vaults":
		vaults, err := allVaults(s)
		return &vaultsAnswer{Vaults: vaults}, err
	case path == "/epoch":
		return epochInfo(s, p)
	case path == "/coverage":
		return coverage(s, p, "")
	case len(parts) == 2 && parts[0] == "coverage":
		if err := validVaultKey(parts[1]); err != nil {
			return nil, err
		}
		return coverage(s, p, parts[1])
	case len(parts) == 2 && parts[0] == "sequence":
		addr, err := addrArg(1)
		if err != nil {
			return nil, err
		}
		return accountAnswer(s, addr)
	case len(parts) == 3 && parts[0] == "commitments" && parts[1] == "owner":
		addr, err := addrArg(2)
		if err != nil {
			return nil, err
		}
		cs, err := commitmentsOf(s, addr)
		return &commitmentsAnswer{Commitments: cs}, err
	case len(parts) == 2 && parts[0] == "commitment":
		id, err := numArg(parts[1])
		if err != nil {
			return nil, err
		}
		return commitmentAnswer(s, id)
	case len(parts) == 3 && parts[0] == "custody":
		c, err1 := numArg(parts[1])
		slot, err2 := numArg(parts[2])
		if err1 != nil || err2 != nil || slot >= MaxSlots {
			return nil, fmt.Errorf("custody %s/%s: %w", parts[1], parts[2], ErrInvalid)
		}
		return heldCustody(s, CustodyID{Commitment: c, Slot: slot})
	case len(parts) == 3 && parts[0] == "custodies" && parts[1] == "holder":
		addr, err := addrArg(2)
		if err != nil {
			return nil, err
		}
		cs, err := custodiesOf(s, addr)
		return &custodiesAnswer{Custodies: cs}, err
	case len(parts) == 3 && parts[0] == "challenges" && parts[1] == "holder":
		addr, err := addrArg(2)
		if err != nil {
			return nil, err
		}
		cs, err := challengesOf(s, addr)
		return &challengesAnswer{Challenges: cs}, err
	case len(parts) == 3 && parts[0] == "repairs" && (parts[1] == "source" || parts[1] == "replacement"):
		addr, err := addrArg(2)
		if err != nil {
			return nil, err
		}
		rs, err := repairsOf(s, addr, parts[1] == "source")
		return &repairsAnswer{Repairs: rs}, err
	}
	return nil, nil
}

func numArg(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("%q is not a decimal number: %w", s, ErrInvalid)
	}
	return n, nil
}

func activeNodes(s kv) ([]Node, error) {
	nodes := []Node{}
	err := s.scan(prefNode, func(key string, val []byte) error {
		r := &attestpb.NodeRecord{}
		if err := decodeRec(key, val, r); err != nil {
			return err
		}
		nodes = append(nodes, nodeAnswer(strings.TrimPrefix(key, prefNode), r))
		return nil
	})
	return nodes, err
}

func nodeAnswer(addr string, r *attestpb.NodeRecord) Node {
	n := Node{
		Address: addr, PubKey: hex.EncodeToString(r.Pubkey), Account: r.Account,
		Multiaddrs: r.Multiaddrs, Height: r.Height, FailedHeight: r.FailedHeight,
	}
	if n.Multiaddrs == nil {
		n.Multiaddrs = []string{}
	}
	if id, err := identity.PeerIDFromPubKey(r.Pubkey); err == nil {
		n.PeerID = id.String()
	}
	return n
}

func allVaults(s kv) ([]Vault, error) {
	vaults := []Vault{}
	err := s.scan(prefVault, func(key string, val []byte) error {
		r := &attestpb.VaultRecord{}
		if err := decodeRec(key, val, r); err != nil {
			return err
		}
		vaults = append(vaults, Vault{
			PubKey: strings.TrimPrefix(key, prefVault), Index: r.Index, Members: r.Members, Threshold: r.Threshold,
			Height: r.Height, Retired: r.RetiredHeight != 0, RetiredHeight: r.RetiredHeight,
		})
		return nil
	})
	return vaults, err
}

func accountAnswer(s kv, addr string) (*Account, error) {
	n, ok, err := accountOf(s, addr)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s has no account: %w", addr, ErrNotFound)
	}
	a, err := getAccount(s, n)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("account %d of %s: %w", n, addr, ErrInternal)
	}
	return &Account{Address: addr, Account: n, Sequence: a.Sequence}, nil
}

func epochInfo(s kv, p *Params) (*Epoch, error) {
	ep := &attestpb.EpochRecord{}
	ok, err := getRec(s, keyEpoch, ep)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no epoch has started: %w", ErrNotFound)
	}
	return &Epoch{
		Epoch: ep.Epoch, StartHeight: ep.StartHeight, ProofDeadline: ep.ProofDeadline,
		NextStart: p.EpochStart(ep.Epoch + 1), Round: ep.Epoch / p.RoundEpochs, Position: ep.Epoch % p.RoundEpochs,
		Challenges: ep.Challenges, Seed: hex.EncodeToString(ep.Seed),
	}, nil
}

func custodyAnswer(id CustodyID, r *attestpb.CustodyRecord) Custody {
	return Custody{
		ID: PackCustody(id), Commitment: id.Commitment, Slot: id.Slot, CopyIndex: r.Copy, Holder: r.Holder,
		Status: custody.Status(r.Status).String(), Attested: r.AttestHeight != 0,
		AssignedHeight: r.AssignedHeight, AttestHeight: r.AttestHeight, AttestDeadline: r.AttestDeadline,
		LastProofHeight: r.LastProofHeight, FailedHeight: r.FailedHeight, FailReason: failReasonName(r.FailReason),
		Source: r.Source, SourceDeadline: r.SourceDeadline,
		LastDrillHeight: r.LastDrillHeight, LastDrillOK: r.LastDrillOk,
	}
}

func commitmentInfo(s kv, c *attestpb.CommitmentRecord) (CommitmentInfo, error) {
	key, _, err := vaultByIndex(s, c.Vault)
	return CommitmentInfo{
		Owner: c.Owner, Vault: key, VaultIndex: c.Vault, Size: c.Size, Root: hexRoot(c.Root), Copies: c.Copies,
		CommitHeight: c.Height, Live: live(c), SupersededHeight: c.SupersededHeight, RetiredHeight: c.RetiredHeight,
	}, err
}

func commitmentAnswer(s kv, id uint64) (*Commitment, error) {
	c, err := getCommitment(s, id)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("commitment %d: %w", id, ErrNotFound)
	}
	info, err := commitmentInfo(s, c)
	if err != nil {
		return nil, err
	}
	out := &Commitment{ID: id, CommitmentInfo: info, LastDrillHeight: c.LastDrillHeight, LastDrillOK: c.LastDrillOk, Custodies: []Custody{}}
	recs, err := slotRecords(s, id, c)
	if err != nil {
		return nil, err
	}
	for slot, r := range recs {
		if r != nil {
			out.Custodies = append(out.Custodies, custodyAnswer(CustodyID{Commitment: id, Slot: uint64(slot)}, r))
		}
	}
	return out, nil
}

func commitmentsOf(s kv, owner string) ([]Commitment, error) {
	prefix := prefOwned + owner + "/"
	var ids []uint64
	err := s.scan(prefix, func(key string, _ []byte) error {
		id, ok := parseHex(strings.TrimPrefix(key, prefix), 16)
		if !ok {
			return fmt.Errorf("state key %q: %w", key, ErrInternal)
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := []Commitment{}
	for _, id := range ids {
		c, err := commitmentAnswer(s, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, nil
}

func heldCustody(s kv, id CustodyID) (*HeldCustody, error) {
	r, err := getCustody(s, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("custody %d/%d: %w", id.Commitment, id.Slot, ErrNotFound)
	}
	c, err := getCommitment(s, id.Commitment)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("custody %d/%d without its commitment: %w", id.Commitment, id.Slot, ErrInternal)
	}
	info, err := commitmentInfo(s, c)
	if err != nil {
		return nil, err
	}
	return &HeldCustody{Custody: custodyAnswer(id, r), CommitmentInfo: info}, nil
}

func custodiesOf(s kv, holder string) ([]HeldCustody, error) {
	ids, err := scanIDs(s, prefHeld+holder+"/")
	if err != nil {
		return nil, err
	}
	out := []HeldCustody{}
	for _, id := range ids {
		hc, err := heldCustody(s, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *hc)
	}
	return out, nil
}

func challengesOf(s kv, holder string) ([]Challenge, error) {
	out := []Challenge{}
	ep := &attestpb.EpochRecord{}
	ok, err := getRec(s, keyEpoch, ep)
	if err != nil || !ok {
		return out, err
	}
	prefix := prefChallenge + hex16(ep.Epoch) + "/" + holder + "/"
	err = s.scan(prefix, func(key string, val []byte) error {
		id, ok := custodyFromSuffix(strings.TrimPrefix(key, prefix))
		if !ok {
			return fmt.Errorf("state key %q: %w", key, ErrInternal)
		}
		ch := &attestpb.ChallengeRecord{}
		if err := decodeRec(key, val, ch); err != nil {
			return err
		}
		out = append(out, Challenge{
			Epoch: ep.Epoch, ID: PackCustody(id), Commitment: id.Commitment, Slot: id.Slot,
			Segment: ch.Segment, Deadline: ch.Deadline,
		})
		return nil
	})
	return out, err
}

// repairsOf lists the repairs addr must send (bySource) or waits for: the
// pending, unattested replacements of live commitments.
func repairsOf(s kv, addr string, bySource bool) ([]Repair, error) {
	prefix := prefHeld + addr + "/"
	if bySource {
		prefix = prefSource + addr + "/"
	}
	ids, err := scanIDs(s, prefix)
	if err != nil {
		return nil, err
	}
	out := []Repair{}
	for _, id := range ids {
		r, err := getCustody(s, id)
		if err != nil {
			return nil, err
		}
		if r == nil || r.Source == "" || r.AttestHeight != 0 || r.Status == statusFailed {
			continue
		}
		c, err := getCommitment(s, id.Commitment)
		if err != nil {
			return nil, err
		}
		if c == nil || !live(c) {
			continue
		}
		info, err := commitmentInfo(s, c)
		if err != nil {
			return nil, err
		}
		out = append(out, Repair{
			ID: PackCustody(id), Commitment: id.Commitment, Slot: id.Slot, Replacement: r.Holder, Source: r.Source,
			CopyIndex: r.Copy, SourceDeadline: r.SourceDeadline, AttestDeadline: r.AttestDeadline, CommitmentInfo: info,
		})
	}
	return out, nil
}
