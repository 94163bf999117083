package sim

import (
	"math"
	"slices"
	"testing"
)

func TestFitLinear(t *testing.T) {
	x := []float64{25, 50, 100, 200}
	line := make([]float64, len(x))
	square := make([]float64, len(x))
	flat := []float64{10, 10.5, 9.8, 10.2}
	for i, n := range x {
		line[i] = 3 + 2*n
		square[i] = n * n
	}
	f := FitLinear(x, line)
	if math.Abs(f.Slope-2) > 1e-9 || math.Abs(f.Intercept-3) > 1e-9 || math.Abs(f.R2-1) > 1e-9 || f.Growth() != "linear" {
		t.Errorf("line: %+v %s", f, f.Growth())
	}
	if f := FitLinear(x, square); math.Abs(f.Exponent-2) > 1e-9 || f.Growth() != "faster than linear (≈ N^2.00)" {
		t.Errorf("square: %+v %s", f, f.Growth())
	}
	if f := FitLinear(x, flat); f.Growth() != "about flat (≈ N^-0.00)" && f.Growth() != "about flat (≈ N^0.00)" {
		t.Errorf("flat: %+v %s", f, f.Growth())
	}
	if f := FitLinear(x[:2], line[:2]); f.Growth() != "too few sizes (2) to tell" {
		t.Errorf("two points: %s", f.Growth())
	}
	// One size, or sizes all equal: no line, and the table says so.
	for _, f := range []Fit{FitLinear(x[:1], line[:1]), FitLinear([]float64{50, 50}, []float64{1, 2})} {
		if !math.IsNaN(f.Slope) || !math.IsNaN(f.Intercept) || !math.IsNaN(f.R2) {
			t.Errorf("no line to fit, got %+v", f)
		}
		if got := num(f.Slope) + " " + num(f.Intercept) + " " + fixed(f.R2, 3); got != "– – –" {
			t.Errorf("table cells %q, want dashes", got)
		}
	}
}

func TestKeygenGroups(t *testing.T) {
	sizes := func(n, max int) []int {
		var s []int
		seen := map[int]bool{}
		for _, g := range keygenGroups(n, max) {
			s = append(s, len(g))
			for _, i := range g {
				if seen[i] {
					t.Fatalf("node %d in two groups", i)
				}
				seen[i] = true
			}
		}
		if len(seen) != n {
			t.Fatalf("%d of %d nodes in a group", len(seen), n)
		}
		return s
	}
	for _, c := range []struct {
		n    int
		want []int
	}{{8, []int{8}}, {25, []int{25}}, {50, []int{25, 25}}, {100, []int{34, 33, 33}}, {200, []int{40, 40, 40, 40, 40}}, {120, []int{40, 40, 40}}} {
		if got := sizes(c.n, 40); !slices.Equal(got, c.want) {
			t.Errorf("%d nodes: %v, want %v", c.n, got, c.want)
		}
	}
}

func TestTxTypeOfGarbage(t *testing.T) {
	if got, msg := txType([]byte("not a transaction")); got != undecodable || msg != nil {
		t.Errorf("garbage is %q", got)
	}
}
