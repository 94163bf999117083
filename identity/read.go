package identity

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// EnvVar is the environment variable a mnemonic may be passed in.
const EnvVar = "KSB_MNEMONIC"

// maxMnemonicFile caps how much of a mnemonic file is read: 24 words of at
// most 8 letters and their spaces are under 220 bytes; 4 KiB leaves room for
// comments-free files with odd whitespace and still refuses a wrong path that
// points at something large.
const maxMnemonicFile = 4 << 10

// Source says where Read looks for a mnemonic, in order: File, then the
// environment variable EnvVar, then a no-echo prompt when Prompt is true and
// standard input is a terminal.
type Source struct {
	File   string
	Prompt bool
	// Getenv replaces os.Getenv (for tests); nil means os.Getenv.
	Getenv func(string) string
}

// Read returns the mnemonic named by src, normalised and checked against the
// BIP39 word list and checksum.
func Read(src Source) (string, error) {
	raw, err := readRaw(src)
	if err != nil {
		return "", err
	}
	m := Normalize(raw)
	if _, err := validate(m); err != nil {
		return "", err
	}
	return m, nil
}

func readRaw(src Source) (string, error) {
	if src.File != "" {
		f, err := os.Open(src.File)
		if err != nil {
			return "", fmt.Errorf("mnemonic file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxMnemonicFile+1))
		if err != nil {
			return "", fmt.Errorf("mnemonic file: %w", err)
		}
		if len(b) > maxMnemonicFile {
			return "", fmt.Errorf("mnemonic file %s: larger than %d bytes: %w", src.File, maxMnemonicFile, ErrInvalidMnemonic)
		}
		return string(b), nil
	}
	getenv := src.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if m := getenv(EnvVar); m != "" {
		return m, nil
	}
	fd := int(os.Stdin.Fd())
	if src.Prompt && term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, "Mnemonic (24 words, not echoed): ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("reading mnemonic from terminal: %w", err)
		}
		return string(b), nil
	}
	return "", ErrNoMnemonic
}
