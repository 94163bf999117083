package recovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/internal/safefile"
	"github.com/ksb-project/ksb/keyshare"
)

// maxVaultNameLen caps a vault key used in a file name: the chain's own cap
// on vault keys (attest.MaxVaultKeyLen), well under any file system's
// 255-byte name limit with "localstate-" and ".json" around it.
const maxVaultNameLen = 160

// FileName returns the name Run gives the keyshare file of vault, as
// Bifrost names it: "localstate-<vault>.json". It fails with
// ErrBadVaultName unless vault is 1 to 160 characters of A-Z, a-z, 0-9, '.',
// '_', ':' and '-' (every bech32 and hex vault key is), so that a hostile
// vault string cannot name another path.
func FileName(vault string) (string, error) {
	if vault == "" || len(vault) > maxVaultNameLen {
		return "", fmt.Errorf("%w: %d characters", ErrBadVaultName, len(vault))
	}
	for i := 0; i < len(vault); i++ {
		c := vault[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return "", fmt.Errorf("%w: byte %#02x at %d", ErrBadVaultName, c, i)
		}
	}
	return "localstate-" + vault + ".json", nil
}

// openShare decrypts blob with the mnemonic, at most maxConcurrentOpens at
// once, and parses the plaintext as a keyshare. It returns the plaintext,
// which the caller clears once written, and the share's vault key.
func (c *config) openShare(ctx context.Context, blob []byte) ([]byte, string, error) {
	select {
	case c.opens <- struct{}{}:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	pt, err := envelope.Open(blob, c.id.Mnemonic(), nil)
	<-c.opens
	if err != nil {
		return nil, "", fmt.Errorf("opening blob: %w", err)
	}
	info, err := keyshare.Parse(pt)
	if err != nil {
		clear(pt)
		return nil, "", err
	}
	return pt, info.VaultPubKey, nil
}

// open is openShare that also requires the share to be of vault.
func (c *config) open(ctx context.Context, blob []byte, vault string) ([]byte, error) {
	pt, got, err := c.openShare(ctx, blob)
	if err != nil {
		return nil, err
	}
	if got != vault {
		clear(pt)
		return nil, &WrongVaultError{Want: vault, Got: got}
	}
	return pt, nil
}

// checkDigest reports whether blob hashes to digest.
func checkDigest(blob []byte, digest [32]byte) error {
	if sha256.Sum256(blob) != digest {
		return ErrDigestMismatch
	}
	return nil
}

// write writes the keyshare of vault into OutDir (see writeAtomic),
// creating OutDir (mode 0700) if needed, and returns the path. A file
// already there with exactly data is left as it is and reported unchanged;
// one with other bytes is refused with ErrExists unless Force.
func (c *config) write(vault string, data []byte) (path string, unchanged bool, err error) {
	name, err := FileName(vault)
	if err != nil {
		return "", false, err
	}
	path = filepath.Join(c.OutDir, name)
	if same, err := sameContent(path, data); err != nil {
		return "", false, err
	} else if same {
		return path, true, nil
	}
	// Created only now, so that a recovery that writes nothing (refused,
	// interrupted, nothing found) leaves no empty directory behind.
	if err := os.MkdirAll(c.OutDir, outDirMode); err != nil {
		return "", false, fmt.Errorf("creating output directory: %w", err)
	}
	return path, false, writeAtomic(path, data, c.Force)
}

// reportWrite prints the outcome of writing res's file.
func (c *config) reportWrite(res *VaultResult) {
	switch {
	case res.Err != nil:
		res.File = ""
		c.progress.printf("vault %s: %v", res.Vault, res.Err)
	case res.Unchanged:
		c.progress.printf("vault %s: recovered from %s: %d bytes, already present, identical: %s", res.Vault, res.Holder, res.Bytes, res.File)
	default:
		c.progress.printf("vault %s: recovered from %s: %d bytes in %v → %s", res.Vault, res.Holder, res.Bytes, res.Duration.Round(time.Millisecond), res.File)
	}
}

// sameContent reports whether path is a regular file holding exactly data.
// Nothing at path is not an error.
func sameContent(path string, data []byte) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the existing %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("reading the existing %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != int64(len(data)) {
		return false, nil
	}
	// The size is known and equals len(data): one byte more proves a
	// file that grew meanwhile differs.
	got, err := io.ReadAll(io.LimitReader(f, int64(len(data))+1))
	if err != nil {
		return false, fmt.Errorf("reading the existing %s: %w", path, err)
	}
	return bytes.Equal(got, data), nil
}

// writeAtomic writes data to path with OutputMode, never half-written and,
// without force, never over an existing file (see safefile.Write).
func writeAtomic(path string, data []byte, force bool) error {
	err := safefile.Write(path, data, OutputMode, force)
	if errors.Is(err, safefile.ErrExists) {
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	return err
}
