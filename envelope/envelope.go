package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"

	"github.com/ksb-project/ksb/envelope/internal/xzstream"
	"github.com/ksb-project/ksb/identity"
)

const (
	// DefaultWorkFactor is the scrypt work factor (log2 N) Seal uses: age's
	// own default, about a second and 256 MiB (2^18 × r=8 × 128 B) on a
	// current machine, so guessing a mnemonic costs an attacker that much
	// per guess on top of the mnemonic's 256 bits.
	DefaultWorkFactor = 18

	// MinWorkFactor is the lowest work factor Seal accepts without
	// SealOptions.AllowLowWorkFactor; lower ones exist for tests.
	MinWorkFactor = DefaultWorkFactor

	// MaxWorkFactor is the highest work factor Seal writes and Open runs by
	// default: scrypt with N = 2^20, r = 8 needs 2^20 × 8 × 128 B = 1 GiB of
	// memory and about four times the default's time. A header asking for
	// more is a CPU and memory bomb, refused before scrypt runs. It leaves
	// two steps of headroom above the default for files sealed on faster
	// machines.
	MaxWorkFactor = 20

	// MaxTrustedWorkFactor is the highest work factor Open runs for a blob
	// its caller trusts (Limits.AllowHighWorkFactor): stock age's own cap
	// (filippo.io/age ScryptIdentity, "15s on a modern machine"), 4 GiB of
	// memory. rage and `age -p` on fast machines pick 21 or 22 when they
	// time scrypt to a second, so an operator's own file may need it; a
	// blob from the network never gets it.
	MaxTrustedWorkFactor = 22

	// DefaultMaxPlaintext is the largest plaintext Seal accepts and Open
	// decompresses by default. The largest realistic share, a 40-member
	// go-tss ECDSA vault, is about 165 KiB (tss-lib save data grows about
	// 3 KiB per party, base64 adds a third); 1 MiB is six times that, equals
	// keyshare.MaxFileSize, and keeps post-seal check 5's chance matches rare
	// (see sealAttempts).
	DefaultMaxPlaintext = 1 << 20

	// DefaultMaxBlob is the largest blob Open reads by default: the largest
	// plaintext plus room for what xz and age add when the data does not
	// compress (under 0.1%: xz 3 bytes per 64 KiB chunk, age 16 bytes per
	// 64 KiB chunk, and headers of a few hundred bytes).
	DefaultMaxBlob = DefaultMaxPlaintext + 64<<10

	// sealAttempts bounds how many times Seal seals again after a chance
	// match (post-seal checks 1, 3, 4 and 5). The payload is random bytes, so
	// a three-letter word of the mnemonic turns up in an L-byte blob with
	// probability about L/2^24 per attempt: 0.16% for the 60 KB fixture
	// (27 KB sealed), 3% for a 1 MiB share that compresses to 500 KB. Five
	// independent attempts all failing is then below 10^-7 per word even at
	// that size, and below 10^-13 for the fixture; words of four letters or
	// more are 256 times rarer. A persistent match means something is wrong,
	// so Seal fails loudly.
	sealAttempts = 5
)

// fixedPrefix is how every age file with a scrypt stanza starts: age's
// version line, then the stanza's type tag. It is the same in every such
// file, whatever the passphrase and plaintext, so a match inside it cannot
// carry anything secret; the containment checks scan what follows it.
const fixedPrefix = "age-encryption.org/v1\n-> scrypt "

// ageIntro is age v1's first header line.
const ageIntro = "age-encryption.org/v1\n"

// armorIntro starts an ASCII-armored age file.
const armorIntro = "-----BEGIN AGE ENCRYPTED FILE-----"

// SealOptions tunes Seal. The zero value and nil mean the defaults.
type SealOptions struct {
	// WorkFactor is the scrypt work factor (log2 N); 0 means
	// DefaultWorkFactor. It must not exceed MaxWorkFactor, and values below
	// MinWorkFactor need AllowLowWorkFactor.
	WorkFactor int
	// AllowLowWorkFactor permits work factors from 1 to MinWorkFactor-1. It
	// makes a mnemonic guess cheap and exists so tests stay fast.
	AllowLowWorkFactor bool
}

func (o *SealOptions) workFactor() (int, error) {
	if o == nil || o.WorkFactor == 0 {
		return DefaultWorkFactor, nil
	}
	wf := o.WorkFactor
	if wf < 1 || wf > MaxWorkFactor {
		return 0, fmt.Errorf("%w: work factor %d outside 1..%d", ErrBadOptions, wf, MaxWorkFactor)
	}
	if wf < MinWorkFactor && !o.AllowLowWorkFactor {
		return 0, fmt.Errorf("%w: work factor %d is below %d (allowed only with AllowLowWorkFactor)", ErrBadOptions, wf, MinWorkFactor)
	}
	return wf, nil
}

// Limits bounds what Open accepts. A zero field means its default; nil means
// DefaultLimits.
type Limits struct {
	// MaxWorkFactor is the highest scrypt work factor Open runs: at most
	// MaxWorkFactor, or MaxTrustedWorkFactor with AllowHighWorkFactor.
	MaxWorkFactor int
	// AllowHighWorkFactor permits MaxWorkFactor above MaxWorkFactor, up to
	// MaxTrustedWorkFactor. Only for a blob the caller trusts, such as an
	// operator's own file: a hostile blob could then cost 4 GiB of memory
	// and about fifteen seconds of CPU before it is found wrong.
	AllowHighWorkFactor bool
	// MaxPlaintext is the most bytes Open decompresses.
	MaxPlaintext int64
	// MaxBlob is the largest blob Open reads.
	MaxBlob int64
}

// DefaultLimits returns MaxWorkFactor, DefaultMaxPlaintext and DefaultMaxBlob.
func DefaultLimits() Limits {
	return Limits{MaxWorkFactor: MaxWorkFactor, MaxPlaintext: DefaultMaxPlaintext, MaxBlob: DefaultMaxBlob}
}

func (l *Limits) resolve() (Limits, error) {
	r := DefaultLimits()
	if l == nil {
		return r, nil
	}
	highest := MaxWorkFactor
	if l.AllowHighWorkFactor {
		highest = MaxTrustedWorkFactor
	}
	if l.MaxWorkFactor < 0 || l.MaxWorkFactor > highest {
		return r, fmt.Errorf("%w: MaxWorkFactor %d outside 1..%d", ErrBadOptions, l.MaxWorkFactor, highest)
	}
	if l.MaxPlaintext < 0 || l.MaxBlob < 0 {
		return r, fmt.Errorf("%w: negative size limit", ErrBadOptions)
	}
	if l.MaxWorkFactor != 0 {
		r.MaxWorkFactor = l.MaxWorkFactor
	}
	if l.MaxPlaintext != 0 {
		r.MaxPlaintext = l.MaxPlaintext
	}
	if l.MaxBlob != 0 {
		r.MaxBlob = l.MaxBlob
	}
	return r, nil
}

// Seal checks mnemonic (CheckMnemonic), compresses plaintext into one xz
// stream and encrypts it into a binary age file to the scrypt passphrase
// canonical mnemonic (identity.ParseMnemonic, so every spelling of one
// mnemonic gives the same passphrase), then runs the five post-seal checks. After a
// chance match it seals again with fresh randomness, up to a bounded number
// of attempts, then fails with a *SanityError. The plaintext must be 1 to
// DefaultMaxPlaintext bytes. A nil opts means the defaults.
func Seal(plaintext []byte, mnemonic string, opts *SealOptions) ([]byte, error) {
	z, pass, wf, err := prepareSeal(plaintext, mnemonic, opts)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		blob, key, err := sealOnce(z, pass, wf)
		if err != nil {
			return nil, err
		}
		open := func(b []byte) ([]byte, error) { return openWith(b, (*keyIdentity)(key), DefaultLimits()) }
		err = postCheck(blob, plaintext, pass, open)
		var se *SanityError
		if err == nil {
			return blob, nil
		}
		if !errors.As(err, &se) || se.Check == 2 || attempt == sealAttempts {
			if se != nil {
				se.Attempts = attempt
			}
			return nil, err
		}
	}
}

// sealOnce draws a salt, derives the scrypt key once, and encrypts z to it.
// It returns the blob and the recipient (salt, work factor, key) so the
// caller can verify the blob without a second scrypt.
func sealOnce(z []byte, pass string, wf int) ([]byte, *keyRecipient, error) {
	r, err := newKeyRecipient(pass, wf)
	if err != nil {
		return nil, nil, err
	}
	blob, err := encryptTo(z, r)
	if err != nil {
		return nil, nil, err
	}
	return blob, r, nil
}

// prepareSeal runs the checks every seal starts with, in this order: the
// options, the plaintext's size, the mnemonic (CheckMnemonic); then it
// compresses the plaintext. It returns the xz stream, the normalised
// passphrase and the work factor.
func prepareSeal(plaintext []byte, mnemonic string, opts *SealOptions) (z []byte, pass string, wf int, err error) {
	wf, err = opts.workFactor()
	if err != nil {
		return nil, "", 0, err
	}
	if len(plaintext) == 0 {
		// Every output contains the empty string: check 3 cannot pass.
		return nil, "", 0, &SanityError{Check: 3}
	}
	if len(plaintext) > DefaultMaxPlaintext {
		return nil, "", 0, &LimitError{What: "plaintext size", Limit: DefaultMaxPlaintext, Got: int64(len(plaintext))}
	}
	if pass, err = passphrase(mnemonic); err != nil {
		return nil, "", 0, err
	}
	z, err = xzstream.Encode(plaintext)
	if err != nil {
		return nil, "", 0, err
	}
	return z, pass, wf, nil
}

// newKeyRecipient draws a salt and derives the scrypt key: the one scrypt
// of a seal.
func newKeyRecipient(pass string, wf int) (*keyRecipient, error) {
	salt := make([]byte, scryptSaltSize)
	if _, err := io.ReadFull(saltSource, salt); err != nil {
		return nil, fmt.Errorf("reading salt: %w", err)
	}
	key, err := scryptKey(pass, salt, wf)
	if err != nil {
		return nil, err
	}
	return &keyRecipient{salt: salt, workFactor: wf, key: key}, nil
}

// encryptTo encrypts z into a binary age file to r. age.Encrypt draws a
// fresh file key, hence a fresh payload nonce and key, on every call.
func encryptTo(z []byte, r *keyRecipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if _, err := w.Write(z); err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return buf.Bytes(), nil
}

// postCheck runs ADR 004's five post-seal checks on blob; open decrypts a
// blob (check 2 goes through the whole age and xz path). Checks 3 to 5 scan
// everything after fixedPrefix: no word can straddle its end, which is a
// space, since BIP39 words are letters only.
func postCheck(blob, plaintext []byte, pass string, open func([]byte) ([]byte, error)) error {
	if bytes.Equal(blob, plaintext) {
		return &SanityError{Check: 1}
	}
	got, err := open(blob)
	if err != nil {
		return &SanityError{Check: 2, cause: err}
	}
	if !bytes.Equal(got, plaintext) {
		return &SanityError{Check: 2, cause: errors.New("opened plaintext differs")}
	}
	if !bytes.HasPrefix(blob, []byte(fixedPrefix)) {
		return &SanityError{Check: 2, cause: errors.New("output does not start with an age scrypt header")}
	}
	return containmentCheck(blob[len(fixedPrefix):], plaintext, pass)
}

// containmentCheck runs checks 3 to 5 on b: it must contain neither the
// plaintext, nor the passphrase, nor any word of it.
func containmentCheck(b, plaintext []byte, pass string) error {
	if bytes.Contains(b, plaintext) {
		return &SanityError{Check: 3}
	}
	if bytes.Contains(b, []byte(pass)) {
		return &SanityError{Check: 4}
	}
	for _, w := range bytes.Fields([]byte(pass)) {
		if bytes.Contains(b, w) {
			return &SanityError{Check: 5}
		}
	}
	return nil
}

// Open decrypts and decompresses a blob made by Seal, or by
// `xz | age -p` typing the canonical mnemonic (identity.ParseMnemonic; any
// spelling of the mnemonic may be passed to Open). Before running scrypt it
// refuses blobs over limits.MaxBlob (*LimitError), anything that is not a
// binary age file (ErrNotAgeFile), headers that are not exactly one scrypt
// stanza (ErrNotEnvelope), work factors over limits.MaxWorkFactor
// (*LimitError) and invalid mnemonics (ErrWrongMnemonic). Then: a mnemonic
// that does not unwrap the file key gives ErrWrongMnemonic; a bad header MAC,
// a truncated or altered payload ErrCorrupted; an authentic plaintext that is
// not one xz stream ErrNotEnvelope; more than limits.MaxPlaintext bytes of
// output *LimitError. A nil limits means DefaultLimits.
func Open(blob []byte, mnemonic string, limits *Limits) ([]byte, error) {
	l, err := limits.resolve()
	if err != nil {
		return nil, err
	}
	if int64(len(blob)) > l.MaxBlob {
		return nil, &LimitError{What: "blob size", Limit: l.MaxBlob, Got: int64(len(blob))}
	}
	if !bytes.HasPrefix(blob, []byte(ageIntro)) {
		if bytes.HasPrefix(bytes.TrimSpace(blob), []byte(armorIntro)) {
			return nil, fmt.Errorf("%w: ASCII-armored age file; envelopes are binary", ErrNotAgeFile)
		}
		return nil, ErrNotAgeFile
	}
	pass, err := identity.ParseMnemonic(mnemonic)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongMnemonic, err)
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil { // only an empty passphrase, which Validate refuses
		return nil, fmt.Errorf("%w: %v", ErrWrongMnemonic, err)
	}
	id.SetMaxWorkFactor(l.MaxWorkFactor)
	return openWith(blob, &guard{id: id, maxWorkFactor: l.MaxWorkFactor}, l)
}

// openWith is Open after the cheap checks, with the identity that unwraps
// the file key: the guarded stock scrypt identity for Open, the already
// derived key for Seal's check 2.
func openWith(blob []byte, id age.Identity, l Limits) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(blob), id)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		switch {
		case errors.Is(err, ErrNotEnvelope), errors.Is(err, ErrOverLimits), errors.Is(err, ErrCorrupted):
			return nil, err // from guard
		case errors.As(err, &noMatch):
			return nil, fmt.Errorf("%w: it does not unwrap the file key (or the scrypt stanza was altered)", ErrWrongMnemonic)
		default: // header parse error, bad header MAC, missing nonce, bad stanza body
			return nil, fmt.Errorf("%w: %v", ErrCorrupted, err)
		}
	}
	// The payload is at most the blob's size, which is already bounded.
	payload, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupted, err)
	}
	out, err := xzstream.Decode(payload, l.MaxPlaintext)
	switch {
	case errors.Is(err, xzstream.ErrTooLarge):
		return nil, &LimitError{What: "plaintext size", Limit: l.MaxPlaintext}
	case err != nil:
		return nil, fmt.Errorf("%w: payload: %v", ErrNotEnvelope, err)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}
