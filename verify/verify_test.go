package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/verify"
)

func rpcclientOpts(h int64) rpcclient.ABCIQueryOptions {
	return rpcclient.ABCIQueryOptions{Height: h}
}

func flipB64(s string, at int) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return s
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 1
	return base64.StdEncoding.EncodeToString(b)
}

func flipHex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) == 0 {
		return s
	}
	b[len(b)-1] ^= 1
	return hex.EncodeToString(b)
}

// stateAnswer returns the response of an abci_query answer for /state.
func stateAnswer(method string, params, result map[string]any) map[string]any {
	if method != "abci_query" || params["path"] != attest.StateQueryPath {
		return nil
	}
	r, _ := result["response"].(map[string]any)
	return r
}

// firstOp returns the first proof op of an abci_query response.
func firstOp(r map[string]any) map[string]any {
	po, _ := r["proofOps"].(map[string]any)
	ops, _ := po["ops"].([]any)
	if len(ops) == 0 {
		return nil
	}
	op, _ := ops[0].(map[string]any)
	return op
}

// commitAnswer returns the signed header of a commit answer above the
// anchor (height 1), which the liar leaves alone so that the client starts.
func commitAnswer(method string, result map[string]any) map[string]any {
	if method != "commit" {
		return nil
	}
	sh, _ := result["signed_header"].(map[string]any)
	hd, _ := sh["header"].(map[string]any)
	if hd == nil || hd["height"] == "1" {
		return nil
	}
	return sh
}

// absenceProof fetches, from the honest node, the proof op (JSON) of a key
// that does not exist, at height h.
func absenceProof(t testing.TB, rpcURL, h string) map[string]any {
	height, _ := strconv.ParseInt(h, 10, 64)
	rpc, err := rpchttp.New(rpcURL)
	if err != nil {
		t.Error(err)
		return nil
	}
	res, err := rpc.ABCIQueryWithOptions(context.Background(), attest.StateQueryPath, []byte(attest.KeyCommitment(1<<40)),
		rpcclient.ABCIQueryOptions{Height: height, Prove: true})
	if err != nil || res.Response.Value != nil || res.Response.ProofOps == nil {
		t.Errorf("absence proof at %d: %v %+v", height, err, res)
		return nil
	}
	op := res.Response.ProofOps.Ops[0]
	return map[string]any{"type": op.Type, "key": base64.StdEncoding.EncodeToString(op.Key), "data": base64.StdEncoding.EncodeToString(op.Data)}
}

// neighboursAbsence forges a non-existence proof of key (present at height
// h) from the membership proofs of its two neighbours in the tree, read
// from the honest node: the left one from the absence proof of a key just
// below key, the right one from that of key+0x00. Nil if key has no
// neighbour on either side.
func neighboursAbsence(t testing.TB, rpcURL, h string, key []byte) []byte {
	height, _ := strconv.ParseInt(h, 10, 64)
	rpc, err := rpchttp.New(rpcURL)
	if err != nil {
		t.Error(err)
		return nil
	}
	nonexist := func(k []byte) *ics23.NonExistenceProof {
		res, err := rpc.ABCIQueryWithOptions(context.Background(), attest.StateQueryPath, k, rpcclient.ABCIQueryOptions{Height: height, Prove: true})
		if err != nil || res.Response.Value != nil || res.Response.ProofOps == nil {
			return nil
		}
		var p ics23.CommitmentProof
		if p.Unmarshal(res.Response.ProofOps.Ops[0].Data) != nil {
			return nil
		}
		return p.GetNonexist()
	}
	below := bytes.Clone(key)
	if below[len(below)-1] == 0 {
		return nil
	}
	below[len(below)-1]--
	below = append(below, 0xff, 0xff, 0xff)
	lo, hi := nonexist(below), nonexist(append(bytes.Clone(key), 0))
	if lo == nil || hi == nil || lo.Left == nil || hi.Right == nil || !bytes.Equal(hi.Left.Key, key) || !bytes.Equal(lo.Right.Key, key) {
		return nil
	}
	forged := &ics23.CommitmentProof{Proof: &ics23.CommitmentProof_Nonexist{Nonexist: &ics23.NonExistenceProof{Key: key, Left: lo.Left, Right: hi.Right}}}
	b, err := forged.Marshal()
	if err != nil {
		t.Error(err)
		return nil
	}
	return b
}

// TestLyingRPC runs `ksb coverage --verify`'s reads through a proxy in
// front of a real validator that lies in one way at a time — a value, a
// proof (a flipped byte, another key's, an absence proof for a present key,
// none), a header's app hash, a commit signature, a witness that lies or is
// on a fork of the same chain ID — and checks each is refused with its
// typed error, while the honest path (through the same proxy, lying in
// nothing) gives the application's own answer. Plain reads (attest.Client,
// what `ksb coverage` without --verify does) believe the lie.
func TestLyingRPC(t *testing.T) {
	net := newTestNet(t, 4)
	up := net.e.RPCURL()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	coverageVia := func(primary string, witnesses ...string) (*verify.State, *attest.Coverage, error) {
		c, err := verify.New(ctx, verify.Config{ChainID: testChainID, Primary: primary, Witnesses: witnesses, Anchor: net.anchor})
		if err != nil {
			return nil, nil, err
		}
		s, err := c.Latest(ctx)
		if err != nil {
			return nil, nil, err
		}
		cov, err := s.Coverage(ctx, "")
		return s, cov, err
	}

	t.Run("honest", func(t *testing.T) {
		p := newLyingRPC(t, up, nil)
		s, cov, err := coverageVia(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		want := appCoverage(t, up, s.Height, "")
		want.Height = s.Height
		if g, w := mustJSON(t, cov), mustJSON(t, want); g != w || len(cov.Vaults) != 1 || !cov.Vaults[0].Safe {
			t.Fatalf("verified coverage\n%s\nthe app's at %d\n%s", g, s.Height, w)
		}
		st := s.Stats()
		t.Logf("verified at height %d (app hash %X in header %d): %d keys, %d proof bytes", s.Height, s.AppHash, s.HeaderHeight, st.Keys, st.ProofBytes)
		// A genesis anchor gives the same answer.
		c, err := verify.New(ctx, verify.Config{ChainID: testChainID, Primary: up, Genesis: net.home + "/config/genesis.json"})
		if err != nil {
			t.Fatal(err)
		}
		if a := c.Anchor(); a.Height != 1 || string(a.Hash) != string(net.anchor.Hash) {
			t.Fatalf("genesis anchor %d %X, want 1 %X", a.Height, a.Hash, net.anchor.Hash)
		}
		s2, err := c.At(ctx, s.Height)
		if err != nil {
			t.Fatal(err)
		}
		cov2, err := s2.Coverage(ctx, testVault)
		if err != nil || mustJSON(t, cov2) != mustJSON(t, cov) {
			t.Fatalf("from the genesis anchor: %v\n%s", err, mustJSON(t, cov2))
		}
	})

	var (
		otherMu sync.Mutex
		other   map[string]any // the first proof op seen, for another key's proof
	)
	cases := []struct {
		name string
		mut  mutator
		want error
	}{
		{"value altered", func(m string, p, res map[string]any) bool {
			r := stateAnswer(m, p, res)
			if v, _ := r["value"].(string); v != "" {
				r["value"] = flipB64(v, -1)
				return true
			}
			return false
		}, verify.ErrValueMismatch},
		{"proof byte flipped", func(m string, p, res map[string]any) bool {
			if op := firstOp(stateAnswer(m, p, res)); op != nil {
				op["data"] = flipB64(op["data"].(string), -4)
				return true
			}
			return false
		}, verify.ErrProofInvalid},
		{"proof of another key", func(m string, p, res map[string]any) bool {
			op := firstOp(stateAnswer(m, p, res))
			if op == nil {
				return false
			}
			otherMu.Lock()
			defer otherMu.Unlock()
			if other == nil || other["key"] == op["key"] {
				other = map[string]any{"key": op["key"], "data": op["data"]}
				return false
			}
			op["data"] = other["data"] // the op still names the key asked for
			return true
		}, verify.ErrProofInvalid},
		{"membership replaced with absence", func(m string, p, res map[string]any) bool {
			r := stateAnswer(m, p, res)
			op := firstOp(r)
			if op == nil || r["value"] == nil || r["value"] == "" {
				return false
			}
			abs := absenceProof(t, up, r["height"].(string))
			if abs == nil {
				return false
			}
			delete(r, "value")
			op["data"] = abs["data"]
			return true
		}, verify.ErrProofInvalid},
		{"value kept, proof of absence", func(m string, p, res map[string]any) bool {
			r := stateAnswer(m, p, res)
			op := firstOp(r)
			if op == nil || r["value"] == nil || r["value"] == "" {
				return false
			}
			abs := absenceProof(t, up, r["height"].(string))
			if abs == nil {
				return false
			}
			op["data"] = abs["data"]
			return true
		}, verify.ErrValueMismatch},
		{"extra proof op", func(m string, p, res map[string]any) bool {
			r := stateAnswer(m, p, res)
			op := firstOp(r)
			if op == nil {
				return false
			}
			po := r["proofOps"].(map[string]any)
			po["ops"] = append(po["ops"].([]any), map[string]any{"type": op["type"], "key": op["key"], "data": op["data"]})
			return true
		}, verify.ErrMissingProof},
		{"op of another type", func(m string, p, res map[string]any) bool {
			if op := firstOp(stateAnswer(m, p, res)); op != nil {
				op["type"] = "ics23:simple"
				return true
			}
			return false
		}, verify.ErrProofInvalid},
		{"absence forged from the key's two neighbours", func(m string, p, res map[string]any) bool {
			// The strongest absence lie: a non-existence proof of the key
			// asked for, from real membership proofs of the keys just
			// below and just above it. Only ICS23's adjacency check (the
			// neighbours are not adjacent: the key is between them)
			// refuses it.
			r := stateAnswer(m, p, res)
			op := firstOp(r)
			if op == nil || r["value"] == nil || r["value"] == "" {
				return false
			}
			key, _ := base64.StdEncoding.DecodeString(op["key"].(string))
			data := neighboursAbsence(t, up, r["height"].(string), key)
			if data == nil {
				return false
			}
			delete(r, "value")
			op["data"] = base64.StdEncoding.EncodeToString(data)
			return true
		}, verify.ErrProofInvalid},
		{"proof left out", func(m string, p, res map[string]any) bool {
			if r := stateAnswer(m, p, res); r != nil {
				delete(r, "proofOps")
				return true
			}
			return false
		}, verify.ErrMissingProof},
		{"header app hash altered", func(m string, p, res map[string]any) bool {
			sh := commitAnswer(m, res)
			if sh == nil {
				return false
			}
			hd := sh["header"].(map[string]any)
			hd["app_hash"] = flipHex(hd["app_hash"].(string))
			return true
		}, verify.ErrHeaderVerification},
		{"commit signature altered", func(m string, p, res map[string]any) bool {
			sh := commitAnswer(m, res)
			if sh == nil {
				return false
			}
			sigs := sh["commit"].(map[string]any)["signatures"].([]any)
			s := sigs[0].(map[string]any)
			s["signature"] = flipB64(s["signature"].(string), 0)
			return true
		}, verify.ErrHeaderVerification},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newLyingRPC(t, up, tc.mut)
			_, cov, err := coverageVia(p.URL)
			if !errors.Is(err, tc.want) {
				t.Fatalf("coverage through a liar: %v (%d answers altered), want %v; coverage %s", err, p.lies(), tc.want, mustJSON(t, cov))
			}
			if p.lies() == 0 {
				t.Fatal("the liar changed nothing")
			}
			t.Logf("refused: %v", err)
		})
	}

	t.Run("lying witness", func(t *testing.T) {
		i := slices.IndexFunc(cases, func(c struct {
			name string
			mut  mutator
			want error
		}) bool {
			return c.name == "header app hash altered"
		})
		w := newLyingRPC(t, up, cases[i].mut) // alters app hashes, only to the witness
		_, _, err := coverageVia(up, w.URL)
		if !errors.Is(err, verify.ErrWitnessConflict) || w.lies() == 0 {
			t.Fatalf("a witness lying about the app hash: %v (%d lies), want ErrWitnessConflict", err, w.lies())
		}
		t.Logf("refused: %v", err)
	})

	t.Run("forked witness", func(t *testing.T) {
		// Another chain with the same chain ID and genesis state, signed by
		// another validator: its headers differ from height 1 on.
		fork, _ := startChain(t, net.genesis)
		_, _, err := coverageVia(up, fork.RPCURL())
		if !errors.Is(err, verify.ErrWitnessConflict) {
			t.Fatalf("a witness on a fork: %v, want ErrWitnessConflict", err)
		}
		t.Logf("refused: %v", err)
		// The fork as primary, the honest node as witness: the anchor is
		// not the fork's header 1.
		_, _, err = coverageVia(fork.RPCURL(), up)
		if !errors.Is(err, verify.ErrHeaderVerification) {
			t.Fatalf("a primary on a fork: %v, want ErrHeaderVerification", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("plain reads believe the liar", func(t *testing.T) {
		// What `ksb coverage` without --verify does: the /coverage JSON.
		p := newLyingRPC(t, up, func(m string, params, res map[string]any) bool {
			r, _ := res["response"].(map[string]any)
			if m != "abci_query" || params["path"] != "/coverage" || r == nil {
				return false
			}
			b, _ := base64.StdEncoding.DecodeString(r["value"].(string))
			var cov attest.Coverage
			if json.Unmarshal(b, &cov) != nil || len(cov.Vaults) == 0 {
				return false
			}
			cov.Vaults[0].Covered, cov.Vaults[0].Safe = 0, false
			b, _ = json.Marshal(cov)
			r["value"] = base64.StdEncoding.EncodeToString(b)
			return true
		})
		c, err := attest.NewClient(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		cov, err := c.Coverage(ctx, "")
		if err != nil || cov.Vaults[0].Safe {
			t.Fatalf("plain coverage through the liar: %v %+v", err, cov)
		}
		t.Logf("plain coverage through the liar says vault %s is not safe (covered %d); it is", cov.Vaults[0].PubKey, cov.Vaults[0].Covered)
	})
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var _ = fmt.Sprint
