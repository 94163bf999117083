package keyshare_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/keyshare"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The fixtures' vault keys, computed outside Go (Python, from the files'
// coordinates, and for go-tss taken from THORChain's files) and recomputed
// below with math/big.
const (
	tssLibECDSAVault = "03cc7cca4372b7e36d1fefee8fddd781af5dd8a8dfdbfab7c1f1b0ae2a1933d8bb"
	tssLibEdDSAVault = "6339bfe9b4ebbce975efc8990e690523370503841f6f87990bac65719a5c9fca"
	goTSSECDSAVault  = "thorpub1addwnpepqgudlwpmp78qk5q3xhm4nhvys2y0h8grq5vqw654jpetg98x4w7ycf0rzzr"
	goTSSEdDSAVault  = "thorpub1zcjduepq665vjeq34n7ccpvdl8t6akgls3c6u2uq242vpag2d9knstxymxfqq2ufwe"
)

var fixtures = []struct {
	file string
	want keyshare.Info
}{
	{"go-tss-ecdsa-0.json", keyshare.Info{Kind: keyshare.GoTSS, Algorithm: keyshare.ECDSA, VaultPubKey: goTSSECDSAVault, Parties: 4}},
	{"go-tss-ecdsa-1.json", keyshare.Info{Kind: keyshare.GoTSS, Algorithm: keyshare.ECDSA, VaultPubKey: goTSSECDSAVault, Parties: 4}},
	{"go-tss-eddsa-0.json", keyshare.Info{Kind: keyshare.GoTSS, Algorithm: keyshare.EdDSA, VaultPubKey: goTSSEdDSAVault, Parties: 4}},
	{"go-tss-eddsa-1.json", keyshare.Info{Kind: keyshare.GoTSS, Algorithm: keyshare.EdDSA, VaultPubKey: goTSSEdDSAVault, Parties: 4}},
	{"tss-lib-ecdsa-0.json", keyshare.Info{Kind: keyshare.TSSLib, Algorithm: keyshare.ECDSA, VaultPubKey: tssLibECDSAVault, Parties: 20}},
	{"tss-lib-ecdsa-1.json", keyshare.Info{Kind: keyshare.TSSLib, Algorithm: keyshare.ECDSA, VaultPubKey: tssLibECDSAVault, Parties: 20}},
	{"tss-lib-eddsa-0.json", keyshare.Info{Kind: keyshare.TSSLib, Algorithm: keyshare.EdDSA, VaultPubKey: tssLibEdDSAVault, Parties: 20}},
	{"tss-lib-eddsa-1.json", keyshare.Info{Kind: keyshare.TSSLib, Algorithm: keyshare.EdDSA, VaultPubKey: tssLibEdDSAVault, Parties: 20}},
}

func TestFixtures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			data := readTestdata(t, fx.file)
			orig := bytes.Clone(data)
			got, err := keyshare.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if got != fx.want {
				t.Errorf("Parse = %+v, want %+v", got, fx.want)
			}
			if !bytes.Equal(data, orig) {
				t.Error("Parse modified its input")
			}
			fromFile, err := keyshare.ParseFile(filepath.Join("testdata", fx.file))
			if err != nil || fromFile != got {
				t.Errorf("ParseFile = %+v, %v; want %+v", fromFile, err, got)
			}
			// The expectations again, derived from the file by independent code.
			if want := independentInfo(t, data); got != want {
				t.Errorf("Parse = %+v, independent derivation gives %+v", got, want)
			}
		})
	}
}

// independentInfo derives a fixture's Info with plain encoding/json and
// math/big, sharing no code with the package.
func independentInfo(t *testing.T, data []byte) keyshare.Info {
	t.Helper()
	var gotss struct {
		PubKey          string   `json:"pub_key"`
		LocalData       []byte   `json:"local_data"` // base64 in the fixtures
		ParticipantKeys []string `json:"participant_keys"`
	}
	if err := json.Unmarshal(data, &gotss); err != nil {
		t.Fatal(err)
	}
	sd := data
	if gotss.PubKey != "" {
		sd = gotss.LocalData
	}
	var save struct {
		Ks                 []json.RawMessage
		ECDSAPub, EDDSAPub *struct{ Coords []*big.Int }
	}
	d := json.NewDecoder(bytes.NewReader(sd))
	if err := d.Decode(&save); err != nil {
		t.Fatal(err)
	}
	info := keyshare.Info{Kind: keyshare.TSSLib, Parties: len(save.Ks)}
	switch {
	case save.ECDSAPub != nil:
		info.Algorithm = keyshare.ECDSA
		x, y := save.ECDSAPub.Coords[0], save.ECDSAPub.Coords[1]
		p, _ := new(big.Int).SetString("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f", 16)
		lhs := new(big.Int).Exp(y, big.NewInt(2), p)
		rhs := new(big.Int).Exp(x, big.NewInt(3), p)
		rhs.Add(rhs, big.NewInt(7)).Mod(rhs, p)
		if lhs.Cmp(rhs) != 0 {
			t.Fatal("fixture ECDSAPub not on secp256k1")
		}
		info.VaultPubKey = hex.EncodeToString(append([]byte{byte(2 + y.Bit(0))}, x.FillBytes(make([]byte, 32))...))
	case save.EDDSAPub != nil:
		info.Algorithm = keyshare.EdDSA
		x, y := save.EDDSAPub.Coords[0], save.EDDSAPub.Coords[1]
		le := y.FillBytes(make([]byte, 32))
		for i := range 16 {
			le[i], le[31-i] = le[31-i], le[i]
		}
		le[31] |= byte(x.Bit(0)) << 7
		info.VaultPubKey = hex.EncodeToString(le)
	}
	if gotss.PubKey != "" {
		info.Kind, info.VaultPubKey = keyshare.GoTSS, gotss.PubKey
		if len(gotss.ParticipantKeys) != info.Parties {
			t.Fatalf("fixture has %d participant keys and %d Ks", len(gotss.ParticipantKeys), info.Parties)
		}
	}
	return info
}

func TestFilesOfOneKeygenShareAVault(t *testing.T) {
	vaults := map[string]map[string]bool{}
	for _, fx := range fixtures {
		got, err := keyshare.ParseFile(filepath.Join("testdata", fx.file))
		if err != nil {
			t.Fatal(err)
		}
		group := fx.file[:strings.LastIndex(fx.file, "-")]
		if vaults[group] == nil {
			vaults[group] = map[string]bool{}
		}
		vaults[group][got.VaultPubKey] = true
	}
	if len(vaults) != 4 {
		t.Fatalf("%d fixture groups, want 4", len(vaults))
	}
	for g, v := range vaults {
		if len(v) != 1 {
			t.Errorf("%s files report %d vault keys, want 1", g, len(v))
		}
	}
}

// TestGoTSSLocalDataAsObject re-embeds the save data as a JSON object, the
// other way go-tss versions write local_data.
func TestGoTSSLocalDataAsObject(t *testing.T) {
	for _, name := range []string{"go-tss-ecdsa-0.json", "go-tss-eddsa-1.json"} {
		m := decodeJSON(t, readTestdata(t, name))
		inner, err := base64.StdEncoding.DecodeString(m["local_data"].(string))
		if err != nil {
			t.Fatal(err)
		}
		m["local_data"] = json.RawMessage(inner)
		asObject, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := keyshare.Parse(asObject)
		if err != nil {
			t.Fatalf("%s with local_data as object: %v", name, err)
		}
		want, _ := keyshare.Parse(readTestdata(t, name))
		if got != want {
			t.Errorf("%s: object form gives %+v, base64 form %+v", name, got, want)
		}
	}
}

// decodeJSON decodes an object keeping numbers exact.
func decodeJSON(t testing.TB, data []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encodeJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit returns fixture name with f applied to its decoded JSON. For go-tss
// files, f receives the decoded local_data when inner is set.
func edit(t *testing.T, name string, inner bool, f func(m map[string]any)) []byte {
	t.Helper()
	m := decodeJSON(t, readTestdata(t, name))
	if !inner {
		f(m)
		return encodeJSON(t, m)
	}
	raw, err := base64.StdEncoding.DecodeString(m["local_data"].(string))
	if err != nil {
		t.Fatal(err)
	}
	sd := decodeJSON(t, raw)
	f(sd)
	m["local_data"] = base64.StdEncoding.EncodeToString(encodeJSON(t, sd))
	return encodeJSON(t, m)
}

func coords(m map[string]any, key string) []any {
	return m[key].(map[string]any)["Coords"].([]any)
}

func addOne(n any) json.Number {
	v, _ := new(big.Int).SetString(string(n.(json.Number)), 10)
	return json.Number(v.Add(v, big.NewInt(1)).String())
}

const edP = "57896044618658097711785492504343953926634992332820282019728792003956564819949" // 2^255-19

func TestRefusals(t *testing.T) {
	const (
		ecdsa  = "tss-lib-ecdsa-0.json"
		eddsa  = "tss-lib-eddsa-0.json"
		gecdsa = "go-tss-ecdsa-0.json"
		geddsa = "go-tss-eddsa-0.json"
	)
	ecdsaData := readTestdata(t, ecdsa)
	for _, tc := range []struct {
		name  string
		data  []byte
		cause error
		field string // expected NotKeyshareError.Field, if not ""
	}{
		{"empty", nil, keyshare.ErrEmpty, ""},
		{"white space", []byte(" \n\t "), keyshare.ErrEmpty, ""},
		{"oversize", append([]byte("{}"), bytes.Repeat([]byte(" "), keyshare.MaxFileSize)...), keyshare.ErrTooLarge, ""},
		{"text", []byte("hello, world"), keyshare.ErrSyntax, ""},
		{"truncated tss-lib", ecdsaData[:len(ecdsaData)/2], keyshare.ErrSyntax, ""},
		{"truncated by one byte", ecdsaData[:len(ecdsaData)-1], keyshare.ErrSyntax, ""},
		{"trailing garbage", append(bytes.Clone(ecdsaData), "x"...), keyshare.ErrSyntax, ""},
		{"array", []byte(`[1, 2]`), keyshare.ErrUnknownFormat, ""},
		{"string", []byte(`"ECDSAPub"`), keyshare.ErrUnknownFormat, ""},
		{"empty object", []byte(`{}`), keyshare.ErrUnknownFormat, ""},
		{"other JSON", []byte(`{"name": "config", "ECDSA": true}`), keyshare.ErrUnknownFormat, ""},
		{"only a pubkey", []byte(`{"ECDSAPub": {"Coords": [1, 2]}}`), keyshare.ErrMissingField, "Xi"},

		{"ECDSAPub off curve", edit(t, ecdsa, false, func(m map[string]any) {
			c := coords(m, "ECDSAPub")
			c[1] = addOne(c[1])
		}), keyshare.ErrNotOnCurve, "ECDSAPub"},
		{"ECDSAPub x beyond field", edit(t, ecdsa, false, func(m map[string]any) {
			coords(m, "ECDSAPub")[0] = json.Number("115792089237316195423570985008687907853269984665640564039457584007908834671663")
		}), keyshare.ErrNotOnCurve, "ECDSAPub"},
		{"EDDSAPub off curve", edit(t, eddsa, false, func(m map[string]any) {
			c := coords(m, "EDDSAPub")
			c[0] = addOne(c[0])
		}), keyshare.ErrNotOnCurve, "EDDSAPub"},
		{"EDDSAPub of order 2", edit(t, eddsa, false, func(m map[string]any) {
			v, _ := new(big.Int).SetString(edP, 10)
			coords(m, "EDDSAPub")[0], coords(m, "EDDSAPub")[1] = json.Number("0"), json.Number(v.Sub(v, big.NewInt(1)).String())
		}), keyshare.ErrBadField, "EDDSAPub"},
		{"EDDSAPub identity", edit(t, eddsa, false, func(m map[string]any) {
			coords(m, "EDDSAPub")[0], coords(m, "EDDSAPub")[1] = json.Number("0"), json.Number("1")
		}), keyshare.ErrBadField, "EDDSAPub"},
		{"EDDSAPub y beyond field", edit(t, eddsa, false, func(m map[string]any) {
			coords(m, "EDDSAPub")[1] = json.Number(edP)
		}), keyshare.ErrNotOnCurve, "EDDSAPub"},
		{"party share off curve", edit(t, ecdsa, false, func(m map[string]any) {
			c := m["BigXj"].([]any)[3].(map[string]any)["Coords"].([]any)
			c[0] = addOne(c[0])
		}), keyshare.ErrNotOnCurve, "BigXj[3]"},
		{"coordinate as string", edit(t, ecdsa, false, func(m map[string]any) {
			c := coords(m, "ECDSAPub")
			c[0] = string(c[0].(json.Number))
		}), keyshare.ErrBadField, "ECDSAPub.Coords[0]"},
		{"negative coordinate", edit(t, ecdsa, false, func(m map[string]any) {
			coords(m, "ECDSAPub")[1] = json.Number("-5")
		}), keyshare.ErrBadField, "ECDSAPub.Coords[1]"},
		{"fractional coordinate", edit(t, ecdsa, false, func(m map[string]any) {
			coords(m, "ECDSAPub")[1] = json.Number("5.5")
		}), keyshare.ErrBadField, "ECDSAPub.Coords[1]"},
		{"huge coordinate", edit(t, ecdsa, false, func(m map[string]any) {
			coords(m, "ECDSAPub")[1] = json.Number("1" + strings.Repeat("0", 100_000))
		}), keyshare.ErrBadField, "ECDSAPub.Coords[1]"},
		{"three coordinates", edit(t, ecdsa, false, func(m map[string]any) {
			m["ECDSAPub"].(map[string]any)["Coords"] = append(coords(m, "ECDSAPub"), json.Number("1"))
		}), keyshare.ErrBadField, "ECDSAPub.Coords"},
		{"point not an object", edit(t, ecdsa, false, func(m map[string]any) {
			m["ECDSAPub"] = []any{json.Number("1"), json.Number("2")}
		}), keyshare.ErrBadField, "ECDSAPub"},
		{"both algorithms", edit(t, ecdsa, false, func(m map[string]any) {
			m["EDDSAPub"] = m["ECDSAPub"]
		}), keyshare.ErrInconsistent, "ECDSAPub"},
		{"missing Xi", edit(t, ecdsa, false, func(m map[string]any) { delete(m, "Xi") }), keyshare.ErrMissingField, "Xi"},
		{"null ShareID", edit(t, eddsa, false, func(m map[string]any) { m["ShareID"] = nil }), keyshare.ErrMissingField, "ShareID"},
		{"Xi not a number", edit(t, eddsa, false, func(m map[string]any) { m["Xi"] = "12" }), keyshare.ErrBadField, "Xi"},
		{"missing PaillierSK", edit(t, ecdsa, false, func(m map[string]any) { delete(m, "PaillierSK") }), keyshare.ErrMissingField, "PaillierSK"},
		{"Ks not a list", edit(t, ecdsa, false, func(m map[string]any) { m["Ks"] = json.Number("3") }), keyshare.ErrBadField, "Ks"},
		{"one party", edit(t, eddsa, false, func(m map[string]any) {
			m["Ks"], m["BigXj"] = m["Ks"].([]any)[:1], m["BigXj"].([]any)[:1]
		}), keyshare.ErrBadField, "Ks"},
		{"short BigXj", edit(t, eddsa, false, func(m map[string]any) {
			m["BigXj"] = m["BigXj"].([]any)[1:]
		}), keyshare.ErrInconsistent, "BigXj"},
		{"short NTildej", edit(t, ecdsa, false, func(m map[string]any) {
			m["NTildej"] = m["NTildej"].([]any)[1:]
		}), keyshare.ErrInconsistent, "NTildej"},
		{"null PaillierPK", edit(t, ecdsa, false, func(m map[string]any) {
			m["PaillierPKs"].([]any)[5] = nil
		}), keyshare.ErrMissingField, "PaillierPKs[5]"},
		{"null Ks entry", edit(t, ecdsa, false, func(m map[string]any) {
			m["Ks"].([]any)[0] = nil
		}), keyshare.ErrMissingField, "Ks[0]"},

		{"go-tss pub_key of another vault", edit(t, gecdsa, false, func(m map[string]any) {
			m["pub_key"] = goTSSEdDSAVault
		}), keyshare.ErrInconsistent, "pub_key"},
		{"go-tss pub_key not bech32", edit(t, gecdsa, false, func(m map[string]any) {
			m["pub_key"] = tssLibECDSAVault
		}), keyshare.ErrBadField, "pub_key"},
		{"go-tss pub_key bad checksum", edit(t, geddsa, false, func(m map[string]any) {
			s := m["pub_key"].(string)
			m["pub_key"] = s[:len(s)-1] + "q"
		}), keyshare.ErrBadField, "pub_key"},
		{"go-tss pub_key a number", edit(t, gecdsa, false, func(m map[string]any) {
			m["pub_key"] = json.Number("7")
		}), keyshare.ErrBadField, "pub_key"},
		{"go-tss empty pub_key", edit(t, gecdsa, false, func(m map[string]any) {
			m["pub_key"] = ""
		}), keyshare.ErrMissingField, "pub_key"},
		{"go-tss no local_data", edit(t, gecdsa, false, func(m map[string]any) {
			delete(m, "local_data")
		}), keyshare.ErrMissingField, "local_data"},
		{"go-tss local_data not base64", edit(t, gecdsa, false, func(m map[string]any) {
			m["local_data"] = "not base64!"
		}), keyshare.ErrBadField, "local_data"},
		{"go-tss local_data not JSON", edit(t, gecdsa, false, func(m map[string]any) {
			m["local_data"] = base64.StdEncoding.EncodeToString([]byte("garbage"))
		}), keyshare.ErrSyntax, "local_data"},
		{"go-tss local_data a number", edit(t, gecdsa, false, func(m map[string]any) {
			m["local_data"] = json.Number("42")
		}), keyshare.ErrUnknownFormat, "local_data"},
		{"go-tss local_data off curve", edit(t, gecdsa, true, func(m map[string]any) {
			c := coords(m, "ECDSAPub")
			c[0] = addOne(c[0])
		}), keyshare.ErrNotOnCurve, "local_data.ECDSAPub"},
		{"go-tss local_data without pubkey", edit(t, geddsa, true, func(m map[string]any) {
			delete(m, "EDDSAPub")
		}), keyshare.ErrMissingField, "local_data.ECDSAPub"},
		{"go-tss participant missing", edit(t, gecdsa, false, func(m map[string]any) {
			m["participant_keys"] = m["participant_keys"].([]any)[:3]
		}), keyshare.ErrInconsistent, "participant_keys"},
		{"go-tss participant repeated", edit(t, gecdsa, false, func(m map[string]any) {
			p := m["participant_keys"].([]any)
			p[1] = p[0]
		}), keyshare.ErrBadField, "participant_keys[1]"},
		{"go-tss no participants", edit(t, gecdsa, false, func(m map[string]any) {
			delete(m, "participant_keys")
		}), keyshare.ErrMissingField, "participant_keys"},
		{"go-tss local party not a participant", edit(t, gecdsa, false, func(m map[string]any) {
			m["local_party_key"] = "thorpub1someoneelse"
		}), keyshare.ErrInconsistent, "local_party_key"},
		{"go-tss no local party", edit(t, geddsa, false, func(m map[string]any) {
			delete(m, "local_party_key")
		}), keyshare.ErrMissingField, "local_party_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := keyshare.Parse(tc.data)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", info)
			}
			if info != (keyshare.Info{}) {
				t.Errorf("refusal came with Info %+v", info)
			}
			if !errors.Is(err, keyshare.ErrNotKeyshare) {
				t.Errorf("error %v does not match ErrNotKeyshare", err)
			}
			if !errors.Is(err, tc.cause) {
				t.Errorf("error %q, want cause %q", err, tc.cause)
			}
			var nk *keyshare.NotKeyshareError
			if !errors.As(err, &nk) {
				t.Fatalf("error %T is not a *NotKeyshareError", err)
			}
			if tc.field != "" && nk.Field != tc.field {
				t.Errorf("Field = %q, want %q (error %q)", nk.Field, tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), "not a keyshare file: ") {
				t.Errorf("message %q lacks the not-a-keyshare prefix", err)
			}
		})
	}
}

// TestEveryTruncationRefused cuts the smaller fixtures at every length: no
// prefix of a share is a share.
func TestEveryTruncationRefused(t *testing.T) {
	for _, name := range []string{"go-tss-eddsa-0.json", "tss-lib-eddsa-0.json"} {
		data := readTestdata(t, name)
		for n := range len(data) - 1 {
			if n > 0 && data[n-1] == '}' && len(bytes.TrimSpace(data[n:])) == 0 {
				continue // only white space was cut
			}
			if _, err := keyshare.Parse(data[:n]); !errors.Is(err, keyshare.ErrNotKeyshare) {
				t.Fatalf("%s cut to %d of %d bytes: %v", name, n, len(data), err)
			}
		}
	}
}

func TestParseFileRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyshare.ParseFile(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, keyshare.ErrNotKeyshare) {
		t.Errorf("missing file: %v, want a not-exist error", err)
	}
	if _, err := keyshare.ParseFile(dir); !errors.Is(err, keyshare.ErrNotRegularFile) || !errors.Is(err, keyshare.ErrNotKeyshare) {
		t.Errorf("directory: %v, want ErrNotRegularFile", err)
	}
	big := filepath.Join(dir, "big.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(keyshare.MaxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := keyshare.ParseFile(big); !errors.Is(err, keyshare.ErrTooLarge) {
		t.Errorf("oversize file: %v, want ErrTooLarge", err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("\x00\x01binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keyshare.ParseFile(garbage); !errors.Is(err, keyshare.ErrSyntax) {
		t.Errorf("binary file: %v, want ErrSyntax", err)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"tss-lib-ecdsa-0.json", "tss-lib-eddsa-0.json", "go-tss-ecdsa-0.json", "go-tss-eddsa-0.json"} {
		data := readTestdata(b, name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := keyshare.Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseLargestEdDSA parses the costliest input under MaxFileSize we
// know of: EdDSA save data with as many parties as fit, every public share
// needing an on-curve and a subgroup check.
func BenchmarkParseLargestEdDSA(b *testing.B) {
	m := decodeJSON(b, readTestdata(b, "tss-lib-eddsa-0.json"))
	ks, xs := m["Ks"].([]any), m["BigXj"].([]any)
	per := len(encodeJSON(b, ks[0])) + len(encodeJSON(b, xs[0])) + 2
	n := (keyshare.MaxFileSize - 2000) / per
	for len(ks) < n {
		ks, xs = append(ks, ks[len(ks)%20]), append(xs, xs[len(xs)%20])
	}
	m["Ks"], m["BigXj"] = ks, xs
	data := encodeJSON(b, m)
	info, err := keyshare.Parse(data)
	if err != nil {
		b.Fatalf("%d-byte input: %v", len(data), err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := keyshare.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(info.Parties), "parties")
}

// TestReadFile: the bytes ReadFile returns are the file's, unaltered, with the
// same description ParseFile gives; a refused file returns no bytes.
func TestReadFile(t *testing.T) {
	path := filepath.Join("testdata", "go-tss-eddsa-0.json")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data, info, err := keyshare.ReadFile(path)
	if err != nil || !bytes.Equal(data, want) {
		t.Fatalf("ReadFile: %d bytes equal=%v, %v", len(data), bytes.Equal(data, want), err)
	}
	if pinfo, _ := keyshare.ParseFile(path); pinfo != info {
		t.Errorf("ReadFile info %+v, ParseFile %+v", info, pinfo)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.json")
	os.WriteFile(garbage, []byte(`{"not":"a share"}`), 0o600)
	if data, _, err := keyshare.ReadFile(garbage); !errors.Is(err, keyshare.ErrNotKeyshare) || data != nil {
		t.Errorf("garbage: %d bytes, %v", len(data), err)
	}
}
