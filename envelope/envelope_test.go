package envelope_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	bip39 "github.com/cosmos/go-bip39"
	"github.com/ulikunitz/xz"

	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
)

// testMnemonic is a published BIP39 test vector (trezor/python-mnemonic,
// entropy 68a79eaca2324873eacc50cb9c6eca8cc68ea5d936f98787c60c7ebc74e6ce7c).
// Its byte entropy is 4.18 and it has no three-letter word, so chance
// matches in tests are rare.
const testMnemonic = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"

// otherMnemonic is another published vector, used as the wrong mnemonic.
const otherMnemonic = "panda eyebrow bullet gorilla call smoke muffin taste mesh discover soft ostrich alcohol speed nation flash devote level hobby quick inner drive ghost inside"

// Weak but valid published vectors.
const (
	abandonArt = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art"
	zooVote    = "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote"
	twelve     = "legal winner thank year wave sausage worth useful legal winner thank yellow"
)

// fast seals at a low work factor so tests stay quick.
var fast = &envelope.SealOptions{WorkFactor: 10, AllowLowWorkFactor: true}

// trivial is the cheapest work factor, for tests that open many blobs.
var trivial = &envelope.SealOptions{WorkFactor: 1, AllowLowWorkFactor: true}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seal(t testing.TB, plaintext []byte, opts *envelope.SealOptions) []byte {
	t.Helper()
	blob, err := envelope.Seal(plaintext, testMnemonic, opts)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return blob
}

var (
	eddsaBlobOnce sync.Once
	eddsaBlob     []byte
)

// sealedEddsa returns the 5 KB EdDSA fixture sealed at work factor 10, sealed
// once per test binary. Callers must not modify it.
func sealedEddsa(t testing.TB) []byte {
	eddsaBlobOnce.Do(func() { eddsaBlob = seal(t, testdata(t, "tsslib-eddsa.json"), fast) })
	if eddsaBlob == nil {
		t.Fatal("sealing the fixture failed earlier")
	}
	return eddsaBlob
}

// stanza returns the arguments of the blob's first stanza line.
func stanza(t testing.TB, blob []byte) (salt, workFactor string) {
	t.Helper()
	lines := strings.SplitN(string(blob), "\n", 3)
	f := strings.Fields(lines[1])
	if len(f) != 4 || f[0] != "->" || f[1] != "scrypt" {
		t.Fatalf("stanza line %q", lines[1])
	}
	return f[2], f[3]
}

func TestSealOpenRoundTrip(t *testing.T) {
	for _, name := range []string{"tsslib-ecdsa.json", "tsslib-eddsa.json", "gotss-ecdsa.json"} {
		t.Run(name, func(t *testing.T) {
			in := testdata(t, name)
			blob := seal(t, in, fast)
			if !bytes.HasPrefix(blob, []byte(envelope.FixedPrefix)) {
				t.Fatalf("blob starts %q", blob[:40])
			}
			if _, wf := stanza(t, blob); wf != "10" {
				t.Fatalf("work factor %s, want 10", wf)
			}
			if len(blob) >= len(in) {
				t.Errorf("sealed %d bytes into %d: not compressed", len(in), len(blob))
			}
			out, err := envelope.Open(blob, testMnemonic, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, in) {
				t.Fatal("opened plaintext differs")
			}
		})
	}
}

// What Seal writes must open with the stock age scrypt identity and the
// stock xz reader, not only with this package.
func TestSealOpensWithStockLibraries(t *testing.T) {
	in := testdata(t, "tsslib-ecdsa.json")
	blob := seal(t, in, fast)
	id, err := age.NewScryptIdentity(testMnemonic)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(bytes.NewReader(blob), id)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if payload[7] != xz.CRC64 {
		t.Errorf("xz check type %#x, want CRC64", payload[7])
	}
	zr, err := xz.ReaderConfig{SingleStream: true}.NewReader(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, in) {
		t.Fatal("stock age + xz give different bytes")
	}
}

// A file made with the stock age scrypt recipient and the stock xz writer
// opens.
func TestOpenStockLibrariesFile(t *testing.T) {
	in := testdata(t, "gotss-ecdsa.json")
	blob := stockSeal(t, xzCompress(t, in), testMnemonic, 10)
	out, err := envelope.Open(blob, testMnemonic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, in) {
		t.Fatal("opened plaintext differs")
	}
}

func xzCompress(t testing.TB, p []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stockSeal encrypts payload with age's own scrypt recipient.
func stockSeal(t testing.TB, payload []byte, pass string, workFactor int) []byte {
	t.Helper()
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(workFactor)
	return encrypt(t, payload, r)
}

func encrypt(t testing.TB, payload []byte, rs ...age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSealNormalisesMnemonic(t *testing.T) {
	in := []byte("share bytes")
	messy := "  " + strings.ToUpper(strings.ReplaceAll(testMnemonic, " ", " \t "))
	blob, err := envelope.Seal(in, messy, fast)
	if err != nil {
		t.Fatal(err)
	}
	// The passphrase is the normalised mnemonic: the stock identity needs it
	// exactly, Open normalises whatever it is given.
	id, _ := age.NewScryptIdentity(testMnemonic)
	if _, err := age.Decrypt(bytes.NewReader(blob), id); err != nil {
		t.Fatalf("stock age with the normalised mnemonic: %v", err)
	}
	if out, err := envelope.Open(blob, messy, nil); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("Open with the messy mnemonic: %v", err)
	}
}

func TestEntropy(t *testing.T) {
	for m, want := range map[string]float64{
		"":            0,
		"aaaa":        0,
		"ab":          1,
		"abcd":        2,
		" A  b ":      math.Log2(3), // normalised to "a b": three distinct bytes
		abandonArt:    2.5666,
		zooVote:       1.6980,
		testMnemonic:  4.1776,
		otherMnemonic: 4.1902,
	} {
		if got := envelope.Entropy(m); math.Abs(got-want) > 5e-5 {
			t.Errorf("Entropy(%.20q) = %.4f, want %.4f", m, got, want)
		}
	}
}

func TestCheckMnemonic(t *testing.T) {
	for _, m := range []string{testMnemonic, otherMnemonic, "  " + strings.ToUpper(testMnemonic) + "\n"} {
		if err := envelope.CheckMnemonic(m); err != nil {
			t.Errorf("CheckMnemonic(%.20q…) = %v", m, err)
		}
	}
	badChecksum := strings.Replace(testMnemonic, "length", "abandon", 1)
	notAWord := strings.Replace(testMnemonic, "hamster", "hamsters", 1)
	for name, c := range map[string]struct {
		m       string
		invalid bool // also wraps identity.ErrInvalidMnemonic
	}{
		// A word count BIP39 does not allow is an invalid mnemonic; a valid
		// one of 12 words is only too short to seal with.
		"empty":            {"", true},
		"12 words":         {twelve, false},
		"23 words":         {strings.TrimSuffix(testMnemonic, " length"), true},
		"25 words":         {testMnemonic + " length", true},
		"abandon … art":    {abandonArt, false},
		"zoo … vote":       {zooVote, false},
		"bad checksum":     {badChecksum, true},
		"not a BIP39 word": {notAWord, true},
	} {
		t.Run(name, func(t *testing.T) {
			m := c.m
			err := envelope.CheckMnemonic(m)
			if !errors.Is(err, envelope.ErrWeakMnemonic) {
				t.Fatalf("err = %v, want ErrWeakMnemonic", err)
			}
			if c.invalid != errors.Is(err, identity.ErrInvalidMnemonic) {
				t.Errorf("err = %v; wraps identity.ErrInvalidMnemonic: want %v", err, c.invalid)
			}
			if strings.Contains(err.Error(), "hamster") || strings.Contains(err.Error(), "length") {
				t.Errorf("error quotes a word of the mnemonic: %v", err)
			}
			// Seal runs the same checks and writes nothing.
			blob, serr := envelope.Seal([]byte("share"), m, fast)
			if !errors.Is(serr, envelope.ErrWeakMnemonic) || blob != nil {
				t.Fatalf("Seal: %d bytes, %v", len(blob), serr)
			}
		})
	}
}

// Every 24-word BIP39 reference vector that is not degenerate passes the
// entropy check; the degenerate ones fail it.
func TestCheckMnemonicReferenceVectors(t *testing.T) {
	var vectors map[string][][]string
	if err := json.Unmarshal(testdata(t, "bip39-vectors-24.json"), &vectors); err != nil {
		t.Fatal(err)
	}
	degenerate := map[string]bool{abandonArt: true, zooVote: true}
	n := 0
	for _, v := range vectors["english"] {
		m := v[1]
		err := envelope.CheckMnemonic(m)
		if degenerate[m] != errors.Is(err, envelope.ErrWeakMnemonic) {
			t.Errorf("%.30q…: %v (degenerate %v)", m, err, degenerate[m])
		}
		n++
	}
	if n != 8 {
		t.Fatalf("%d vectors, want the 8 24-word ones", n)
	}
}

func TestSealOptions(t *testing.T) {
	for _, opts := range []*envelope.SealOptions{nil, {}, {AllowLowWorkFactor: true}} {
		if wf, err := envelope.WorkFactor(opts); wf != envelope.DefaultWorkFactor || err != nil {
			t.Errorf("%+v: work factor %d, %v; want the default %d", opts, wf, err, envelope.DefaultWorkFactor)
		}
	}
	if wf, err := envelope.WorkFactor(&envelope.SealOptions{WorkFactor: 20}); wf != 20 || err != nil {
		t.Errorf("work factor 20: %d, %v", wf, err)
	}
	for name, opts := range map[string]*envelope.SealOptions{
		"low without allow": {WorkFactor: 10},
		"above maximum":     {WorkFactor: envelope.MaxWorkFactor + 1, AllowLowWorkFactor: true},
		"negative":          {WorkFactor: -1, AllowLowWorkFactor: true},
	} {
		t.Run(name, func(t *testing.T) {
			blob, err := envelope.Seal([]byte("share"), testMnemonic, opts)
			if !errors.Is(err, envelope.ErrBadOptions) || blob != nil {
				t.Fatalf("%d bytes, err %v; want ErrBadOptions", len(blob), err)
			}
		})
	}
}

func TestSealRefusesPlaintextSizes(t *testing.T) {
	blob, err := envelope.Seal(nil, testMnemonic, fast)
	var se *envelope.SanityError
	if !errors.As(err, &se) || se.Check != 3 || se.Attempts != 0 || blob != nil {
		t.Fatalf("empty plaintext: %d bytes, %v; want sanity check 3 without attempts", len(blob), err)
	}
	big := make([]byte, envelope.DefaultMaxPlaintext+1)
	blob, err = envelope.Seal(big, testMnemonic, fast)
	var le *envelope.LimitError
	if !errors.As(err, &le) || !errors.Is(err, envelope.ErrOverLimits) || le.Got != int64(len(big)) || blob != nil {
		t.Fatalf("oversized plaintext: %d bytes, %v", len(blob), err)
	}
}

// saltQueue serves the given salts in order, then fails: Seal must not ask
// for more salts than the test planned.
type saltQueue struct {
	salts [][]byte
	used  int
}

func (q *saltQueue) Read(p []byte) (int, error) {
	if q.used == len(q.salts) {
		return 0, errors.New("salt queue exhausted")
	}
	n := copy(p, q.salts[q.used])
	q.used++
	return n, nil
}

// poisonedSalt is a salt whose base64 form in the stanza line spells a word
// of testMnemonic: a genuine chance match in a genuine, valid blob.
func poisonedSalt(t testing.TB) []byte {
	salt, err := base64.RawStdEncoding.Strict().DecodeString("xxhamsterxxxxxxxxxxxxA")
	if err != nil || len(salt) != 16 {
		t.Fatalf("salt: %v", err)
	}
	return salt
}

func randomSalt(t testing.TB) []byte {
	s := make([]byte, 16)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRetriesAfterChanceMatch(t *testing.T) {
	q := &saltQueue{salts: [][]byte{poisonedSalt(t)}}
	for range envelope.SealAttempts - 1 {
		q.salts = append(q.salts, randomSalt(t))
	}
	defer envelope.SetSaltSource(q)()
	in := testdata(t, "tsslib-eddsa.json")
	blob := seal(t, in, fast)
	salt, _ := stanza(t, blob)
	if q.used < 2 {
		t.Fatalf("Seal used %d salt(s): it did not retry after the chance match", q.used)
	}
	if want := base64.RawStdEncoding.EncodeToString(q.salts[q.used-1]); salt != want {
		t.Fatalf("blob salt %s, want the last drawn %s", salt, want)
	}
	if strings.Contains(string(blob), "hamster") {
		t.Fatal("returned blob still contains the word")
	}
	if out, err := envelope.Open(blob, testMnemonic, nil); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("retried blob does not open: %v", err)
	}
}

func TestSealFailsOnPersistentMatch(t *testing.T) {
	q := &saltQueue{}
	for range envelope.SealAttempts + 1 {
		q.salts = append(q.salts, poisonedSalt(t))
	}
	defer envelope.SetSaltSource(q)()
	blob, err := envelope.Seal([]byte("share"), testMnemonic, trivial)
	var se *envelope.SanityError
	if !errors.As(err, &se) || !errors.Is(err, envelope.ErrSanityCheck) || blob != nil {
		t.Fatalf("%d bytes, err %v; want a SanityError", len(blob), err)
	}
	if se.Check != 5 || se.Attempts != envelope.SealAttempts || q.used != envelope.SealAttempts {
		t.Fatalf("check %d after %d attempts, %d salts drawn; want check 5 after %d", se.Check, se.Attempts, q.used, envelope.SealAttempts)
	}
	if strings.Contains(err.Error(), "hamster") {
		t.Fatalf("error message quotes the mnemonic's word: %v", err)
	}
}

func TestSealFailsWhenSaltUnavailable(t *testing.T) {
	defer envelope.SetSaltSource(&saltQueue{})()
	if blob, err := envelope.Seal([]byte("share"), testMnemonic, trivial); err == nil || blob != nil {
		t.Fatalf("%d bytes, err %v", len(blob), err)
	}
}

// mnemonicWith builds a valid 24-word mnemonic that starts with the given
// words, completing it with fixed words and the first last word whose
// checksum is right. It is made at run time for tests only.
func mnemonicWith(t testing.TB, first ...string) string {
	fill := strings.Fields("hamster diagram private dutch cause delay meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict")
	words := append(append([]string{}, first...), fill[:23-len(first)]...)
	for _, last := range bip39.WordList {
		m := strings.Join(append(words, last), " ")
		if identity.Validate(m) == nil {
			return m
		}
	}
	t.Fatal("no checksum word")
	return ""
}

// "age" and "cry" are BIP39 words inside the fixed start of every age scrypt
// file; a mnemonic holding them must still seal.
func TestSealWordsInFixedPrefixDoNotCount(t *testing.T) {
	m := mnemonicWith(t, "age", "cry")
	if err := envelope.CheckMnemonic(m); err != nil {
		t.Fatal(err)
	}
	in := testdata(t, "tsslib-eddsa.json")
	blob, err := envelope.Seal(in, m, fast)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if !bytes.HasPrefix(blob, []byte("age-encryption.org/v1\n-> scrypt ")) {
		t.Fatal("unexpected prefix")
	}
	if out, err := envelope.Open(blob, m, nil); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("Open: %v", err)
	}
}

func TestPostCheck(t *testing.T) {
	in := []byte("plaintext-bytes")
	ok := func([]byte) ([]byte, error) { return in, nil }
	p := envelope.FixedPrefix
	ageCry := mnemonicWith(t, "age", "cry")
	for name, c := range map[string]struct {
		blob  string
		pass  string
		open  func([]byte) ([]byte, error)
		check int
	}{
		"clean":                   {p + "SALT 10\nBODY\n--- MAC\npayload", testMnemonic, ok, 0},
		"words only in prefix":    {p + "SALT 10\nBODY\n--- MAC\npayload", ageCry, ok, 0},
		"prefix word elsewhere":   {p + "SALT 10\nBODY\n--- MAC\npayload cry", ageCry, ok, 5},
		"output equals input":     {string(in), testMnemonic, ok, 1},
		"round trip fails":        {p + "x", testMnemonic, func([]byte) ([]byte, error) { return nil, errors.New("boom") }, 2},
		"round trip differs":      {p + "x", testMnemonic, func([]byte) ([]byte, error) { return []byte("other"), nil }, 2},
		"not an age header":       {"-> scrypt x", testMnemonic, ok, 2},
		"contains input":          {p + "xx" + string(in) + "xx", testMnemonic, ok, 3},
		"input in prefix only":    {p + "x", testMnemonic, ok, 0},
		"contains passphrase":     {p + "xx" + testMnemonic + "xx", testMnemonic, ok, 4},
		"contains a word":         {p + "xxmeatxx", testMnemonic, ok, 5},
		"word in the MAC line":    {p + "SALT 10\nBODY\n--- ABloanCD\n", testMnemonic, ok, 5},
		"word right after prefix": {p + "hamster", testMnemonic, ok, 5},
		"word at the very end":    {p + "xxlength", testMnemonic, ok, 5},
	} {
		t.Run(name, func(t *testing.T) {
			err := envelope.PostCheck([]byte(c.blob), in, c.pass, c.open)
			var se *envelope.SanityError
			switch {
			case c.check == 0 && err != nil:
				t.Fatalf("err = %v, want none", err)
			case c.check != 0 && (!errors.As(err, &se) || se.Check != c.check):
				t.Fatalf("err = %v, want check %d", err, c.check)
			}
		})
	}
}

func TestOpenWrongMnemonic(t *testing.T) {
	blob := sealedEddsa(t)
	out, err := envelope.Open(blob, otherMnemonic, nil)
	if !errors.Is(err, envelope.ErrWrongMnemonic) || out != nil {
		t.Fatalf("other mnemonic: %d bytes, %v; want ErrWrongMnemonic", len(out), err)
	}
	for name, m := range map[string]string{
		"bad checksum": strings.Replace(testMnemonic, "length", "abandon", 1),
		"empty":        "",
	} {
		out, err := envelope.Open(blob, m, nil)
		if !errors.Is(err, envelope.ErrWrongMnemonic) || !errors.Is(err, identity.ErrInvalidMnemonic) || out != nil {
			t.Errorf("%s: %d bytes, %v; want ErrWrongMnemonic wrapping identity.ErrInvalidMnemonic", name, len(out), err)
		}
	}
}

func TestOpenNotAgeFile(t *testing.T) {
	blob := sealedEddsa(t)
	var armored bytes.Buffer
	aw := armor.NewWriter(&armored)
	aw.Write(blob)
	aw.Close()
	for name, b := range map[string][]byte{
		"empty":           nil,
		"text":            []byte("localstate-thorpub1.json\n"),
		"xz stream":       testdata(t, "zeros16m.xz"),
		"armored age":     armored.Bytes(),
		"intro truncated": blob[:15],
		"intro altered":   append([]byte("age-encryption.org/v2\n"), blob[22:]...),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := envelope.Open(b, testMnemonic, nil)
			if !errors.Is(err, envelope.ErrNotAgeFile) || out != nil {
				t.Fatalf("%d bytes, %v; want ErrNotAgeFile", len(out), err)
			}
		})
	}
}

// replaceOnce returns b with the first old replaced by new, failing the test
// if old is absent.
func replaceOnce(t testing.TB, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q not in blob", old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func TestOpenWorkFactorLimit(t *testing.T) {
	blob := sealedEddsa(t) // work factor 10
	salt, _ := stanza(t, blob)

	// 2^30 would need 1 TiB and hours: returning at all proves scrypt never ran.
	bomb := replaceOnce(t, blob, salt+" 10\n", salt+" 30\n")
	out, err := envelope.Open(bomb, testMnemonic, nil)
	var le *envelope.LimitError
	if !errors.As(err, &le) || le.Got != 30 || le.Limit != envelope.MaxWorkFactor || out != nil {
		t.Fatalf("work factor 30: %d bytes, %v", len(out), err)
	}
	huge := replaceOnce(t, blob, salt+" 10\n", salt+" 99999999999999999999999\n")
	if _, err := envelope.Open(huge, testMnemonic, nil); !errors.As(err, &le) {
		t.Fatalf("huge work factor: %v", err)
	}
	// A caller's lower limit applies to genuine blobs too.
	out, err = envelope.Open(blob, testMnemonic, &envelope.Limits{MaxWorkFactor: 9})
	if !errors.As(err, &le) || le.Got != 10 || le.Limit != 9 || out != nil {
		t.Fatalf("limit 9: %d bytes, %v", len(out), err)
	}
	if _, err := envelope.Open(blob, testMnemonic, &envelope.Limits{MaxWorkFactor: 10}); err != nil {
		t.Fatalf("limit 10: %v", err)
	}
	for _, bad := range []string{"010", "-1", "0", "1x"} {
		b := replaceOnce(t, blob, salt+" 10\n", salt+" "+bad+"\n")
		if _, err := envelope.Open(b, testMnemonic, nil); !errors.Is(err, envelope.ErrCorrupted) {
			t.Errorf("work factor %q: %v, want ErrCorrupted", bad, err)
		}
	}
}

func TestOpenSizeLimits(t *testing.T) {
	blob := sealedEddsa(t)
	in := testdata(t, "tsslib-eddsa.json")
	var le *envelope.LimitError

	out, err := envelope.Open(blob, testMnemonic, &envelope.Limits{MaxBlob: int64(len(blob)) - 1})
	if !errors.As(err, &le) || le.What != "blob size" || le.Got != int64(len(blob)) || out != nil {
		t.Fatalf("blob one byte over: %d bytes, %v", len(out), err)
	}
	if _, err := envelope.Open(blob, testMnemonic, &envelope.Limits{MaxBlob: int64(len(blob))}); err != nil {
		t.Fatalf("blob exactly at limit: %v", err)
	}
	out, err = envelope.Open(blob, testMnemonic, &envelope.Limits{MaxPlaintext: int64(len(in)) - 1})
	if !errors.As(err, &le) || le.What != "plaintext size" || out != nil {
		t.Fatalf("plaintext one byte over: %d bytes, %v", len(out), err)
	}
	if _, err := envelope.Open(blob, testMnemonic, &envelope.Limits{MaxPlaintext: int64(len(in))}); err != nil {
		t.Fatalf("plaintext exactly at limit: %v", err)
	}
}

// An authentic xz bomb (2.5 KB that expands to 16 MiB) stops at the limit.
func TestOpenXZBomb(t *testing.T) {
	blob := stockSeal(t, testdata(t, "zeros16m.xz"), testMnemonic, 1)
	out, err := envelope.Open(blob, testMnemonic, nil)
	var le *envelope.LimitError
	if !errors.As(err, &le) || le.Limit != envelope.DefaultMaxPlaintext || out != nil {
		t.Fatalf("%d bytes, %v; want a plaintext LimitError", len(out), err)
	}
}

func TestOpenBadLimits(t *testing.T) {
	blob := sealedEddsa(t)
	for name, l := range map[string]*envelope.Limits{
		"work factor above maximum": {MaxWorkFactor: envelope.MaxWorkFactor + 1},
		"negative work factor":      {MaxWorkFactor: -1},
		"negative plaintext":        {MaxPlaintext: -1},
		"negative blob":             {MaxBlob: -1},
	} {
		if out, err := envelope.Open(blob, testMnemonic, l); !errors.Is(err, envelope.ErrBadOptions) || out != nil {
			t.Errorf("%s: %d bytes, %v; want ErrBadOptions", name, len(out), err)
		}
	}
}

func TestOpenNotEnvelope(t *testing.T) {
	x25519, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	blob := sealedEddsa(t)
	salt, _ := stanza(t, blob)
	extra := replaceOnce(t, blob, "-> scrypt "+salt, "-> X25519 "+salt+"\nAAAA\n-> scrypt "+salt)
	for name, b := range map[string][]byte{
		"x25519 recipient":    encrypt(t, []byte("x"), x25519.Recipient()),
		"extra stanza":        extra,
		"payload is not xz":   stockSeal(t, []byte("plain json, not xz"), testMnemonic, 1),
		"payload two streams": stockSeal(t, append(xzCompress(t, []byte("a")), xzCompress(t, []byte("b"))...), testMnemonic, 1),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := envelope.Open(b, testMnemonic, nil)
			if !errors.Is(err, envelope.ErrNotEnvelope) || out != nil {
				t.Fatalf("%d bytes, %v; want ErrNotEnvelope", len(out), err)
			}
		})
	}
}

// flipB64 changes one character of a base64 string into another valid one.
func flipB64(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// How age's failures map onto the sentinels.
func TestOpenErrorMapping(t *testing.T) {
	blob := sealedEddsa(t)
	lines := strings.SplitN(string(blob), "\n", 5) // intro, stanza, body, MAC line, payload
	salt, _ := stanza(t, blob)
	body := lines[2]
	mac := strings.TrimPrefix(lines[3], "--- ")

	for name, c := range map[string]struct {
		blob []byte
		want error
	}{
		// A wrong passphrase and an altered stanza fail the same AEAD in age.
		"altered salt":        {replaceOnce(t, blob, salt, flipB64(salt, 3)), envelope.ErrWrongMnemonic},
		"altered wrapped key": {replaceOnce(t, blob, body, flipB64(body, 5)), envelope.ErrWrongMnemonic},
		// The file key unwraps but the header MAC does not match.
		"altered MAC":         {replaceOnce(t, blob, mac, flipB64(mac, 5)), envelope.ErrCorrupted},
		"altered work factor": {replaceOnce(t, blob, salt+" 10\n", salt+" 9\n"), envelope.ErrWrongMnemonic},
		"malformed header":    {replaceOnce(t, blob, "\n--- ", "\n-- "), envelope.ErrCorrupted},
		"short wrapped key":   {replaceOnce(t, blob, body, body[:20]), envelope.ErrCorrupted},
		"payload bit flipped": {flipByte(blob, len(blob)-20), envelope.ErrCorrupted},
		"nonce bit flipped":   {flipByte(blob, len(strings.Join(lines[:4], "\n"))+3), envelope.ErrCorrupted},
		"truncated payload":   {blob[:len(blob)-1], envelope.ErrCorrupted},
		"truncated in header": {blob[:len(lines[0])+len(lines[1])+5], envelope.ErrCorrupted},
		"no payload":          {blob[:len(strings.Join(lines[:4], "\n"))+1], envelope.ErrCorrupted},
		"trailing byte":       {append(bytes.Clone(blob), 0), envelope.ErrCorrupted},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := envelope.Open(c.blob, testMnemonic, nil)
			if !errors.Is(err, c.want) || out != nil {
				t.Fatalf("%d bytes, %v; want %v", len(out), err, c.want)
			}
		})
	}
}

func flipByte(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x01
	return b
}

// sentinels are every error Open may return for a bad blob.
var sentinels = []error{
	envelope.ErrWrongMnemonic, envelope.ErrCorrupted, envelope.ErrOverLimits,
	envelope.ErrNotAgeFile, envelope.ErrNotEnvelope,
}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// No single-byte change and no truncation of a blob opens, and each fails
// with one of the documented errors.
func TestOpenRejectsEveryAlteration(t *testing.T) {
	blob := seal(t, testdata(t, "tsslib-eddsa.json"), trivial)
	header := bytes.Index(blob, []byte("\n--- ")) + 48 // through the MAC line and nonce
	for i := 0; i < len(blob); i++ {
		if i > header && i < len(blob)-64 && i%17 != 0 {
			continue // the payload in between is sampled to keep the test fast
		}
		for _, b := range [][]byte{flipByte(blob, i), blob[:i]} {
			out, err := envelope.Open(b, testMnemonic, nil)
			if err == nil || out != nil || !isSentinel(err) {
				t.Fatalf("byte %d: %d bytes, %v", i, len(out), err)
			}
		}
	}
}
