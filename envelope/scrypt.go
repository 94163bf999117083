package envelope

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// The scrypt recipient as age's specification defines it
// (https://age-encryption.org/v1, "The scrypt recipient type"):
//
//	-> scrypt <base64 salt> <log2 N>
//	<base64 ChaCha20-Poly1305(key = scrypt(passphrase, label || salt, N, r=8, p=1), nonce = 0, file key)>
const (
	scryptLabel    = "age-encryption.org/v1/scrypt"
	scryptSaltSize = 16
	scryptR        = 8
	scryptP        = 1
	fileKeySize    = 16 // age's file key
)

// b64 is age's header encoding: standard base64 without padding.
func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// saltSource supplies scrypt salts; tests replace it (export_test.go) to
// force a chance match in the stanza line.
var saltSource io.Reader = rand.Reader

// scryptKey derives the key that wraps the file key.
func scryptKey(passphrase string, salt []byte, workFactor int) ([]byte, error) {
	s := make([]byte, 0, len(scryptLabel)+len(salt))
	s = append(append(s, scryptLabel...), salt...)
	k, err := scrypt.Key([]byte(passphrase), s, 1<<workFactor, scryptR, scryptP, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("scrypt: %w", err)
	}
	return k, nil
}

// keyRecipient wraps the file key with an already derived scrypt key, so Seal
// can derive the key once and use it both to wrap and to verify. The stanza
// it writes is byte for byte what age.ScryptRecipient writes.
type keyRecipient struct {
	salt       []byte
	workFactor int
	key        []byte
}

func (r *keyRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	aead, err := chacha20poly1305.New(r.key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSize) // each key wraps one file key
	return []*age.Stanza{{
		Type: "scrypt",
		Args: []string{b64(r.salt), strconv.Itoa(r.workFactor)},
		Body: aead.Seal(nil, nonce, fileKey, nil),
	}}, nil
}

// keyIdentity unwraps what keyRecipient wrapped: it accepts only a header
// with exactly one stanza equal to the one the recipient wrote, then opens
// the wrapped key with the derived scrypt key.
type keyIdentity keyRecipient

func (id *keyIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	if len(stanzas) != 1 {
		return nil, fmt.Errorf("%d stanzas, want 1", len(stanzas))
	}
	s := stanzas[0]
	if s.Type != "scrypt" || len(s.Args) != 2 ||
		s.Args[0] != b64(id.salt) || s.Args[1] != strconv.Itoa(id.workFactor) {
		return nil, errors.New("stanza differs from the one written")
	}
	aead, err := chacha20poly1305.New(id.key)
	if err != nil {
		return nil, err
	}
	if len(s.Body) != fileKeySize+aead.Overhead() {
		return nil, errors.New("wrapped file key has the wrong size")
	}
	nonce := make([]byte, chacha20poly1305.NonceSize)
	fileKey, err := aead.Open(nil, nonce, s.Body, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: wrapped file key does not open", age.ErrIncorrectIdentity)
	}
	return fileKey, nil
}

// workFactorArg is the work factor encoding age accepts: a decimal with no
// leading zero.
var workFactorArg = regexp.MustCompile(`^[1-9][0-9]*$`)

// guard stands in front of age's own scrypt identity in Open. It refuses a
// header that is not exactly one scrypt stanza (ErrNotEnvelope) and a work
// factor above the limit (*LimitError) before anything runs scrypt; only
// then does the stock identity unwrap. Its errors do not wrap
// age.ErrIncorrectIdentity, so age.Decrypt returns them as they are.
type guard struct {
	id            *age.ScryptIdentity
	maxWorkFactor int
}

func (g *guard) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	scrypts := 0
	for _, s := range stanzas {
		if s.Type == "scrypt" {
			scrypts++
		}
	}
	switch {
	case scrypts == 0:
		return nil, fmt.Errorf("%w: the age file is not passphrase-encrypted (no scrypt stanza)", ErrNotEnvelope)
	case len(stanzas) != 1:
		return nil, fmt.Errorf("%w: %d recipient stanzas; an envelope has exactly one scrypt stanza", ErrNotEnvelope, len(stanzas))
	}
	s := stanzas[0]
	if len(s.Args) != 2 || !workFactorArg.MatchString(s.Args[1]) {
		return nil, fmt.Errorf("%w: malformed scrypt stanza", ErrCorrupted)
	}
	wf, err := strconv.ParseInt(s.Args[1], 10, 64)
	if err != nil { // only a range error can get past the pattern
		wf = math.MaxInt64
	}
	if wf > int64(g.maxWorkFactor) {
		return nil, &LimitError{What: "scrypt work factor", Limit: int64(g.maxWorkFactor), Got: wf}
	}
	return g.id.Unwrap(stanzas)
}
