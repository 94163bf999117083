package main

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/attest/testnet"
)

func init() { commands = append(commands, testnetCmd) }

func testnetCmd() *cobra.Command {
	tn := &cobra.Command{Use: "testnet", Short: "Lay out a local network of ksb nodes and chain validators"}
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Write D/chain0..V-1 (validator homes), D/node0..N-1 (node homes with fresh mnemonics) and D/authority",
		Long: "Write validator homes sharing one genesis that registers the N nodes, node homes each with a fresh\n" +
			"24-word mnemonic (mode 0600) and a config.toml (ports, chain RPC, keyshares/ and data/), and the\n" +
			"authority's mnemonic. Ports are on 127.0.0.1 from --base-port upward: validator i uses P+2i (p2p) and\n" +
			"P+2i+1 (RPC); node j uses P+2V+2j (libp2p TCP and QUIC) and P+2V+2j+1 (admin).\n" +
			"With --keyshares DIR the files in DIR, sorted by name, are dealt to the nodes round robin (not copied;\n" +
			"D/assignments.json lists them) and each vault found is registered with those nodes as members,\n" +
			"threshold ceil(2m/3).",
		Args: cobra.NoArgs,
	}
	var o testnet.Options
	initCmd.Flags().StringVar(&o.Dir, "dir", "", "directory to create (must not exist or be empty)")
	initCmd.Flags().IntVar(&o.Nodes, "nodes", 4, "number of ksb nodes")
	initCmd.Flags().IntVar(&o.Validators, "validators", 1, "number of chain validators")
	initCmd.Flags().IntVar(&o.BasePort, "base-port", 26600, "first port on 127.0.0.1")
	initCmd.Flags().StringVar(&o.Keyshares, "keyshares", "", "directory of keyshare files to deal to the nodes")
	initCmd.Flags().StringVar(&o.ChainID, "chain-id", testnet.DefaultChainID, "chain ID")
	initCmd.Flags().Uint32Var(&o.Replication, "replication", attest.DefaultReplication, "replication target r of the coverage query")
	initCmd.Flags().DurationVar(&o.BlockInterval, "block-interval", 500*time.Millisecond, "validators' timeout_commit")
	initCmd.Flags().Int64Var(&o.Custody.EpochBlocks, "epoch-blocks", 0,
		fmt.Sprintf("blocks per custody epoch (0: %d; the proof window and drill interval default to half of it)", attest.DefaultEpochBlocks))
	initCmd.Flags().Uint64Var(&o.Custody.RoundEpochs, "round-epochs", 0, fmt.Sprintf("epochs per challenge round (0: %d)", attest.DefaultRoundEpochs))
	initCmd.Flags().Int64Var(&o.Custody.DrillInterval, "drill-interval", 0, "blocks between two restore drills of one owner (0: half an epoch)")
	initCmd.Flags().Int64Var(&o.Custody.RepairWindow, "repair-window", 0, fmt.Sprintf("blocks a repair source has before another is drawn (0: %d)", attest.DefaultRepairWindow))
	initCmd.Flags().StringVar(&o.Custody.Strategy, "strategy", "", "holder assignment: random (any active node) or vault (fellow vault members); empty: random")
	initCmd.MarkFlagRequired("dir")
	initCmd.RunE = func(cmd *cobra.Command, _ []string) error {
		l, err := testnet.Init(o)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "chain %s: %d validators, %d nodes, %d vaults\n", l.ChainID, len(l.Chains), len(l.Nodes), len(l.Vaults))
		for _, c := range l.Chains {
			fmt.Fprintf(w, "  %s  rpc %s   start: ksb chain start --home %s\n", filepath.Base(c.Dir), c.RPC, c.Dir)
		}
		for _, n := range l.Nodes {
			fmt.Fprintf(w, "  %s  %s  chain rpc %s  keyshares %d\n", filepath.Base(n.Dir), n.Address, n.RPC, len(n.Keyshares))
		}
		_, err = fmt.Fprintf(w, "  authority key in %s\n", filepath.Join(l.Authority, "mnemonic"))
		for _, p := range portsInUse(o) {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s; that process will not start until it is free (or run init again with another --base-port)\n", p)
		}
		return err
	}
	tn.AddCommand(initCmd)
	return tn
}

// portsInUse tries to bind every port the testnet's layout gives out on
// 127.0.0.1 (package testnet: validator i uses P+2i for p2p and P+2i+1 for
// RPC; node j uses P+2V+2j for libp2p TCP and QUIC and the next for admin)
// and names those another process holds: "127.0.0.1:26600 (chain0 p2p, TCP)
// is in use: listen tcp 127.0.0.1:26600: bind: address already in use".
func portsInUse(o testnet.Options) []string {
	type use struct {
		port    int
		network string
		what    string
	}
	var uses []use
	for i := range o.Validators {
		p := o.BasePort + 2*i
		uses = append(uses, use{p, "tcp", fmt.Sprintf("chain%d p2p, TCP", i)}, use{p + 1, "tcp", fmt.Sprintf("chain%d RPC, TCP", i)})
	}
	for j := range o.Nodes {
		p := o.BasePort + 2*o.Validators + 2*j
		uses = append(uses,
			use{p, "tcp", fmt.Sprintf("node%d libp2p, TCP", j)}, use{p, "udp", fmt.Sprintf("node%d libp2p, QUIC over UDP", j)},
			use{p + 1, "tcp", fmt.Sprintf("node%d admin, TCP", j)})
	}
	var out []string
	for _, u := range uses {
		addr := fmt.Sprintf("127.0.0.1:%d", u.port)
		var err error
		if u.network == "tcp" {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		} else {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		}
		if err != nil {
			out = append(out, fmt.Sprintf("%s (%s) is in use: %v", addr, u.what, err))
		}
	}
	return out
}
