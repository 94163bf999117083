package envelope_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/ulikunitz/xz"

	"github.com/ksb-project/ksb/envelope"
)

// spellings of testMnemonic as people write them down (issue 9 items
// 13–15): each must give the same passphrase as the canonical form.
func spellings() map[string]string {
	words := strings.Fields(testMnemonic)
	numbered, short := make([]string, len(words)), make([]string, len(words))
	for i, w := range words {
		numbered[i] = fmt.Sprintf("%d) %s", i+1, strings.ToUpper(w))
		short[i] = w
		if len(w) > 4 {
			short[i] = w[:4]
		}
	}
	return map[string]string{
		"numbered":        strings.Join(numbered, "\n"),
		"abbreviated":     strings.Join(short, " "),
		"byte-order mark": "\ufeff" + testMnemonic + "\r\n",
	}
}

// TestSpellingsOpenExistingBlobs: the committed blobs, sealed with the
// canonical mnemonic before mnemonics were read this way, open with every
// spelling: the passphrase is the canonical mnemonic, unchanged.
func TestSpellingsOpenExistingBlobs(t *testing.T) {
	for name, s := range seeds {
		want := s.plaintext(t)
		for how, m := range spellings() {
			out, err := envelope.Open(testdata(t, name), m, &envelope.Limits{MaxWorkFactor: s.workFactor})
			if err != nil || !bytes.Equal(out, want) {
				t.Errorf("%s with the %s mnemonic: %v", name, how, err)
			}
		}
	}
}

// TestSpellingsSealCanonicalPassphrase: a blob sealed from any spelling is
// opened by stock age with the canonical mnemonic as passphrase.
func TestSpellingsSealCanonicalPassphrase(t *testing.T) {
	for how, m := range spellings() {
		blob, err := envelope.Seal([]byte(`{"pub_key":"thorpub1test"}`), m, trivial)
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		id, err := age.NewScryptIdentity(testMnemonic)
		if err != nil {
			t.Fatal(err)
		}
		r, err := age.Decrypt(bytes.NewReader(blob), id)
		if err != nil {
			t.Fatalf("%s: stock age with the canonical mnemonic: %v", how, err)
		}
		zr, err := xz.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(zr); err != nil || string(got) != `{"pub_key":"thorpub1test"}` {
			t.Fatalf("%s: %q, %v", how, got, err)
		}
		if err := envelope.CheckMnemonic(m); err != nil {
			t.Errorf("CheckMnemonic(%s): %v", how, err)
		}
		if envelope.Entropy(m) != envelope.Entropy(testMnemonic) {
			t.Errorf("%s: entropy %v, canonical %v", how, envelope.Entropy(m), envelope.Entropy(testMnemonic))
		}
	}
}

// TestCheckMnemonicNamesInvisible: an invisible character is named, not
// reported as a word missing from the list.
func TestCheckMnemonicNamesInvisible(t *testing.T) {
	err := envelope.CheckMnemonic(strings.Replace(testMnemonic, "razor", "ra\u200bzor", 1))
	if !errors.Is(err, envelope.ErrWeakMnemonic) || !strings.Contains(err.Error(), "U+200B ZERO WIDTH SPACE") {
		t.Fatalf("err = %v", err)
	}
}

// TestTrustedWorkFactor is issue 9 item 18 at the API: the cap stays at
// MaxWorkFactor unless the caller trusts the blob, and then goes no higher
// than stock age's own, MaxTrustedWorkFactor.
func TestTrustedWorkFactor(t *testing.T) {
	blob := sealedEddsa(t) // work factor 10
	salt, _ := stanza(t, blob)
	for _, l := range []envelope.Limits{
		{MaxWorkFactor: envelope.MaxWorkFactor + 1},
		{MaxWorkFactor: envelope.MaxTrustedWorkFactor + 1, AllowHighWorkFactor: true},
	} {
		if _, err := envelope.Open(blob, testMnemonic, &l); !errors.Is(err, envelope.ErrBadOptions) {
			t.Errorf("%+v: err = %v, want ErrBadOptions", l, err)
		}
	}
	trusted := &envelope.Limits{MaxWorkFactor: envelope.MaxTrustedWorkFactor, AllowHighWorkFactor: true}
	if _, err := envelope.Open(blob, testMnemonic, trusted); err != nil {
		t.Fatalf("trusted limits: %v", err)
	}
	// A header above even the trusted cap is refused before scrypt runs
	// (2^30 would take hours: returning at all proves it did not).
	bomb := replaceOnce(t, blob, salt+" 10\n", salt+" 30\n")
	var le *envelope.LimitError
	if _, err := envelope.Open(bomb, testMnemonic, trusted); !errors.As(err, &le) || le.Limit != envelope.MaxTrustedWorkFactor || le.Got != 30 {
		t.Fatalf("work factor 30 with trusted limits: %v", err)
	}
}

func TestGenerateMnemonic(t *testing.T) {
	seen := map[string]bool{}
	for range 4 {
		m, err := envelope.GenerateMnemonic()
		if err != nil {
			t.Fatal(err)
		}
		if err := envelope.CheckMnemonic(m); err != nil {
			t.Fatalf("generated mnemonic fails the checks: %v", err)
		}
		if n := len(strings.Fields(m)); n != envelope.MnemonicWords {
			t.Fatalf("%d words, want %d", n, envelope.MnemonicWords)
		}
		if seen[m] {
			t.Fatal("the same mnemonic twice")
		}
		seen[m] = true
	}
}
