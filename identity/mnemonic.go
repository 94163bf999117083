package identity

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	bip39 "github.com/cosmos/go-bip39"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/unicode/runenames"
)

// AbbreviationLen is how many leading letters identify a BIP39 English word:
// the word list is built so that no two words share their first four letters
// (BIP39, "Wordlists"), which is why steel backups keep only those.
const AbbreviationLen = 4

// byteOrderMark is U+FEFF at the start of a text file: an encoding marker
// some editors (Windows Notepad) write, not part of the text.
const byteOrderMark = '\ufeff'

// maxListNumber bounds the numbers of a numbered list: BIP39 mnemonics have
// at most 24 words, so a longer number is not a list number.
const maxListNumber = 999

// byPrefix maps the first AbbreviationLen letters of every word of 4 letters
// or more to the word.
var byPrefix = func() map[string]string {
	m := make(map[string]string, len(bip39.EnglishWordList))
	for _, w := range bip39.EnglishWordList {
		if len(w) < AbbreviationLen {
			continue
		}
		p := w[:AbbreviationLen]
		if _, dup := m[p]; dup {
			panic("bip39: two English words share the prefix " + p) // BIP39 guarantees they do not
		}
		m[p] = w
	}
	return m
}()

// ParseMnemonic reads a BIP39 English mnemonic as people write it down and
// returns its canonical form: the full words in lower case, separated by
// single spaces. It is the one place ksb reads a mnemonic: Read, New, Seed,
// Validate and the envelope's passphrase all use it, so every spelling of a
// mnemonic gives the same identity and opens the same backups. For a
// mnemonic already in canonical form it returns the input unchanged.
//
// Accepted, because each has exactly one meaning:
//   - any mix of spaces, tabs, line breaks, no-break spaces and commas
//     between words; upper or lower case; Unicode NFKD (as BIP39 requires);
//   - a byte-order mark (U+FEFF) at the very start, as editors write it;
//   - a numbered list: "1. word", "1) word", "1: word", "1.word" or
//     "1 word", one per line or all on one line. Every word must then carry
//     a number and the numbers must be 1 to n, each once, in any order: a
//     two-column recovery sheet read row by row (1, 13, 2, 14, …) is put back
//     in order;
//   - a word cut to its first four letters or more ("hams", "hamst" for
//     "hamster").
//
// Everything else is refused with an error that wraps ErrInvalidMnemonic
// and names the problem and the word's position (its number, in a numbered
// list), never the word: an invisible character (zero-width space or
// joiner, soft hyphen, a byte-order mark inside the text) or a letter from
// another alphabet is named by its code point and Unicode name; a word not
// in the list; fewer than four letters of a word that is longer; a broken
// numbering; a word count BIP39 does not allow (12, 15, 18, 21, 24); a bad
// checksum.
func ParseMnemonic(text string) (string, error) {
	m, _, err := parse(text)
	return m, err
}

// item is one word of the text, with its list number (0 if none).
type item struct {
	word string
	num  int
}

// label names a word in messages: its list number, else its position.
func label(num, pos int) string {
	if num > 0 {
		return fmt.Sprintf("word %d", num)
	}
	return fmt.Sprintf("word %d", pos)
}

// parse is ParseMnemonic; it also returns the entropy bytes.
func parse(text string) (string, []byte, error) {
	text = norm.NFKD.String(text)
	text = strings.TrimPrefix(text, string(byteOrderMark))
	text = strings.ToLower(text)
	tokens := strings.FieldsFunc(text, func(r rune) bool { return unicode.IsSpace(r) || r == ',' })

	var items []item
	pending := 0 // a list number waiting for its word
	for _, tok := range tokens {
		if r, ok := onlyInvisible(tok); ok {
			where := "before word 1"
			if len(items) > 0 {
				where = "after " + label(items[len(items)-1].num, len(items))
			}
			return "", nil, invalid("an invisible character, %s, %s: delete it", runeName(r), where)
		}
		num, word := splitNumber(tok)
		if num != 0 && pending != 0 {
			return "", nil, invalid("numbered list: number %d has no word", pending)
		}
		if word == "" {
			pending = num
			continue
		}
		if num == 0 {
			num, pending = pending, 0
		}
		if num > maxListNumber {
			return "", nil, invalid("%s starts with a number too large for a numbered list", label(0, len(items)+1))
		}
		if err := checkRunes(word, label(num, len(items)+1)); err != nil {
			return "", nil, err
		}
		items = append(items, item{word: word, num: num})
	}
	if pending != 0 {
		return "", nil, invalid("numbered list: number %d has no word", pending)
	}
	if len(items) == 0 {
		return "", nil, invalid("no words")
	}
	if err := order(items); err != nil {
		return "", nil, err
	}

	words := make([]string, len(items))
	for i, it := range items {
		w, err := expand(it.word, label(0, i+1))
		if err != nil {
			return "", nil, err
		}
		words[i] = w
	}
	switch len(words) {
	case 12, 15, 18, 21, 24:
	default:
		return "", nil, invalid("%d words (BIP39 allows 12, 15, 18, 21 or 24)", len(words))
	}
	canonical := strings.Join(words, " ")
	ent, err := bip39.MnemonicToByteArray(canonical)
	if err != nil {
		return "", nil, invalid("checksum does not match: a word is wrong or two words are swapped")
	}
	return canonical, ent, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMnemonic}, args...)...)
}

// splitNumber splits a token into a leading list number ("12", "12.",
// "12)", "12:") and the word after it. num is 0 without a number; word is
// "" for a token that is only a number.
func splitNumber(tok string) (num int, word string) {
	i := 0
	for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, tok
	}
	num, err := strconv.Atoi(tok[:i])
	if err != nil || num > maxListNumber {
		num = maxListNumber + 1 // refused by the caller as not a list number
	}
	rest := tok[i:]
	if rest != "" && strings.ContainsRune(".):", rune(rest[0])) {
		rest = rest[1:]
	}
	if num == 0 {
		num = -1 // "0." is a number, and not a valid one
	}
	return num, rest
}

// order checks a numbered list and sorts it by number. A list with no
// numbers is left as it is.
func order(items []item) error {
	numbered := 0
	for _, it := range items {
		if it.num != 0 {
			numbered++
		}
	}
	if numbered == 0 {
		return nil
	}
	if numbered < len(items) {
		for i, it := range items {
			if it.num != 0 {
				continue
			}
			if i == 0 {
				return invalid("numbered list: the first word has no number, but others have")
			}
			return invalid("numbered list: the word after the word numbered %d has no number", items[i-1].num)
		}
	}
	seen := make(map[int]bool, len(items))
	highest := 0
	for _, it := range items {
		if it.num < 1 {
			return invalid("numbered list: number 0 (lists start at 1)")
		}
		if seen[it.num] {
			return invalid("numbered list: number %d is used twice", it.num)
		}
		seen[it.num] = true
		highest = max(highest, it.num)
	}
	for n := 1; n <= highest; n++ {
		if !seen[n] {
			return invalid("numbered list: no word numbered %d (the numbers run to %d)", n, highest)
		}
	}
	slices.SortFunc(items, func(a, b item) int { return a.num - b.num })
	return nil
}

// checkRunes refuses a word with a character no BIP39 English word has and
// that a person may not see or tell apart: anything outside ASCII, named by
// code point and Unicode name. ASCII that is not a-z is left to expand,
// which reports the word as not in the list.
func checkRunes(word, where string) error {
	for _, r := range word {
		if r < 0x80 {
			continue
		}
		if invisible(r) {
			return invalid("%s contains an invisible character, %s: delete and retype that word", where, runeName(r))
		}
		return invalid("%s contains %s, which no BIP39 English word has: retype that word", where, runeName(r))
	}
	return nil
}

// onlyInvisible reports whether tok is made of invisible characters only,
// and the first one.
func onlyInvisible(tok string) (rune, bool) {
	first := rune(-1)
	for _, r := range tok {
		if !invisible(r) {
			return 0, false
		}
		if first < 0 {
			first = r
		}
	}
	return first, first >= 0
}

// invisible reports whether r renders as nothing: Unicode format characters
// (zero-width space, joiners, soft hyphen, byte-order mark, word joiner,
// bidirectional marks).
func invisible(r rune) bool { return unicode.Is(unicode.Cf, r) }

// runeName is "U+200B ZERO WIDTH SPACE".
func runeName(r rune) string {
	name := runenames.Name(r)
	if r == byteOrderMark {
		name += " (byte-order mark)"
	}
	if name == "" {
		return fmt.Sprintf("U+%04X", r)
	}
	return fmt.Sprintf("U+%04X %s", r, name)
}

// expand returns the BIP39 English word w stands for: w itself, or the one
// word it is the first four or more letters of.
func expand(w, where string) (string, error) {
	if _, ok := bip39.ReverseWordMap[w]; ok {
		return w, nil
	}
	if len(w) >= AbbreviationLen {
		if full, ok := byPrefix[w[:AbbreviationLen]]; ok && strings.HasPrefix(full, w) {
			return full, nil
		}
	}
	// The position, never the word: the word may be a typo of a secret one.
	if len(w) < AbbreviationLen && isLower(w) && prefixOfAny(w) {
		return "", invalid("%s is not in the BIP39 English word list (an abbreviation keeps at least the first %d letters)", where, AbbreviationLen)
	}
	return "", invalid("%s is not in the BIP39 English word list", where)
}

func isLower(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}

func prefixOfAny(w string) bool {
	for _, full := range bip39.EnglishWordList {
		if strings.HasPrefix(full, w) {
			return true
		}
	}
	return false
}

// IsWord reports whether s, in any case, reads as one BIP39 English word:
// the word itself or its first AbbreviationLen letters or more. Commands
// use it to spot a mnemonic typed as arguments.
func IsWord(s string) bool {
	_, err := expand(strings.ToLower(s), "")
	return err == nil
}
