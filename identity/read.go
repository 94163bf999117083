package identity

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/term"
)

// EnvVar is the environment variable a mnemonic may be passed in.
const EnvVar = "KSB_MNEMONIC"

// StdinFile is the Source.File that means standard input, as in
// `--mnemonic-file -`.
const StdinFile = "-"

// maxMnemonicFile caps how much of a mnemonic file is read: 24 words of at
// most 8 letters, numbered and one per line, are under 300 bytes; 4 KiB
// leaves room for odd whitespace and still refuses a wrong path that points
// at something large.
const maxMnemonicFile = 4 << 10

// groupOtherBits are the permission bits a mnemonic file must not have, as
// ssh requires of private keys: a file its group or others can read leaks
// the node's identity and every backup's passphrase; one they can write lets
// them swap the identity.
const groupOtherBits fs.FileMode = 0o077

// Source says where Read looks for a mnemonic, in order: File, then the
// environment variable EnvVar, then a no-echo prompt when Prompt is true and
// standard input is a terminal.
type Source struct {
	// File is a mnemonic file, or StdinFile for standard input.
	File   string
	Prompt bool
	// Getenv replaces os.Getenv (for tests); nil means os.Getenv.
	Getenv func(string) string
	// Stdin replaces os.Stdin when File is StdinFile (for tests).
	Stdin io.Reader
	// OnInsecureFile decides about a regular File whose mode lets its group
	// or others read or write it (mode & 0o077 != 0). Read fails with what it
	// returns; returning nil accepts the file (after a warning, say). A nil
	// OnInsecureFile refuses the file with the *InsecureFileError.
	OnInsecureFile func(*InsecureFileError) error
}

// InsecureFileError is a mnemonic file whose group or others may read or
// write it. It matches ErrInsecureFile.
type InsecureFileError struct {
	Path string
	Mode fs.FileMode
}

func (e *InsecureFileError) Error() string {
	return fmt.Sprintf("mnemonic file %s has mode %04o: %s; make it private with `chmod 600 %s`",
		e.Path, e.Mode.Perm(), exposure(e.Mode.Perm()), e.Path)
}

// Unwrap returns ErrInsecureFile.
func (e *InsecureFileError) Unwrap() error { return ErrInsecureFile }

// exposure says who may do what to a file of mode m besides its owner:
// "its group and other users can read it".
func exposure(m fs.FileMode) string {
	verbs := func(bits fs.FileMode) string { // bits: r w x of one class
		var v []string
		if bits&4 != 0 {
			v = append(v, "read")
		}
		if bits&2 != 0 {
			v = append(v, "change")
		}
		if len(v) == 0 && bits&1 != 0 {
			v = append(v, "execute")
		}
		return strings.Join(v, " and ")
	}
	g, o := verbs(m>>3&7), verbs(m&7)
	switch {
	case g == o:
		return "its group and other users can " + g + " it"
	case o == "":
		return "its group can " + g + " it"
	case g == "":
		return "other users can " + o + " it"
	}
	return "its group can " + g + " it, other users can " + o + " it"
}

// Read returns the mnemonic named by src in canonical form (ParseMnemonic),
// checked against the BIP39 word list and checksum.
func Read(src Source) (string, error) {
	raw, err := readRaw(src)
	if err != nil {
		return "", err
	}
	m, err := ParseMnemonic(raw)
	if err != nil {
		if src.File != "" {
			name := src.File
			if name == StdinFile {
				name = "standard input"
			}
			return "", fmt.Errorf("mnemonic file %s: %w", name, err)
		}
		return "", err
	}
	return m, nil
}

func readRaw(src Source) (string, error) {
	switch {
	case src.File == StdinFile:
		in := src.Stdin
		if in == nil {
			in = os.Stdin
		}
		return readCapped(in, "standard input")
	case src.File != "":
		return readFile(src)
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

// readFile reads a mnemonic file after checking, on the open file, that it
// is private. Pipes (`--mnemonic-file <(pass show node)`) have no
// permissions worth checking and are read as they are.
func readFile(src Source) (string, error) {
	f, err := os.Open(src.File)
	if err != nil {
		return "", fmt.Errorf("mnemonic file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("mnemonic file: %w", err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("mnemonic file %s is a directory", src.File)
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&groupOtherBits != 0 {
		ie := &InsecureFileError{Path: src.File, Mode: fi.Mode()}
		decide := src.OnInsecureFile
		if decide == nil {
			decide = func(e *InsecureFileError) error { return e }
		}
		if err := decide(ie); err != nil {
			return "", err
		}
	}
	return readCapped(f, src.File)
}

func readCapped(r io.Reader, name string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxMnemonicFile+1))
	if err != nil {
		return "", fmt.Errorf("mnemonic file %s: %w", name, err)
	}
	if len(b) > maxMnemonicFile {
		return "", fmt.Errorf("mnemonic file %s: larger than %d bytes: %w", name, maxMnemonicFile, ErrInvalidMnemonic)
	}
	return string(b), nil
}
