package keyshare_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ksb-project/ksb/keyshare"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, never change
// its input, refuse with a *NotKeyshareError, and describe what it accepts
// consistently.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "{}", "[]", "null", `{"pub_key":"x","local_data":{}}`,
		`{"ECDSAPub":{"Coords":[1,2]},"Xi":1,"ShareID":1,"Ks":[1,2],"BigXj":[null,null]}`,
		`{"EDDSAPub":{"Coords":[0,1]},"Xi":1,"ShareID":2,"Ks":[1,2],"BigXj":[{"Coords":[0,1]},{"Coords":[0,1]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		info, err := keyshare.Parse(data)
		if !bytes.Equal(data, orig) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			var nk *keyshare.NotKeyshareError
			if !errors.As(err, &nk) || !errors.Is(err, keyshare.ErrNotKeyshare) || nk.Err == nil {
				t.Fatalf("refusal %v (%T) is not a *NotKeyshareError with a cause", err, err)
			}
			if info != (keyshare.Info{}) {
				t.Fatalf("refusal came with Info %+v", info)
			}
			return
		}
		if info.Parties < 2 {
			t.Fatalf("accepted with %d parties", info.Parties)
		}
		switch info.Kind {
		case keyshare.GoTSS:
			if info.VaultPubKey == "" {
				t.Fatal("go-tss share without vault key")
			}
		case keyshare.TSSLib:
			key, err := hex.DecodeString(info.VaultPubKey)
			ok := err == nil && (info.Algorithm == keyshare.ECDSA && len(key) == 33 && (key[0] == 2 || key[0] == 3) ||
				info.Algorithm == keyshare.EdDSA && len(key) == 32)
			if !ok {
				t.Fatalf("tss-lib %s vault key %q malformed", info.Algorithm, info.VaultPubKey)
			}
		default:
			t.Fatalf("unknown kind %q", info.Kind)
		}
		if info.Algorithm != keyshare.ECDSA && info.Algorithm != keyshare.EdDSA {
			t.Fatalf("unknown algorithm %q", info.Algorithm)
		}
		if again, err := keyshare.Parse(data); err != nil || again != info {
			t.Fatalf("second Parse = %+v, %v; first %+v", again, err, info)
		}
	})
}
