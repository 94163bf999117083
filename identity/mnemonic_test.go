package identity_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/identity"
)

// hamster is a published 24-word BIP39 vector (trezor/python-mnemonic), a
// test key only.
const hamster = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"

// numbered writes hamster's words as a numbered list: f formats word i
// (1-based) and sep joins the items.
func numbered(f func(i int, w string) string, sep string) string {
	words := strings.Fields(hamster)
	items := make([]string, len(words))
	for i, w := range words {
		items[i] = f(i+1, w)
	}
	return strings.Join(items, sep)
}

// twoColumns is hamster as read row by row off a two-column recovery sheet
// (1–12 on the left, 13–24 on the right): 1 13 2 14 …
func twoColumns() string {
	words := strings.Fields(hamster)
	var b strings.Builder
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "%d. %s    %d. %s\n", i+1, words[i], i+13, words[i+12])
	}
	return b.String()
}

// abbreviated keeps the first n letters of every word (whole words shorter
// than n stay whole).
func abbreviated(n int) string {
	words := strings.Fields(hamster)
	for i, w := range words {
		if len(w) > n {
			words[i] = w[:n]
		}
	}
	return strings.Join(words, " ")
}

// wantSameIdentity checks that text reads as hamster: the same key, and the
// canonical mnemonic (24 full words, single spaces) as what seeds and
// envelope passphrases use.
func wantSameIdentity(t *testing.T, text string) {
	t.Helper()
	want, err := identity.New(hamster)
	if err != nil {
		t.Fatal(err)
	}
	got, err := identity.New(text)
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	if got.PeerID() != want.PeerID() || got.Mnemonic() != hamster {
		t.Fatalf("%q read as %q, want %q", text, got.Mnemonic(), hamster)
	}
	if err := identity.Validate(text); err != nil {
		t.Fatalf("Validate(%q): %v", text, err)
	}
}

// TestNumberedLists is issue 9 item 13: a mnemonic written as a numbered
// list, one per line or on one line, reads as its words.
func TestNumberedLists(t *testing.T) {
	for name, text := range map[string]string{
		"1. per line":       numbered(func(i int, w string) string { return fmt.Sprintf("%d. %s", i, w) }, "\n"),
		"2) per line":       numbered(func(i int, w string) string { return fmt.Sprintf("%d) %s", i, w) }, "\n"),
		"1. one line":       numbered(func(i int, w string) string { return fmt.Sprintf("%d. %s", i, w) }, " "),
		"2) one line":       numbered(func(i int, w string) string { return fmt.Sprintf("%d) %s", i, w) }, " "),
		"1.word":            numbered(func(i int, w string) string { return fmt.Sprintf("%d.%s", i, w) }, " "),
		"1: word, CRLF":     numbered(func(i int, w string) string { return fmt.Sprintf("%d: %s", i, w) }, "\r\n"),
		"bare numbers":      numbered(func(i int, w string) string { return fmt.Sprintf("%d %s", i, w) }, "\n"),
		"padded numbers":    numbered(func(i int, w string) string { return fmt.Sprintf("%02d. %s", i, w) }, "\n"),
		"two columns":       twoColumns(),
		"upper case, tabs":  numbered(func(i int, w string) string { return fmt.Sprintf("%d.\t%s", i, strings.ToUpper(w)) }, "\n"),
		"trailing newlines": numbered(func(i int, w string) string { return fmt.Sprintf("%d. %s", i, w) }, "\n") + "\n\n",
	} {
		t.Run(name, func(t *testing.T) { wantSameIdentity(t, text) })
	}
}

// TestAbbreviatedWords is issue 9 item 14: BIP39 English words are unique
// by their first four letters, so steel backups keep only those.
func TestAbbreviatedWords(t *testing.T) {
	for name, text := range map[string]string{
		"four letters":       abbreviated(4),
		"five letters":       abbreviated(5),
		"numbered and short": "1. hams 2. diag 3. priv 4. dutc 5. caus 6. dela 7. priv 8. meat 9. slid 10. todd 11. razo 12. book 13. happ 14. fanc 15. gosp 16. tenn 17. mapl 18. dile 19. loan 20. word 21. shru 22. infl 23. dela 24. leng",
		"upper case":         strings.ToUpper(abbreviated(4)),
	} {
		t.Run(name, func(t *testing.T) { wantSameIdentity(t, text) })
	}
}

// TestInvisibleCharacters is issue 9 item 15: a byte-order mark at the
// start of a file is an encoding marker and is accepted; an invisible
// character anywhere else is refused by name and position, not reported as
// a word missing from the word list.
func TestInvisibleCharacters(t *testing.T) {
	wantSameIdentity(t, "\ufeff"+hamster+"\n")
	wantSameIdentity(t, strings.ReplaceAll(hamster, " ", "\u00a0")) // no-break spaces are spaces

	words := strings.Fields(hamster)
	with := func(word int, s string) string {
		w := append([]string(nil), words...)
		w[word-1] = w[word-1][:3] + s + w[word-1][3:]
		return strings.Join(w, " ")
	}
	for name, c := range map[string]struct {
		text string
		want []string
	}{
		"zero width space in word 3":  {with(3, "\u200b"), []string{"word 3", "U+200B", "ZERO WIDTH SPACE"}},
		"zero width joiner in word 1": {with(1, "\u200d"), []string{"word 1", "U+200D", "ZERO WIDTH JOINER"}},
		"soft hyphen in word 24":      {with(24, "\u00ad"), []string{"word 24", "U+00AD", "SOFT HYPHEN"}},
		"byte-order mark in word 7":   {with(7, "\ufeff"), []string{"word 7", "U+FEFF"}},
		"word joiner between words":   {strings.Replace(hamster, " ", " \u2060 ", 1), []string{"U+2060", "WORD JOINER", "after word 1"}},
		"combining accent":            {with(2, "\u0301"), []string{"word 2", "U+0301", "COMBINING ACUTE ACCENT"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := identity.Validate(c.text)
			if !errors.Is(err, identity.ErrInvalidMnemonic) {
				t.Fatalf("err = %v, want ErrInvalidMnemonic", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "not in the BIP39") {
				t.Errorf("err = %q: an invisible character is not a missing word", err)
			}
			noWordIn(t, err)
		})
	}
}

// TestMnemonicRefusals: a spelling with more than one meaning, or none, is
// refused naming the exact problem and never quoting a word.
func TestMnemonicRefusals(t *testing.T) {
	words := strings.Fields(hamster)
	list := func(skip int, renumber map[int]int) string {
		var b strings.Builder
		for i, w := range words {
			n := i + 1
			if n == skip {
				continue
			}
			if r, ok := renumber[n]; ok {
				n = r
			}
			fmt.Fprintf(&b, "%d. %s\n", n, w)
		}
		return b.String()
	}
	for name, c := range map[string]struct {
		text string
		want string
	}{
		"empty":                        {"  \n", "no words"},
		"23 words":                     {strings.Join(words[:23], " "), "23 words"},
		"word not in list":             {strings.Replace(hamster, "toddler", "toddlr", 1), "word 10 is not in the BIP39 English word list"},
		"too short to expand":          {strings.Replace(hamster, "hamster", "ham", 1), "word 1 is not in the BIP39 English word list"},
		"prefix then typo":             {strings.Replace(hamster, "diagram", "diagrm", 1), "word 2 is not in the BIP39"},
		"digit in a word":              {strings.Replace(hamster, "meat", "me4t", 1), "word 8 is not in the BIP39"},
		"checksum":                     {strings.Replace(hamster, "length", "abandon", 1), "checksum"},
		"number missing":               {list(7, nil), "no word numbered 7"},
		"number twice":                 {list(0, map[int]int{5: 4}), "number 4"},
		"number out of range":          {list(0, map[int]int{24: 25}), "no word numbered 24 (the numbers run to 25)"},
		"number zero":                  {list(0, map[int]int{24: 0}), "number 0"},
		"huge number":                  {"99999. " + hamster, "number too large"},
		"mixed numbering":              {"1. " + hamster, "numbered"},
		"number without word":          {list(0, nil) + "25.", "number 25"},
		"numbered 24, unnumbered rest": {strings.Replace(list(0, nil), "24. ", "", 1), "word numbered"},
	} {
		t.Run(name, func(t *testing.T) {
			err := identity.Validate(c.text)
			if !errors.Is(err, identity.ErrInvalidMnemonic) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalidMnemonic containing %q", err, c.want)
			}
			noWordIn(t, err)
		})
	}
}

// noWordIn fails if err quotes any word of hamster (or a typo of one).
func noWordIn(t *testing.T, err error) {
	t.Helper()
	msg := strings.ToLower(err.Error())
	for _, w := range append(strings.Fields(hamster), "toddlr", "diagrm", "me4t", "ham ") {
		// "word" is a word of hamster and of every message.
		if len(w) >= 4 && w != "word" && strings.Contains(msg, w) {
			t.Errorf("err %q quotes %q", msg, w)
		}
	}
}

// TestReadNormalises: every source goes through the same reading, so a
// numbered, abbreviated file gives the canonical mnemonic.
func TestReadNormalises(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mnemonic")
	text := "\ufeff1. hams 2. diag 3. priv 4. dutc 5. caus 6. dela 7. priv 8. meat\n9. slid 10. todd 11. razo 12. book 13. happ 14. fanc 15. gosp 16. tenn\n17. mapl 18. dile 19. loan 20. word 21. shru 22. infl 23. dela 24. leng\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := identity.Read(identity.Source{File: p})
	if err != nil || m != hamster {
		t.Fatalf("Read = %q, %v; want the canonical mnemonic", m, err)
	}
	m, err = identity.Read(identity.Source{Getenv: func(string) string { return text }})
	if err != nil || m != hamster {
		t.Fatalf("Read from the environment = %q, %v", m, err)
	}
}

// TestCanonicalUnchanged: every published vector, already canonical, reads
// as itself, so seeds and envelope passphrases of canonical input are what
// they always were.
func TestCanonicalUnchanged(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "bip39-trezor-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ English [][4]string }
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, vec := range append(v.English, [4]string{"", hamster}) {
		if got, err := identity.ParseMnemonic(vec[1]); err != nil || got != vec[1] {
			t.Errorf("ParseMnemonic(%q) = %q, %v", vec[1], got, err)
		}
	}
}

func TestHomoglyphNamed(t *testing.T) {
	err := identity.Validate(strings.Replace(hamster, "razor", "r\u0430zor", 1)) // Cyrillic а
	if !errors.Is(err, identity.ErrInvalidMnemonic) || !strings.Contains(err.Error(), "word 11 contains U+0430 CYRILLIC SMALL LETTER A") {
		t.Fatalf("err = %v", err)
	}
}

// TestReadStdinAndPermissions: "-" reads standard input; a mnemonic file
// its group or others can read or write is refused unless the caller's
// OnInsecureFile accepts it (issue 9 items 5 and 12).
func TestReadStdinAndPermissions(t *testing.T) {
	m, err := identity.Read(identity.Source{File: "-", Stdin: strings.NewReader("1. hams 2. diag 3. priv 4. dutc 5. caus 6. dela 7. priv 8. meat 9. slid 10. todd 11. razo 12. book 13. happ 14. fanc 15. gosp 16. tenn 17. mapl 18. dile 19. loan 20. word 21. shru 22. infl 23. dela 24. leng\n")})
	if err != nil || m != hamster {
		t.Fatalf("stdin: %q, %v", m, err)
	}
	_, err = identity.Read(identity.Source{File: "-", Stdin: strings.NewReader("hamster diagram")})
	if !errors.Is(err, identity.ErrInvalidMnemonic) || !strings.Contains(err.Error(), "standard input") {
		t.Fatalf("bad stdin: %v", err)
	}

	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o602} {
		p := filepath.Join(dir, fmt.Sprintf("m%o", mode))
		os.WriteFile(p, []byte(hamster), 0o600)
		os.Chmod(p, mode)
		_, err := identity.Read(identity.Source{File: p})
		var ie *identity.InsecureFileError
		if !errors.Is(err, identity.ErrInsecureFile) || !errors.As(err, &ie) || ie.Mode.Perm() != mode || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %o: err = %v, want an InsecureFileError", mode, err)
		}
		var seen *identity.InsecureFileError
		m, err := identity.Read(identity.Source{File: p, OnInsecureFile: func(e *identity.InsecureFileError) error { seen = e; return nil }})
		if err != nil || m != hamster || seen == nil {
			t.Fatalf("mode %o accepted by the caller: %q, %v (asked: %v)", mode, m, err, seen != nil)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o700} {
		p := filepath.Join(dir, fmt.Sprintf("ok%o", mode))
		os.WriteFile(p, []byte(hamster), 0o600)
		os.Chmod(p, mode)
		if m, err := identity.Read(identity.Source{File: p}); err != nil || m != hamster {
			t.Fatalf("mode %o: %q, %v", mode, m, err)
		}
	}
	if _, err := identity.Read(identity.Source{File: dir}); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("directory: %v", err)
	}
}

func TestValidateHRP(t *testing.T) {
	id, err := identity.New(hamster)
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"thor", "tthor", "sthor", "a", "!~", strings.Repeat("x", identity.MaxHRPLen)} {
		if err := identity.ValidateHRP(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
		a, err := identity.AddressFromPubKey(id.PubKey(), ok)
		if err != nil || len(a) > 90 {
			t.Errorf("%q: address %q (%d characters), %v", ok, a, len(a), err)
			continue
		}
		if hrp, _, err := identity.ParseAddress(a); err != nil || hrp != ok {
			t.Errorf("%q: address %s does not decode: %q, %v", ok, a, hrp, err)
		}
	}
	for bad, want := range map[string]string{
		"":         "empty",
		"th or":    "character 3",
		"thör":     "U+00F6",
		"THOR":     "upper case",
		"tHor":     "upper case",
		"th\x7for": "U+007F",
		strings.Repeat("x", identity.MaxHRPLen+1): "at most 51",
	} {
		err := identity.ValidateHRP(bad)
		if !errors.Is(err, identity.ErrBadHRP) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want ErrBadHRP with %q", bad, err, want)
		}
		if bad == "" {
			continue // AddressFromPubKey documents "" as DefaultHRP
		}
		if a, err := identity.AddressFromPubKey(id.PubKey(), bad); !errors.Is(err, identity.ErrBadHRP) {
			t.Errorf("AddressFromPubKey(%q) = %q, %v", bad, a, err)
		}
	}
}

func TestInsecureFileMessage(t *testing.T) {
	for mode, want := range map[os.FileMode]string{
		0o644: "its group and other users can read it",
		0o640: "its group can read it",
		0o620: "its group can change it",
		0o606: "other users can read and change it",
		0o664: "its group can read and change it, other users can read it",
		0o711: "its group and other users can execute it",
	} {
		e := &identity.InsecureFileError{Path: "m", Mode: mode}
		if !strings.Contains(e.Error(), want) || !strings.Contains(e.Error(), fmt.Sprintf("mode %04o", mode)) {
			t.Errorf("mode %o: %q, want %q", mode, e.Error(), want)
		}
	}
}
