package envelope_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/envelope"
)

func sealCopies(t testing.TB, plaintext []byte, copies int, opts *envelope.SealOptions) [][]byte {
	t.Helper()
	out, err := envelope.SealCopies(plaintext, testMnemonic, copies, opts)
	if err != nil {
		t.Fatalf("SealCopies: %v", err)
	}
	if len(out) != copies {
		t.Fatalf("%d copies, want %d", len(out), copies)
	}
	return out
}

// headerLen is the length of an age header: through the MAC line.
func headerLen(t testing.TB, blob []byte) int {
	t.Helper()
	i := bytes.Index(blob, []byte("\n--- "))
	if i < 0 {
		t.Fatal("no MAC line")
	}
	j := bytes.IndexByte(blob[i+1:], '\n')
	if j < 0 {
		t.Fatal("MAC line does not end")
	}
	return i + 1 + j + 1
}

// stanzaLineEnd is the length of "age-encryption.org/v1\n-> scrypt <salt> <wf>\n".
func stanzaLineEnd(t testing.TB, blob []byte) int {
	t.Helper()
	lines := bytes.SplitN(blob, []byte("\n"), 3)
	if len(lines) < 3 {
		t.Fatal("no stanza line")
	}
	return len(lines[0]) + 1 + len(lines[1]) + 1
}

func TestSealCopies(t *testing.T) {
	const r = 3
	for _, name := range []string{"tsslib-ecdsa.json", "tsslib-eddsa.json", "gotss-ecdsa.json"} {
		t.Run(name, func(t *testing.T) {
			in := testdata(t, name)
			single := seal(t, in, fast)
			// One salt only: a second scrypt would fail the queue.
			q := &saltQueue{salts: [][]byte{randomSalt(t)}}
			restore := envelope.SetSaltSource(q)
			copies := sealCopies(t, in, r, fast)
			restore()
			if q.used != 1 {
				t.Fatalf("%d salts drawn, want 1 (one scrypt)", q.used)
			}
			for i, c := range copies {
				if len(c) != len(copies[0]) {
					t.Fatalf("copy %d is %d bytes, copy 0 is %d", i, len(c), len(copies[0]))
				}
				if len(c) != len(single) {
					t.Errorf("copy %d is %d bytes, Seal gives %d", i, len(c), len(single))
				}
				salt, wf := stanza(t, c)
				if wantSalt, _ := stanza(t, copies[0]); salt != wantSalt || wf != "10" {
					t.Errorf("copy %d: salt %s wf %s, want copy 0's salt %s and 10", i, salt, wf, wantSalt)
				}
				out, err := envelope.Open(c, testMnemonic, nil)
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("copy %d: Open: %v", i, err)
				}
				open := func(b []byte) ([]byte, error) { return envelope.Open(b, testMnemonic, nil) }
				if err := envelope.PostCheck(c, in, testMnemonic, open); err != nil {
					t.Fatalf("copy %d fails a post-seal check: %v", i, err)
				}
				if _, err := envelope.Open(c, otherMnemonic, nil); !errors.Is(err, envelope.ErrWrongMnemonic) {
					t.Fatalf("copy %d opens with another mnemonic: %v", i, err)
				}
			}
			// Pairwise: only the version and stanza lines are shared; every
			// 64-byte segment differs, and the whole payload region does.
			shared := stanzaLineEnd(t, copies[0])
			hdr := headerLen(t, copies[0])
			for i := range copies {
				for j := i + 1; j < len(copies); j++ {
					a, b := copies[i], copies[j]
					if !bytes.Equal(a[:shared], b[:shared]) {
						t.Errorf("copies %d and %d: stanza lines differ", i, j)
					}
					if a[shared] == b[shared] && bytes.Equal(a[shared:shared+8], b[shared:shared+8]) {
						t.Errorf("copies %d and %d: wrapped file keys start alike", i, j)
					}
					if headerLen(t, b) != hdr {
						t.Errorf("copies %d and %d: headers of different lengths", i, j)
					}
					for off := 0; off < len(a); off += 64 {
						end := min(off+64, len(a))
						if bytes.Equal(a[off:end], b[off:end]) {
							t.Errorf("copies %d and %d: segment at %d (header %d bytes) is identical", i, j, off, hdr)
						}
					}
					if bytes.Equal(a[hdr:hdr+16], b[hdr:hdr+16]) {
						t.Errorf("copies %d and %d share a payload nonce", i, j)
					}
				}
			}
		})
	}
}

func TestSealCopiesOne(t *testing.T) {
	in := testdata(t, "tsslib-eddsa.json")
	c := sealCopies(t, in, 1, fast)
	if out, err := envelope.Open(c[0], testMnemonic, nil); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("Open: %v", err)
	}
}

func TestSealCopiesMax(t *testing.T) {
	in := testdata(t, "tsslib-eddsa.json")
	copies := sealCopies(t, in, envelope.MaxCopies, trivial)
	seen := map[string]bool{}
	for i, c := range copies {
		hdr := headerLen(t, c)
		nonce := string(c[hdr : hdr+16])
		if seen[nonce] {
			t.Fatalf("copy %d repeats a payload nonce", i)
		}
		seen[nonce] = true
		if out, err := envelope.Open(c, testMnemonic, nil); err != nil || !bytes.Equal(out, in) {
			t.Fatalf("copy %d: Open: %v", i, err)
		}
	}
}

func TestSealCopiesRefuses(t *testing.T) {
	in := testdata(t, "tsslib-eddsa.json")
	for _, n := range []int{0, -1, envelope.MaxCopies + 1} {
		if out, err := envelope.SealCopies(in, testMnemonic, n, trivial); !errors.Is(err, envelope.ErrBadOptions) || out != nil {
			t.Errorf("%d copies: %d, %v; want ErrBadOptions", n, len(out), err)
		}
	}
	var se *envelope.SanityError
	if _, err := envelope.SealCopies(nil, testMnemonic, 3, trivial); !errors.As(err, &se) || se.Check != 3 {
		t.Errorf("empty plaintext: %v, want check 3", err)
	}
	var le *envelope.LimitError
	if _, err := envelope.SealCopies(make([]byte, envelope.DefaultMaxPlaintext+1), testMnemonic, 3, trivial); !errors.As(err, &le) {
		t.Errorf("oversized plaintext: %v, want a LimitError", err)
	}
	if _, err := envelope.SealCopies(in, abandonArt, 3, trivial); !errors.Is(err, envelope.ErrWeakMnemonic) {
		t.Errorf("weak mnemonic: %v, want ErrWeakMnemonic", err)
	}
	if _, err := envelope.SealCopies(in, testMnemonic, 3, &envelope.SealOptions{WorkFactor: 10}); !errors.Is(err, envelope.ErrBadOptions) {
		t.Errorf("low work factor without AllowLowWorkFactor: %v", err)
	}
}

// A chance match in the stanza line would be in every copy: SealCopies draws
// a new salt (a second scrypt).
func TestSealCopiesRetriesSaltAfterStanzaMatch(t *testing.T) {
	q := &saltQueue{salts: [][]byte{poisonedSalt(t), randomSalt(t)}}
	defer envelope.SetSaltSource(q)()
	in := testdata(t, "tsslib-eddsa.json")
	copies := sealCopies(t, in, 3, fast)
	if q.used != 2 {
		t.Fatalf("%d salts drawn, want 2", q.used)
	}
	for i, c := range copies {
		if strings.Contains(string(c), "hamster") {
			t.Fatalf("copy %d contains the word", i)
		}
		if out, err := envelope.Open(c, testMnemonic, nil); err != nil || !bytes.Equal(out, in) {
			t.Fatalf("copy %d: Open: %v", i, err)
		}
	}
}

func TestSealCopiesFailsOnPersistentStanzaMatch(t *testing.T) {
	q := &saltQueue{}
	for range envelope.SealAttempts + 1 {
		q.salts = append(q.salts, poisonedSalt(t))
	}
	defer envelope.SetSaltSource(q)()
	out, err := envelope.SealCopies([]byte("share"), testMnemonic, 3, trivial)
	var se *envelope.SanityError
	if !errors.As(err, &se) || se.Check != 5 || se.Attempts != envelope.SealAttempts || out != nil {
		t.Fatalf("%d copies, %v; want check 5 after %d attempts", len(out), err, envelope.SealAttempts)
	}
	if q.used != envelope.SealAttempts {
		t.Fatalf("%d salts drawn, want %d", q.used, envelope.SealAttempts)
	}
	if strings.Contains(err.Error(), "hamster") {
		t.Fatalf("error quotes the word: %v", err)
	}
}

// A chance match in one copy's own bytes seals that copy again, with the
// same key: no new salt.
func TestSealCopiesRetriesCopyAfterChanceMatch(t *testing.T) {
	q := &saltQueue{salts: [][]byte{randomSalt(t)}}
	defer envelope.SetSaltSource(q)()
	checks, restore := envelope.FailCopyChecks(envelope.SealAttempts - 1)
	defer restore()
	in := testdata(t, "tsslib-eddsa.json")
	copies := sealCopies(t, in, 3, fast)
	if want := 3 + envelope.SealAttempts - 1; checks() != want {
		t.Fatalf("%d checks ran, want %d", checks(), want)
	}
	if q.used != 1 {
		t.Fatalf("%d salts drawn, want 1", q.used)
	}
	for i, c := range copies {
		if out, err := envelope.Open(c, testMnemonic, nil); err != nil || !bytes.Equal(out, in) {
			t.Fatalf("copy %d: Open: %v", i, err)
		}
	}
}

func TestSealCopiesFailsOnPersistentCopyMatch(t *testing.T) {
	checks, restore := envelope.FailCopyChecks(envelope.SealAttempts)
	defer restore()
	out, err := envelope.SealCopies([]byte("share"), testMnemonic, 3, trivial)
	var se *envelope.SanityError
	if !errors.As(err, &se) || se.Check != 5 || se.Attempts != envelope.SealAttempts || out != nil {
		t.Fatalf("%d copies, %v; want check 5 after %d attempts", len(out), err, envelope.SealAttempts)
	}
	if checks() != envelope.SealAttempts || !strings.Contains(err.Error(), "copy 0") {
		t.Fatalf("%d checks, %v", checks(), err)
	}
}

func ExampleSealCopies() {
	mnemonic := "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"
	share := []byte(`{"pub_key":"thorpub1addwnpepq…","participant_keys":["…"]}`)

	// One scrypt, three independent copies for three holders. Production
	// code passes nil options.
	copies, err := envelope.SealCopies(share, mnemonic, 3, &envelope.SealOptions{WorkFactor: 10, AllowLowWorkFactor: true})
	if err != nil {
		panic(err)
	}
	for i, c := range copies {
		out, err := envelope.Open(c, mnemonic, nil)
		fmt.Printf("copy %d: same size %v, differs from copy 0 %v, opens %v %v\n",
			i, len(c) == len(copies[0]), !bytes.Equal(c, copies[0]), bytes.Equal(out, share), err)
	}
	// Output:
	// copy 0: same size true, differs from copy 0 false, opens true <nil>
	// copy 1: same size true, differs from copy 0 true, opens true <nil>
	// copy 2: same size true, differs from copy 0 true, opens true <nil>
}
