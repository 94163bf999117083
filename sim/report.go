package sim

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Figure is one measured quantity plotted and fitted against N.
type Figure struct {
	// Name is the PNG's base name; Title and Unit label the plot and table.
	Name, Title, Unit string
	// Value extracts the figure from a result; false when the run did not
	// get to measure it.
	Value func(*Result) (float64, bool)
}

const mib = 1 << 20

// Figures are the quantities every report tables, plots and fits.
var Figures = []Figure{
	{"coverage", "Time to full coverage (keygen → r attested holders for every share)", "s", func(r *Result) (float64, bool) {
		return r.Coverage.Seconds(), r.Coverage > 0
	}},
	{"proof-epoch", "Time to prove every custody in a proof epoch (epoch start → last proof committed)", "s", func(r *Result) (float64, bool) {
		return proofTime(r).Seconds(), proofTime(r) > 0
	}},
	{"proofs-per-epoch", "Segment proofs committed in the proof epoch (every custody challenged)", "proofs", func(r *Result) (float64, bool) {
		if r.Proof == nil || r.Proof.Proofs == 0 {
			return 0, false
		}
		return float64(r.Proof.Proofs), true
	}},
	{"safe", "Time to every vault safe after removing a tenth of the nodes", "s", func(r *Result) (float64, bool) {
		return r.Safe.Seconds(), r.Safe > 0
	}},
	{"restore", "Time to restore custody after removing a tenth of the nodes", "s", func(r *Result) (float64, bool) {
		return r.Restore.Seconds(), r.Restore > 0
	}},
	{"chain-bytes", "Chain bytes (all transactions, keygen to end)", "bytes", func(r *Result) (float64, bool) {
		if r.Chain == nil {
			return 0, false
		}
		return float64(r.Chain.TxBytes), true
	}},
	{"block-time", "Mean block time (keygen to end)", "ms", func(r *Result) (float64, bool) {
		if r.Chain == nil || r.Chain.BlockTimeMean == 0 {
			return 0, false
		}
		return float64(r.Chain.BlockTimeMean) / float64(time.Millisecond), true
	}},
	{"push-bytes-per-node", "Push bytes sent per node (/ksb/push, mean)", "bytes", func(r *Result) (float64, bool) {
		if r.Traffic == nil {
			return 0, false
		}
		b, _ := r.Traffic.perNode(r.Nodes, pushProtocol)
		return b, true
	}},
	{"gossip-bytes-per-node", "Gossip bytes sent per node (/meshsub, mean)", "bytes", func(r *Result) (float64, bool) {
		if r.Traffic == nil {
			return 0, false
		}
		b, _ := r.Traffic.perNode(r.Nodes, gossipProtocol)
		return b, true
	}},
	{"messages-per-node", "libp2p stream messages sent per node (mean)", "messages", func(r *Result) (float64, bool) {
		if r.Traffic == nil {
			return 0, false
		}
		return r.Traffic.MeanSentMsgs, true
	}},
	{"bytes-per-node", "libp2p stream bytes sent per node (mean)", "bytes", func(r *Result) (float64, bool) {
		if r.Traffic == nil {
			return 0, false
		}
		return r.Traffic.MeanSentBytes, true
	}},
	{"peak-memory", "Peak resident memory of the process (VmHWM)", "MiB", func(r *Result) (float64, bool) {
		return float64(r.Resources.PeakRSS) / mib, r.Resources.PeakRSS > 0
	}},
	{"cpu", "CPU seconds of the process (user + system)", "s", func(r *Result) (float64, bool) {
		return r.Resources.CPU(), r.Resources.CPU() > 0
	}},
}

// Fits fits every figure over the results that measured it.
func Fits(results []*Result) map[string]Fit {
	out := map[string]Fit{}
	for _, f := range Figures {
		x, y := points(results, f)
		out[f.Name] = FitLinear(x, y)
	}
	return out
}

func points(results []*Result, f Figure) (x, y []float64) {
	for _, r := range results {
		if v, ok := f.Value(r); ok && r.Error == "" {
			x = append(x, float64(r.Nodes))
			y = append(y, v)
		}
	}
	return x, y
}

// WriteTable writes the results as markdown: one row per N, the chain
// bytes by transaction type, and the fit of every figure.
func WriteTable(w io.Writer, results []*Result) error {
	var b strings.Builder
	b.WriteString("| N | keygens (members) | shares | coverage | proof epoch: challenges / proofs / Prove B / time | removed | safe | restore | unrepaired | chain txs | chain bytes (keygen → end: one churn) | blocks | block time mean / p95 / max | window | KiB sent / node: push / gossip / other / chain txs | KiB sent / node (max) | msgs sent / node (max) | peak RSS | per node | goroutines | fds | CPU | load | wall | status |\n")
	b.WriteString("| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %d | %d (%s) | %d | %s | %s | %d | %s | %s | %d |", r.Nodes, len(r.VaultSizes), joinInts(r.VaultSizes), r.Shares,
			phaseSecs(r, "backup", r.Coverage), proofCell(r), r.Removed, safeCell(r), phaseSecs(r, "churn", r.Restore), r.Unrepaired)
		if c := r.Chain; c != nil {
			fmt.Fprintf(&b, " %d | %s | %d | %d / %d / %d ms |", c.Txs, thousands(c.TxBytes), c.Blocks,
				c.BlockTimeMean.Milliseconds(), c.BlockTimeP95.Milliseconds(), c.BlockTimeMax.Milliseconds())
		} else {
			b.WriteString(" – | – | – | – |")
		}
		fmt.Fprintf(&b, " %s |", secs(Window(r)))
		if t := r.Traffic; t != nil {
			push, _ := t.perNode(r.Nodes, pushProtocol)
			gossip, _ := t.perNode(r.Nodes, gossipProtocol)
			chain := "–"
			if r.Chain != nil {
				chain = fmt.Sprintf("%.1f", float64(r.Chain.TxBytes)/float64(r.Nodes)/1024)
			}
			fmt.Fprintf(&b, " %.0f / %.0f / %.0f / %s |", push/1024, gossip/1024, (t.MeanSentBytes-push-gossip)/1024, chain)
			fmt.Fprintf(&b, " %s (%s) | %s (%s) |", thousands(int64(t.MeanSentBytes)/1024), thousands(t.MaxSentBytes/1024),
				thousands(int64(t.MeanSentMsgs)), thousands(t.MaxSentMsgs))
		} else {
			b.WriteString(" – | – | – |")
		}
		rs := r.Resources
		status := "ok"
		if r.Error != "" {
			status = "**stopped**: " + strings.ReplaceAll(r.Error, "|", "/")
		}
		fmt.Fprintf(&b, " %s MiB | %.1f MiB | %s | %s | %.0f s | %.1f | %s | %s |\n", thousands(int64(rs.PeakRSS/mib)),
			float64(r.MemoryPerNode())/mib, thousands(int64(rs.PeakGoroutines)), thousands(int64(rs.PeakFDs)), rs.CPU(), rs.LoadAvg, secs(r.Wall), status)
	}

	var byType []map[string]TypeBytes
	for _, r := range results {
		if r.Chain != nil {
			byType = append(byType, r.Chain.ByType)
		}
	}
	names := sortedKeys(byType)
	b.WriteString("\nChain bytes by transaction type (transactions, bytes); the types add up to the total.\n\n| N |")
	for _, t := range names {
		fmt.Fprintf(&b, " %s |", t)
	}
	b.WriteString(" total |\n| ---: |")
	for range names {
		b.WriteString(" ---: |")
	}
	b.WriteString(" ---: |\n")
	for _, r := range results {
		if r.Chain == nil {
			continue
		}
		fmt.Fprintf(&b, "| %d |", r.Nodes)
		for _, t := range names {
			c := r.Chain.ByType[t]
			fmt.Fprintf(&b, " %d, %s |", c.Txs, thousands(c.Bytes))
		}
		fmt.Fprintf(&b, " %d, %s |\n", r.Chain.Txs, thousands(r.Chain.TxBytes))
	}

	var byProto []map[string]ProtocolTraffic
	for _, r := range results {
		if r.Traffic != nil {
			byProto = append(byProto, r.Traffic.ByProtocol)
		}
	}
	pnames := sortedKeys(byProto)
	b.WriteString("\nBytes the nodes' libp2p streams sent in the window, by protocol (all nodes; messages in brackets).\n\n| N |")
	for _, p := range pnames {
		fmt.Fprintf(&b, " %s |", p)
	}
	b.WriteString("\n| ---: |")
	for range pnames {
		b.WriteString(" ---: |")
	}
	b.WriteString("\n")
	for _, r := range results {
		if r.Traffic == nil {
			continue
		}
		fmt.Fprintf(&b, "| %d |", r.Nodes)
		for _, p := range pnames {
			c := r.Traffic.ByProtocol[p]
			fmt.Fprintf(&b, " %s (%s) |", thousands(c.SentBytes), thousands(c.SentMsgs))
		}
		b.WriteString("\n")
	}

	fits := Fits(results)
	b.WriteString("\nLeast-squares fits against N (runs that completed): the line y = a + b·N with its R², and the exponent k of y ≈ c·N^k.\n\n")
	b.WriteString("| figure | unit | slope b (per node) | intercept a | R² | k | growth |\n| --- | --- | ---: | ---: | ---: | ---: | --- |\n")
	for _, f := range Figures {
		ft := fits[f.Name]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", f.Name, f.Unit, num(ft.Slope), num(ft.Intercept), fixed(ft.R2, 3), fixed(ft.Exponent, 2), ft.Growth())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Window is how long the measured window lasted: from keygen to the end of
// the run (the phases after the join), the span of the chain and traffic
// figures.
func Window(r *Result) time.Duration {
	var w time.Duration
	after := false
	for _, p := range r.Phases {
		if after {
			w += p.Duration
		}
		if p.Name == "join" {
			after = true
		}
	}
	return w
}

// Plot draws one PNG per figure into dir (dir/<figure>.png): the measured
// points against N and the fitted line, its slope and R² in the legend.
// It returns the files written.
func Plot(dir string, results []*Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, f := range Figures {
		x, y := points(results, f)
		if len(x) == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = f.Title
		p.X.Label.Text = "nodes (N)"
		p.Y.Label.Text = f.Unit
		p.X.Min, p.Y.Min = 0, 0
		p.Add(plotter.NewGrid())
		xy := make(plotter.XYs, len(x))
		for i := range x {
			xy[i].X, xy[i].Y = x[i], y[i]
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return files, err
		}
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(3)
		p.Add(sc)
		p.Legend.Add("measured", sc)
		if ft := FitLinear(x, y); len(x) >= 2 && !math.IsNaN(ft.Slope) {
			line := plotter.NewFunction(func(n float64) float64 { return ft.Intercept + ft.Slope*n })
			line.Color = color.RGBA{R: 200, A: 255}
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(line)
			p.Legend.Add(fmt.Sprintf("fit: %s + %s·N, R² %s; k %s: %s", num(ft.Intercept), num(ft.Slope), fixed(ft.R2, 3), fixed(ft.Exponent, 2), ft.Growth()), line)
		}
		p.Legend.Top, p.Legend.Left = true, true
		p.X.Max = x[len(x)-1] * 1.05
		name := filepath.Join(dir, f.Name+".png")
		if err := p.Save(7*vg.Inch, 4*vg.Inch, name); err != nil {
			return files, fmt.Errorf("drawing %s: %w", name, err)
		}
		files = append(files, name)
	}
	return files, nil
}

// Protocol ID prefixes of the per-node traffic split.
const (
	pushProtocol   = "/ksb/push/"
	gossipProtocol = "/meshsub/"
)

// perNode is the mean bytes and messages per node sent over the protocols
// whose IDs start with prefix.
func (t *TrafficStats) perNode(nodes int, prefix string) (bytes, msgs float64) {
	if nodes == 0 {
		return 0, 0
	}
	for p, c := range t.ByProtocol {
		if strings.HasPrefix(p, prefix) {
			bytes += float64(c.SentBytes)
			msgs += float64(c.SentMsgs)
		}
	}
	return bytes / float64(nodes), msgs / float64(nodes)
}

// proofTime is the proof epoch's time, 0 if it did not complete.
func proofTime(r *Result) time.Duration {
	if r.Proof == nil {
		return 0
	}
	for _, p := range r.Phases {
		if p.Name == "proof epoch" && p.Status != StatusOK {
			return 0
		}
	}
	return r.Proof.Time
}

// safeCell is the time to every vault safe after the churn: measured even
// when the restore then timed out.
func safeCell(r *Result) string {
	if r.Safe > 0 {
		return secs(r.Safe)
	}
	return phaseSecs(r, "churn", 0)
}

// proofCell is the proof epoch's table cell.
func proofCell(r *Result) string {
	pe := r.Proof
	if pe == nil {
		return phaseSecs(r, "proof epoch", 0)
	}
	return fmt.Sprintf("%s / %s / %s / %s", thousands(int64(pe.Challenges)), thousands(int64(pe.Proofs)), thousands(pe.ProveBytes),
		phaseSecs(r, "proof epoch", pe.Time))
}

// phaseSecs is d if the phase named completed, else what happened to it.
func phaseSecs(r *Result, phase string, d time.Duration) string {
	for _, p := range r.Phases {
		if p.Name == phase && p.Status == StatusTimedOut {
			return fmt.Sprintf("timed out (> %.0f s)", p.Duration.Seconds())
		}
		if p.Name == phase && p.Status != StatusOK {
			return p.Status
		}
	}
	return secs(d)
}

func secs(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// thousands formats n with commas.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// num formats a fitted coefficient with three significant digits.
func num(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.3g", v)
}

func fixed(v float64, digits int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.*f", digits, v)
}

// sortedKeys is the sorted union of the keys of ms: the columns of a table
// whose rows (one per size) may each lack some of them.
func sortedKeys[V any](ms []map[string]V) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}
