package chaos

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/attest/testnet"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/freeport"
)

const (
	// upTimeout bounds a restart: the holder answering /healthz (store
	// opened, chain view loaded from the chain or the store), or the
	// validator committing a new block. A clean restart takes about a
	// second; a minute only expires when the process cannot come up.
	upTimeout = time.Minute
	// chainCallTimeout bounds one chain query or transaction of the harness.
	chainCallTimeout = 90 * time.Second
	// pollInterval is how often readiness is polled: the processes are
	// others, and give no event to wait on.
	pollInterval = 100 * time.Millisecond
	// blockInterval is the validator's timeout_commit: fast blocks, so
	// attestations and releases keep the holder's queues moving during the
	// run.
	blockInterval = 200 * time.Millisecond
)

// network is the testnet of a run and its two processes.
type network struct {
	layout  *testnet.Layout
	holder  *proc
	chain   *proc
	admin   string   // holder's admin host:port
	p2p     []string // holder's listen multiaddrs
	chainID string
	vaults  []string
	scans   []*logScanner
}

// layOut writes the testnet in dir: one validator, node0 the holder, nodes
// 1..owners the owners.
func layOut(dir string, owners int) (*network, error) {
	nodes := 1 + owners
	base, err := freePorts(2 * (1 + nodes))
	if err != nil {
		return nil, err
	}
	// r = owners: an owner's candidates are the holder and the other
	// owners, so the chain assigns every one of them a copy of every
	// version, the holder included.
	l, err := testnet.Init(testnet.Options{
		Dir: dir, Nodes: nodes, Validators: 1, BasePort: base, BlockInterval: blockInterval,
		Replication: uint32(owners),
	})
	if err != nil {
		return nil, fmt.Errorf("laying out the testnet: %w", err)
	}
	hcPath := filepath.Join(l.Nodes[0].Dir, config.FileName)
	hc, err := config.Load(hcPath)
	if err != nil {
		return nil, err
	}
	// The holder keeps up to three versions per slot (the receipted one,
	// one pushed since, and the superseded one the chain still counts
	// until a later commit deletes it): more than the default per-owner
	// quota at MaxVaults slots.
	hc.Store.QuotaBlobs = 4 * MaxVaults
	hc.Store.QuotaBytes = 4 * MaxVaults * maxBlobSize
	// The holder reads its custodies every block: an owner pushes a copy
	// right after its Commit's block, and a custody the holder's view has
	// costs no lookup (the holder looks up at most one unknown custody per
	// owner a second).
	hc.Chain.PollInterval = config.Duration{Duration: blockInterval}
	hc.Chain.BatchInterval = config.Duration{Duration: blockInterval}
	if err := config.Write(hcPath, hc); err != nil {
		return nil, err
	}
	return &network{layout: l, admin: hc.Admin.Listen, p2p: hc.P2P.Listen, chainID: l.ChainID}, nil
}

// procs creates (does not start) the holder and validator processes.
func (n *network) procs(ksb, dir string) {
	n.chain = newProc("chain0", ksb, filepath.Join(dir, "chain0.log"), "chain", "start", "--home", n.layout.Chains[0].Dir)
	n.holder = newProc("node0", ksb, filepath.Join(dir, "node0.log"), "node", "--home", n.layout.Nodes[0].Dir)
	n.scans = []*logScanner{{path: n.chain.log}, {path: n.holder.log}}
}

// startChain starts the validator and waits until it commits a block after
// the one it had (so it answers queries and takes transactions).
func (n *network) startChain(ctx context.Context) error {
	if err := n.chain.start(); err != nil {
		return err
	}
	c, err := attest.NewClient(n.layout.Chains[0].RPC)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	first := int64(-1)
	var last error
	for {
		h, err := c.Height(ctx)
		if err == nil {
			if first < 0 {
				first = h
			} else if h > first {
				// A query may answer from the version before the height
				// /status reports (the block is stored before the app commits
				// it): the chain is up once its state answers too.
				if _, err := c.Params(ctx); err == nil {
					return nil
				} else {
					last = err
				}
			}
		} else {
			last = err
		}
		select {
		case <-n.chain.exited():
			return fmt.Errorf("validator exited while starting (%v):\n%s", n.chain.exitError(), n.chain.logTail(4000))
		case <-ctx.Done():
			return fmt.Errorf("validator did not commit a block within %v (last error: %v):\n%s", upTimeout, last, n.chain.logTail(4000))
		case <-time.After(pollInterval):
		}
	}
}

// stopChain stops the validator with sig: SIGTERM must end it cleanly.
func (n *network) stopChain(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		return n.chain.kill()
	}
	return n.chain.terminate()
}

// createVaults has the authority create count vaults with every owner as a
// member, and returns their public key strings.
func (n *network) createVaults(ctx context.Context, owners []string, count int) error {
	m, err := identity.Read(identity.Source{File: filepath.Join(n.layout.Authority, "mnemonic")})
	if err != nil {
		return err
	}
	auth, err := identity.New(m)
	if err != nil {
		return err
	}
	c, err := attest.NewClient(n.layout.Chains[0].RPC)
	if err != nil {
		return err
	}
	churn := &attest.Churn{}
	for i := range count {
		v := fmt.Sprintf("chaos-vault-%02d", i)
		n.vaults = append(n.vaults, v)
		churn.CreateVaults = append(churn.CreateVaults, attest.VaultSpec{
			PubKey: v, Members: owners, Threshold: uint32((2*len(owners) + 2) / 3),
		})
	}
	ctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	if _, err := attest.NewSender(c, auth).Send(ctx, churn); err != nil {
		return fmt.Errorf("creating the vaults: %w", err)
	}
	return nil
}

// vaultIndex returns the chain index of every vault of the run: a Commit
// names vaults by index.
func (n *network) vaultIndex(ctx context.Context, c *attest.Client) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	vs, err := c.Vaults(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the vaults: %w", err)
	}
	out := map[string]uint64{}
	for _, v := range vs {
		out[v.PubKey] = v.Index
	}
	for _, v := range n.vaults {
		if out[v] == 0 {
			return nil, fmt.Errorf("vault %s is not on chain", v)
		}
	}
	return out, nil
}

// startHolder starts the holder and waits until it is healthy.
func (n *network) startHolder(ctx context.Context) error {
	if err := n.holder.start(); err != nil {
		return err
	}
	return n.waitHolder(ctx)
}

// waitHolder waits until the holder answers /healthz with 200 (store open,
// host listening, chain view loaded), at most upTimeout.
func (n *network) waitHolder(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.admin+"/healthz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-n.holder.exited():
			return fmt.Errorf("holder exited while starting (%v):\n%s", n.holder.exitError(), n.holder.logTail(4000))
		case <-ctx.Done():
			return fmt.Errorf("holder not healthy within %v (last: %s):\n%s", upTimeout, last, n.holder.logTail(4000))
		case <-time.After(pollInterval):
		}
	}
}

// panics scans the logs for panics logged since the last scan.
func (n *network) panics() []string {
	var out []string
	for _, s := range n.scans {
		found, err := s.scan()
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", s.path, err))
		}
		out = append(out, found...)
	}
	return out
}

// shutdown stops both processes, the holder first (SIGCONT first if frozen).
func (n *network) shutdown() {
	for _, p := range []*proc{n.holder, n.chain} {
		if p != nil {
			p.terminate()
		}
	}
}

// freePorts finds count consecutive ports on 127.0.0.1 free for TCP and UDP
// (the nodes listen on QUIC too) a moment ago.
func freePorts(count int) (int, error) {
	return freeport.Range(count, true)
}

// mkdirEmpty creates dir, which must not exist or be empty.
func mkdirEmpty(dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("chaos: %s is not empty", dir)
	}
	return os.MkdirAll(dir, 0o700)
}
