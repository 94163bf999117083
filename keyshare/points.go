package keyshare

import (
	"encoding/hex"
	"encoding/json"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	voi "github.com/oasisprotocol/curve25519-voi/curve"
)

// maxCoordDigits caps a coordinate's decimal digits before it is converted:
// every field element of both curves is below 2^256, which has 78 digits.
// Without the cap a single multi-megabyte number would cost quadratic time.
const maxCoordDigits = 78

// curve is a curve whose points appear in save data as tss-lib's ECPoint JSON,
// {"Coords": [x, y]} with big-integer affine coordinates.
type curve int

const (
	secp256k1Curve curve = iota
	ed25519Curve
)

// point is a curve point in its standard compressed encoding.
type point struct{ enc []byte }

func (p point) hex() string { return hex.EncodeToString(p.enc) }

// parse decodes, validates and encodes the point at field.
func (c curve) parse(field string, raw json.RawMessage) (point, error) {
	if !present(raw) {
		return point{}, refuse(field, ErrMissingField)
	}
	var p struct{ Coords []json.RawMessage }
	if raw[0] != '{' {
		return point{}, refusef(field, ErrBadField, "not a point object")
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return point{}, refusef(field, ErrBadField, "%v", err)
	}
	if len(p.Coords) != 2 {
		return point{}, refusef(field+".Coords", ErrBadField, "%d coordinates, want 2", len(p.Coords))
	}
	x, err := coord(field+".Coords[0]", p.Coords[0])
	if err != nil {
		return point{}, err
	}
	y, err := coord(field+".Coords[1]", p.Coords[1])
	if err != nil {
		return point{}, err
	}
	if c == secp256k1Curve {
		return secp256k1Point(field, x, y)
	}
	return ed25519Point(field, x, y)
}

// coord converts a non-negative JSON integer of at most maxCoordDigits digits.
func coord(field string, raw json.RawMessage) (*big.Int, error) {
	if len(raw) == 0 || len(raw) > maxCoordDigits {
		return nil, refusef(field, ErrBadField, "%d characters, want 1 to %d digits", len(raw), maxCoordDigits)
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return nil, refusef(field, ErrBadField, "not a non-negative integer")
		}
	}
	n, ok := new(big.Int).SetString(string(raw), 10)
	if !ok {
		return nil, refusef(field, ErrBadField, "not an integer")
	}
	return n, nil
}

// secp256k1Point checks (x, y) is on secp256k1 and SEC1-compresses it.
func secp256k1Point(field string, x, y *big.Int) (point, error) {
	var fx, fy secp256k1.FieldVal
	if x.BitLen() > 256 || y.BitLen() > 256 {
		return point{}, refusef(field, ErrNotOnCurve, "coordinate beyond the field")
	}
	var xb, yb [32]byte
	if fx.SetByteSlice(x.FillBytes(xb[:])) || fy.SetByteSlice(y.FillBytes(yb[:])) {
		return point{}, refusef(field, ErrNotOnCurve, "coordinate beyond the field")
	}
	pk := secp256k1.NewPublicKey(&fx, &fy)
	if !pk.IsOnCurve() {
		return point{}, refuse(field, ErrNotOnCurve)
	}
	return point{enc: pk.SerializeCompressed()}, nil
}

// Ed25519 (RFC 8032): p = 2^255 - 19, -x² + y² = 1 + d·x²·y² with
// d = -121665/121666 mod p.
var (
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	edD = func() *big.Int {
		d := new(big.Int).ModInverse(big.NewInt(121666), edP)
		d.Mul(d, big.NewInt(-121665))
		return d.Mod(d, edP)
	}()
)

// ed25519Point checks (x, y) is on Ed25519, in its prime-order subgroup (as
// every tss-lib key and public share is) and not the identity, and encodes it
// as RFC 8032 does: y in 32 little-endian bytes, the low bit of x in the top
// bit.
func ed25519Point(field string, x, y *big.Int) (point, error) {
	if x.Cmp(edP) >= 0 || y.Cmp(edP) >= 0 {
		return point{}, refusef(field, ErrNotOnCurve, "coordinate beyond the field")
	}
	x2 := new(big.Int).Mul(x, x)
	y2 := new(big.Int).Mul(y, y)
	lhs := new(big.Int).Sub(y2, x2)
	rhs := new(big.Int).Mul(x2, y2)
	rhs.Mul(rhs, edD).Add(rhs, big.NewInt(1))
	if lhs.Sub(lhs, rhs).Mod(lhs, edP).Sign() != 0 {
		return point{}, refuse(field, ErrNotOnCurve)
	}
	if x.Sign() == 0 && y.Cmp(big.NewInt(1)) == 0 {
		return point{}, refusef(field, ErrBadField, "identity point")
	}
	var enc [32]byte
	y.FillBytes(enc[:])
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		enc[i], enc[j] = enc[j], enc[i]
	}
	enc[31] |= byte(x.Bit(0)) << 7
	// (x, y) is on the curve, so decoding its encoding gives it back.
	var q voi.EdwardsPoint
	if _, err := q.SetCompressedY((*voi.CompressedEdwardsY)(&enc)); err != nil {
		return point{}, refusef(field, ErrNotOnCurve, "%v", err)
	}
	if !q.IsTorsionFree() {
		return point{}, refusef(field, ErrBadField, "not in the prime-order subgroup")
	}
	return point{enc: enc[:]}, nil
}
