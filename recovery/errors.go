package recovery

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrBadOptions is returned by Run, before anything else happens, when
	// Options cannot work: no mnemonic or an invalid one, no OutDir, a
	// bootstrap address that is not a multiaddr with /p2p/, a negative
	// duration.
	ErrBadOptions = errors.New("recovery: invalid options")

	// ErrNoSource is returned when there is nowhere to ask: no chain RPC (or
	// NoChain) and no bootstrap peers.
	ErrNoSource = errors.New("recovery: no chain RPC and no bootstrap peers")

	// ErrChainUnreachable is returned when the chain RPC did not answer and
	// there are no bootstrap peers to fall back on. It wraps the transport
	// error.
	ErrChainUnreachable = errors.New("recovery: chain RPC unreachable")

	// ErrNoPeers is returned by the gossip path when none of the bootstrap
	// peers could be dialled. It wraps the dial errors.
	ErrNoPeers = errors.New("recovery: no bootstrap peer reachable")

	// ErrNoBackups is returned when nothing is known to be held for this
	// node: the chain has no commitment of its address, or, without the
	// chain, no holder returned a blob that opens with the mnemonic before
	// the gossip timeout. A wrong mnemonic, or a wrong address prefix (HRP),
	// gives this error. Nothing is written.
	ErrNoBackups = errors.New("recovery: no backups found for this node")

	// ErrIncomplete matches an *IncompleteError: some vaults were not
	// recovered (the others were written).
	ErrIncomplete = errors.New("recovery: not every vault was recovered")

	// ErrExists is the error of a vault whose output file already exists
	// with other bytes than the share recovered, when Options.Force is
	// false. The file is left as it was. (A file with exactly the recovered
	// bytes is no error: VaultResult.Unchanged.)
	ErrExists = errors.New("exists and differs from the recovered share (use --force to replace it)")

	// ErrDigestMismatch is the error of a blob whose sha256 is not the
	// digest its holder's entry header announced (gossip path).
	ErrDigestMismatch = errors.New("blob sha256 differs from its header's digest")

	// ErrBadCopy is the error of a copy that does not verify against the
	// chain's commitment (custody.VerifyCopy: its root and commit path do
	// not reach the committed root, as the copy index the chain names), or
	// of a holder that sent no copy of its custody.
	ErrBadCopy = errors.New("copy does not match the committed root")

	// ErrWrongVault matches a *WrongVaultError: a blob that opens with the
	// mnemonic and is a keyshare, but of another vault than the one it was
	// offered for.
	ErrWrongVault = errors.New("keyshare of another vault")

	// ErrHolderTimeout is the error of a holder that delivered nothing
	// within Options.HolderTimeout (it accepted the stream and stayed
	// silent, or could not be reached).
	ErrHolderTimeout = errors.New("holder sent nothing in time")

	// ErrNoAddress is the error of a holder the chain names but that is not
	// an active node with a usable multiaddr, so it cannot be dialled.
	ErrNoAddress = errors.New("holder has no known address")

	// ErrNoValidBlob is the error of a committed vault for which no holder
	// delivered a copy that verifies; the reasons are in Report.Skipped.
	ErrNoValidBlob = errors.New("no holder delivered a valid blob")

	// ErrBadVaultName is the error of a vault key that cannot be part of a
	// file name (see the package documentation); nothing is written for it.
	ErrBadVaultName = errors.New("vault key is not a safe file name")
)

// IncompleteError lists the vaults that were not recovered. It matches
// ErrIncomplete with errors.Is. The vaults that were recovered are written
// and listed in the Report.
type IncompleteError struct {
	// Missing are the vaults not recovered, in vault order, each with why.
	Missing []Missing
}

// Missing is one vault that was not recovered.
type Missing struct {
	Vault string
	Err   error
}

func (e *IncompleteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %d vault(s) missing:", ErrIncomplete, len(e.Missing))
	for i, m := range e.Missing {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s (%v)", m.Vault, m.Err)
	}
	return b.String()
}

// Is reports whether target is ErrIncomplete.
func (e *IncompleteError) Is(target error) bool { return target == ErrIncomplete }

// Vaults returns the keys of the missing vaults.
func (e *IncompleteError) Vaults() []string {
	out := make([]string, len(e.Missing))
	for i, m := range e.Missing {
		out[i] = m.Vault
	}
	return out
}

// WrongVaultError is a blob that opened and parsed as a keyshare of vault
// Got while it was offered as a share of vault Want. It matches
// ErrWrongVault.
type WrongVaultError struct {
	Want, Got string
}

func (e *WrongVaultError) Error() string {
	return fmt.Sprintf("%v: offered for %s, is a share of %s", ErrWrongVault, e.Want, e.Got)
}

// Unwrap returns ErrWrongVault.
func (e *WrongVaultError) Unwrap() error { return ErrWrongVault }
