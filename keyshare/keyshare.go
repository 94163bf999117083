package keyshare

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
)

// MaxFileSize caps the files Parse and ParseFile accept. The largest realistic
// share is a 40-member go-tss ECDSA vault: tss-lib save data grows by about
// 3 KiB per party (the 20-party fixture is 60 KiB), go-tss base64-encodes it
// (+33%), so about 165 KiB. 1 MiB is six times that, and since share JSON is
// mostly decimal digits or base64, which xz compresses by at least a quarter,
// a file under this cap seals to a blob under the holders' 1 MiB blob cap.
const MaxFileSize = 1 << 20

// Kind is the file format of a share.
type Kind string

// The recognised formats.
const (
	GoTSS  Kind = "go-tss"  // THORChain go-tss KeygenLocalState
	TSSLib Kind = "tss-lib" // raw bnb-chain/tss-lib LocalPartySaveData
)

// Algorithm is the signature scheme a share belongs to.
type Algorithm string

// The recognised algorithms.
const (
	ECDSA Algorithm = "ecdsa" // ECDSA over secp256k1
	EdDSA Algorithm = "eddsa" // EdDSA over Ed25519
)

// Info describes a recognised share. It holds no secret material.
type Info struct {
	Kind      Kind
	Algorithm Algorithm
	// VaultPubKey identifies the vault. For go-tss it is the file's pub_key
	// string as is (bech32, e.g. "thorpub1…"); for raw tss-lib it is the hex
	// of the compressed vault point: 33-byte SEC1 for secp256k1, the standard
	// 32-byte encoding for Ed25519.
	VaultPubKey string
	// Parties is the number of parties of the keygen that made the share.
	Parties int
}

// ParseFile reads the regular file at path, at most [MaxFileSize] bytes, and
// parses it with [Parse].
func ParseFile(path string) (Info, error) {
	_, info, err := ReadFile(path)
	return info, err
}

// ReadFile reads the regular file at path, at most [MaxFileSize] bytes, and
// parses it with [Parse]; it returns the file's exact bytes with its
// description, so a caller that backs the file up reads it once. A file that
// is not a keyshare (too large, not a regular file, not a share) is a
// [*NotKeyshareError]; failing to read it is any other error.
func ReadFile(path string) ([]byte, Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, Info{}, fmt.Errorf("reading keyshare: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, Info{}, refusef("", ErrNotRegularFile, "%s is a %v", path, fi.Mode().Type())
	}
	if fi.Size() > MaxFileSize {
		return nil, Info{}, refusef("", ErrTooLarge, "%d bytes, limit %d", fi.Size(), MaxFileSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, Info{}, fmt.Errorf("reading keyshare: %w", err)
	}
	defer f.Close()
	// The file may have grown since Stat: read one byte past the cap to tell.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, Info{}, fmt.Errorf("reading keyshare: %w", err)
	}
	info, err := Parse(data)
	if err != nil {
		return nil, Info{}, err
	}
	return data, info, nil
}

// Parse recognises data as a keyshare file and describes it. Anything else is
// refused with a [*NotKeyshareError] (matching [ErrNotKeyshare]) that says
// what was wrong. Parse does not modify or retain data.
func Parse(data []byte) (Info, error) {
	if len(data) > MaxFileSize {
		return Info{}, refusef("", ErrTooLarge, "%d bytes, limit %d", len(data), MaxFileSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Info{}, refuse("", ErrEmpty)
	}
	var f file
	if err := decode(data, &f, ""); err != nil {
		return Info{}, err
	}
	switch {
	case present(f.PubKey) || present(f.LocalData):
		return parseGoTSS(&f)
	case present(f.ECDSAPub) || present(f.EDDSAPub):
		var sd saveData
		if err := decode(data, &sd, ""); err != nil {
			return Info{}, err
		}
		alg, vault, parties, err := sd.check("")
		if err != nil {
			return Info{}, err
		}
		return Info{Kind: TSSLib, Algorithm: alg, VaultPubKey: vault.hex(), Parties: parties}, nil
	}
	return Info{}, refuse("", ErrUnknownFormat)
}

// file holds the top-level fields that tell the formats apart, and go-tss's.
// Field matching follows encoding/json, as go-tss and tss-lib load these files
// with it.
type file struct {
	PubKey          json.RawMessage `json:"pub_key"`
	LocalData       json.RawMessage `json:"local_data"`
	ParticipantKeys json.RawMessage `json:"participant_keys"`
	LocalPartyKey   json.RawMessage `json:"local_party_key"`
	ECDSAPub        json.RawMessage
	EDDSAPub        json.RawMessage
}

// saveData holds the fields of tss-lib's LocalPartySaveData that Parse checks.
// Values stay raw: only points are converted.
type saveData struct {
	// ECDSA only (tss-lib ecdsa/keygen LocalPreParams and per-party data).
	PaillierSK  json.RawMessage
	NTildej     []json.RawMessage
	H1j         []json.RawMessage
	H2j         []json.RawMessage
	PaillierPKs []json.RawMessage
	ECDSAPub    json.RawMessage

	// Both algorithms.
	Xi       json.RawMessage
	ShareID  json.RawMessage
	Ks       []json.RawMessage
	BigXj    []json.RawMessage
	EDDSAPub json.RawMessage
}

// minParties is the smallest keygen tss-lib runs (threshold 1 of 2).
const minParties = 2

// check validates the save data; prefix is the JSON path to it ("" or
// "local_data."). It returns the algorithm, vault point and party count.
func (s *saveData) check(prefix string) (Algorithm, point, int, error) {
	var (
		alg  Algorithm
		c    curve
		pub  json.RawMessage
		name string
	)
	switch {
	case present(s.ECDSAPub) && present(s.EDDSAPub):
		return "", point{}, 0, refuse(prefix+"ECDSAPub", fmt.Errorf("%w: both ECDSAPub and EDDSAPub", ErrInconsistent))
	case present(s.ECDSAPub):
		alg, c, pub, name = ECDSA, secp256k1Curve, s.ECDSAPub, "ECDSAPub"
	case present(s.EDDSAPub):
		alg, c, pub, name = EdDSA, ed25519Curve, s.EDDSAPub, "EDDSAPub"
	default:
		return "", point{}, 0, refusef(prefix+"ECDSAPub", ErrMissingField, "no ECDSAPub or EDDSAPub")
	}
	for _, n := range []struct {
		name string
		v    json.RawMessage
	}{{"Xi", s.Xi}, {"ShareID", s.ShareID}} {
		if err := checkNumber(prefix+n.name, n.v); err != nil {
			return "", point{}, 0, err
		}
	}
	parties := len(s.Ks)
	if parties < minParties {
		return "", point{}, 0, refusef(prefix+"Ks", ErrBadField, "%d parties, need at least %d", parties, minParties)
	}
	for i, k := range s.Ks {
		if err := checkNumber(fmt.Sprintf("%sKs[%d]", prefix, i), k); err != nil {
			return "", point{}, 0, err
		}
	}
	lists := []struct {
		name string
		v    []json.RawMessage
	}{{"BigXj", s.BigXj}}
	if alg == ECDSA {
		if !present(s.PaillierSK) {
			return "", point{}, 0, refuse(prefix+"PaillierSK", ErrMissingField)
		}
		lists = append(lists, []struct {
			name string
			v    []json.RawMessage
		}{{"NTildej", s.NTildej}, {"H1j", s.H1j}, {"H2j", s.H2j}, {"PaillierPKs", s.PaillierPKs}}...)
	}
	for _, l := range lists {
		if len(l.v) != parties {
			return "", point{}, 0, refusef(prefix+l.name, ErrInconsistent, "%d entries for %d parties (Ks)", len(l.v), parties)
		}
		for i, v := range l.v {
			if !present(v) {
				return "", point{}, 0, refuse(fmt.Sprintf("%s%s[%d]", prefix, l.name, i), ErrMissingField)
			}
		}
	}
	for i, x := range s.BigXj {
		if _, err := c.parse(fmt.Sprintf("%sBigXj[%d]", prefix, i), x); err != nil {
			return "", point{}, 0, err
		}
	}
	vault, err := c.parse(prefix+name, pub)
	if err != nil {
		return "", point{}, 0, err
	}
	return alg, vault, parties, nil
}

func parseGoTSS(f *file) (Info, error) {
	var pubKey string
	if err := decodeField(f.PubKey, &pubKey, "pub_key"); err != nil {
		return Info{}, err
	}
	if pubKey == "" {
		return Info{}, refusef("pub_key", ErrMissingField, "empty")
	}
	var parts []string
	if err := decodeField(f.ParticipantKeys, &parts, "participant_keys"); err != nil {
		return Info{}, err
	}
	var local string
	if err := decodeField(f.LocalPartyKey, &local, "local_party_key"); err != nil {
		return Info{}, err
	}
	seen := make(map[string]bool, len(parts))
	for i, p := range parts {
		if p == "" || seen[p] {
			return Info{}, refusef(fmt.Sprintf("participant_keys[%d]", i), ErrBadField, "empty or repeated key")
		}
		seen[p] = true
	}
	if !seen[local] {
		return Info{}, refusef("local_party_key", ErrInconsistent, "not among participant_keys")
	}

	if !present(f.LocalData) {
		return Info{}, refuse("local_data", ErrMissingField)
	}
	inner := []byte(f.LocalData)
	if inner[0] == '"' {
		// go-tss stores local_data as a []byte: base64 of the save data's JSON.
		var b64 string
		if err := json.Unmarshal(inner, &b64); err != nil {
			return Info{}, refusef("local_data", ErrBadField, "%v", err)
		}
		var err error
		if inner, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return Info{}, refusef("local_data", ErrBadField, "base64: %v", err)
		}
	}
	var sd saveData
	if err := decode(inner, &sd, "local_data"); err != nil {
		return Info{}, err
	}
	alg, vault, parties, err := sd.check("local_data.")
	if err != nil {
		return Info{}, err
	}
	if parties != len(parts) {
		return Info{}, refusef("participant_keys", ErrInconsistent, "%d keys, save data has %d parties", len(parts), parties)
	}
	if err := checkBech32PubKey(pubKey, vault); err != nil {
		return Info{}, err
	}
	return Info{Kind: GoTSS, Algorithm: alg, VaultPubKey: pubKey, Parties: parties}, nil
}

// decode unmarshals JSON data into v, turning errors into refusals; field is
// the path of data within the file ("" for the file itself).
func decode(data []byte, v any, field string) error {
	err := json.Unmarshal(data, v)
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syn):
		return refusef(field, ErrSyntax, "%v at byte %d", syn, syn.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return refusef(field, ErrUnknownFormat, "JSON %s, not an object", typ.Value)
	case errors.As(err, &typ):
		return refusef(join(field, typ.Field), ErrBadField, "JSON %s, want %s", typ.Value, jsonKind(typ.Type))
	default:
		return refusef(field, ErrSyntax, "%v", err)
	}
}

// decodeField unmarshals a required field.
func decodeField(raw json.RawMessage, v any, field string) error {
	if !present(raw) {
		return refuse(field, ErrMissingField)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return refusef(field, ErrBadField, "%v", err)
	}
	return nil
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "list"
	case reflect.String:
		return "string"
	default:
		return t.String()
	}
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// present reports whether a raw field was given and is not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// checkNumber requires raw to be a JSON number (big integers in tss-lib's
// encoding).
func checkNumber(field string, raw json.RawMessage) error {
	if !present(raw) {
		return refuse(field, ErrMissingField)
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return refusef(field, ErrBadField, "not a number")
	}
	return nil
}
