package node_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/node"
)

// TestSecondInstanceDoesNotRelease: a second process started with a live
// node's mnemonic and an empty store releases nothing while the first one
// answers at the address the chain lists for the node; once it is the only
// instance, and when the node restarts at its own address with an empty
// store (a dead disk), the attested copies it lacks are released so the
// chain repairs them. Issue 9, item 4: the second process released every
// attestation the real node held. (Seen failing on the old code: 3 releases
// queued by the second instance.)
func TestSecondInstanceDoesNotRelease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
	l.Close()
	r := newHolderRigWith(t, ctx, rigOptions{holderListen: listen})
	vers := r.commitShares(ctx, rigVaults, 1)
	var mine []custody.CustodyID
	for _, v := range vers {
		mine = append(mine, v.mine)
	}
	if _, err := attest.NewSender(r.client, r.holder).Attest(ctx, mine...); err != nil {
		t.Fatal(err)
	}

	// The real node runs at the chain's address (its store is not needed
	// here: it answers for the identity).
	real := r.newHolder(ctx, t.TempDir(), listen)

	// The second instance: another port, an empty store. Its first poll
	// reconciles.
	mark := r.logs.mark()
	second := r.open(ctx)
	if q := second.Queued("release"); q != 0 {
		t.Fatalf("the second instance queued %d releases while the real node runs", q)
	}
	if !logged(r.logs.since(mark), "another live instance") {
		t.Errorf("no log line about another live instance; logs: %q", r.logs.since(mark))
	}
	checkInstanceStatus(t, ctx, second, true)

	// The real node stops: the second is now the node, and its store is
	// empty.
	real.Close()
	if err := second.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if q := second.Queued("release"); q != len(mine) {
		t.Fatalf("alone, the instance queued %d releases, want %d", q, len(mine))
	}
	checkInstanceStatus(t, ctx, second, false)
	r.close()

	// A restart at the node's own address with an empty store: the probe
	// reaches this process itself.
	restarted := r.newHolder(ctx, t.TempDir(), listen)
	if err := restarted.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if q := restarted.Queued("release"); q != len(mine) {
		t.Fatalf("restarted with an empty store at its own address, the node queued %d releases, want %d", q, len(mine))
	}
	checkInstanceStatus(t, ctx, restarted, false)
}

func logged(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// checkInstanceStatus checks that n's status reports another instance, or
// none.
func checkInstanceStatus(t *testing.T, ctx context.Context, n *node.Node, other bool) {
	t.Helper()
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.OtherInstance != nil; got != other {
		t.Fatalf("status other_instance = %+v, want another instance: %v", st.OtherInstance, other)
	}
	if other && st.OtherInstance.Addr == "" {
		t.Errorf("status names no address of the other instance")
	}
}
