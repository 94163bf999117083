package envelope_test

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"filippo.io/age"

	"github.com/ksb-project/ksb/envelope"
)

var update = flag.Bool("update", false, "rewrite the sealed seed blobs in testdata")

// seeds are real blobs sealed with testMnemonic at a low work factor, the
// starting points of FuzzOpen; the value is what each one seals.
var seeds = map[string]struct {
	plaintext  func(testing.TB) []byte
	workFactor int
}{
	"sealed-eddsa-wf2.age": {func(t testing.TB) []byte { return testdata(t, "tsslib-eddsa.json") }, 2},
	"sealed-short-wf1.age": {func(testing.TB) []byte { return []byte(`{"pub_key":"thorpub1test"}`) }, 1},
}

// TestFuzzSeeds checks that the committed seeds are genuine envelopes; with
// -update it seals them again.
func TestFuzzSeeds(t *testing.T) {
	for name, s := range seeds {
		in := s.plaintext(t)
		path := filepath.Join("testdata", name)
		if *update {
			blob := seal(t, in, &envelope.SealOptions{WorkFactor: s.workFactor, AllowLowWorkFactor: true})
			if err := os.WriteFile(path, blob, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, err := envelope.Open(testdata(t, name), testMnemonic, &envelope.Limits{MaxWorkFactor: s.workFactor})
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%s does not open to its plaintext: %v", name, err)
		}
	}
}

// fuzzLimits keep each iteration cheap: scrypt at work factor 2 is a few
// microseconds, and 64 KiB (over ten times the largest seed's plaintext)
// bounds what a bomb can make.
var fuzzLimits = &envelope.Limits{MaxWorkFactor: 2, MaxPlaintext: 64 << 10, MaxBlob: 64 << 10}

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// FuzzOpen feeds Open hostile blobs. With wrap false the input is the blob
// itself; the fuzzer can then reach the header parser and the limits but not
// past the MAC. With wrap true the input is encrypted first to testMnemonic
// (work factor 1), so it reaches the xz decoder as authentic plaintext. Open
// must never panic, must fail only with a documented error, and must stay
// within a fixed memory bound.
func FuzzOpen(f *testing.F) {
	for name := range seeds {
		blob := testdata(f, name)
		f.Add(blob, false)
		id, err := age.NewScryptIdentity(testMnemonic)
		if err != nil {
			f.Fatal(err)
		}
		r, err := age.Decrypt(bytes.NewReader(blob), id)
		if err != nil {
			f.Fatal(err)
		}
		payload, err := io.ReadAll(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload, true)
	}
	f.Add(testdata(f, "zeros16m.xz"), true)
	f.Add([]byte("age-encryption.org/v1\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 30\nAAAA\n--- AAAA\n"), false)

	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		blob := data
		if wrap {
			blob = stockSeal(t, data, testMnemonic, 1)
		}
		var out []byte
		var err error
		n := allocated(func() { out, err = envelope.Open(blob, testMnemonic, fuzzLimits) })
		if err != nil {
			if out != nil {
				t.Fatalf("returned %d bytes with error %v", len(out), err)
			}
			if !isSentinel(err) {
				t.Fatalf("undocumented error: %v", err)
			}
		} else if int64(len(out)) > fuzzLimits.MaxPlaintext {
			t.Fatalf("returned %d bytes, over the %d limit", len(out), fuzzLimits.MaxPlaintext)
		}
		// The blob, its decrypted payload and their buffers; the output
		// buffer and the dictionaries (bounded by the plaintext limit); and
		// xz decoder tables, under 32 KiB per block or property reset, each
		// at least 7 bytes of payload and capped at 1024.
		bound := 8*uint64(len(blob)) + 4*uint64(fuzzLimits.MaxPlaintext) + min(5<<10*uint64(len(blob)), 64<<20) + 1<<20
		if n > bound {
			t.Fatalf("allocated %d bytes for a %d-byte blob (bound %d)", n, len(blob), bound)
		}
	})
}
