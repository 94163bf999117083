package sim

import (
	"fmt"
	"math"
)

// Thresholds of Fit.Growth. With four to six sizes spread over a factor of
// eight, a quadratic figure fits a line with R² ≈ 0.96 and an exponent of
// 2, a linear one with an offset R² ≈ 1 and an exponent below 1: the
// exponent separates them, R² says whether a line describes the points at
// all.
const (
	// linearR2 is the least R² of a line for a figure to count as linear.
	linearR2 = 0.98
	// superlinearExponent is the exponent k (figure ≈ c·N^k) above which a
	// figure grows faster than linearly.
	superlinearExponent = 1.2
	// flatExponent is the exponent below which a figure does not grow.
	flatExponent = 0.2
)

// Fit is a least-squares fit of one figure against N.
type Fit struct {
	// Points is the number of sizes fitted.
	Points int `json:"points"`
	// Slope and Intercept are the line y = Intercept + Slope·N; R2 its
	// coefficient of determination. All three are NaN when fewer than two
	// distinct sizes measured the figure (no line to fit), so that a table
	// shows "–", not 0.
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	R2        float64 `json:"r2"`
	// Exponent is k of the power law y = c·N^k fitted on log-log axes (NaN
	// when a value is not positive).
	Exponent float64 `json:"exponent"`
}

// fitLine fits y = a + b·x by least squares.
func fitLine(x, y []float64) (a, b, r2 float64) {
	n := float64(len(x))
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	b = (n*sxy - sx*sy) / den
	a = (sy - b*sx) / n
	mean := sy / n
	var ssRes, ssTot float64
	for i := range x {
		e := y[i] - (a + b*x[i])
		ssRes += e * e
		d := y[i] - mean
		ssTot += d * d
	}
	if ssTot == 0 {
		return a, b, 1
	}
	return a, b, 1 - ssRes/ssTot
}

// FitLinear fits y against x (the node counts): a line and a power law.
func FitLinear(x, y []float64) Fit {
	f := Fit{Points: len(x), Slope: math.NaN(), Intercept: math.NaN(), R2: math.NaN(), Exponent: math.NaN()}
	if len(x) < 2 || len(x) != len(y) {
		return f
	}
	f.Intercept, f.Slope, f.R2 = fitLine(x, y)
	lx, ly := make([]float64, len(x)), make([]float64, len(y))
	for i := range x {
		if x[i] <= 0 || y[i] <= 0 {
			return f
		}
		lx[i], ly[i] = math.Log(x[i]), math.Log(y[i])
	}
	_, f.Exponent, _ = fitLine(lx, ly)
	return f
}

// Growth says in words how the figure grows with N.
func (f Fit) Growth() string {
	switch {
	case f.Points < 3:
		return fmt.Sprintf("too few sizes (%d) to tell", f.Points)
	case !math.IsNaN(f.Exponent) && f.Exponent > superlinearExponent:
		return fmt.Sprintf("faster than linear (≈ N^%.2f)", f.Exponent)
	case !math.IsNaN(f.Exponent) && f.Exponent < flatExponent:
		return fmt.Sprintf("about flat (≈ N^%.2f)", f.Exponent)
	case f.R2 >= linearR2:
		return "linear"
	default:
		return fmt.Sprintf("not linear (a line fits with R² %.2f only)", f.R2)
	}
}
