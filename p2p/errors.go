package p2p

import (
	"errors"
	"fmt"
)

// Code is the error code of a refusal frame on the wire. Its values are part
// of the protocol: they never change meaning.
type Code uint32

// The refusal codes. Zero is not a valid code.
const (
	// CodeInternal: the holder failed (store error); the request may be
	// retried later or elsewhere.
	CodeInternal Code = 1
	// CodeMalformed: a frame did not decode or a field was out of range.
	CodeMalformed Code = 2
	// CodeNotOwner: the remote peer is not the owner the request names, or
	// asks for a blob it does not own.
	CodeNotOwner Code = 3
	// CodeNotActive: the owner is not an active node.
	CodeNotActive Code = 4
	// CodeTooLarge: the announced size is over the holder's blob cap.
	CodeTooLarge Code = 5
	// CodeDigestMismatch: the blob's sha256 differs from the header's (push
	// v1; push v2 checks a copy against its committed root: CodeBadCopy).
	CodeDigestMismatch Code = 6
	// CodeTruncated: the stream ended before the announced size was read.
	CodeTruncated Code = 7
	// CodeOverQuota: accepting the blob would put the owner over its quota.
	CodeOverQuota Code = 8
	// CodeRateLimited: the peer sent requests faster than the holder serves.
	CodeRateLimited Code = 9
	// CodeBusy: the request is over the allowance of the remote peer or of
	// its class of peers (docs/protocol.md, "Peer classes"), or the
	// holder's resource manager refused the memory it needs; retry later.
	CodeBusy Code = 10
	// CodeNotFound: the holder holds nothing matching the request.
	CodeNotFound Code = 11
	// CodeUnknownVault: push v1 only (a blob's vault was not live on
	// chain); push v2 checks custodies (CodeUnknownCustody, CodeNotLive).
	// Never reused.
	CodeUnknownVault Code = 12
	// CodeNotMember: push v1 only (the owner was not a member of the vault
	// under the "vault" strategy); the chain now picks holders. Never
	// reused.
	CodeNotMember Code = 13
	// CodeUnknownCustody: the custody the header names is not in chain
	// state as far as the holder can tell: no such custody, or the holder's
	// chain node is a block behind the pusher's. Retry after a block.
	CodeUnknownCustody Code = 14
	// CodeNotAssigned: the chain assigned the custody to another holder.
	CodeNotAssigned Code = 15
	// CodeNotLive: the custody has failed, or its commitment no longer
	// counts (superseded by a newer version, or its vault retired).
	CodeNotLive Code = 16
	// CodeWrongCopy: the header's size or copy index is not the custody's,
	// or its owner key is not the commitment's owner.
	CodeWrongCopy Code = 17
	// CodeBadCopy: the copy and its commit path do not hash to the
	// committed root (custody.VerifyCopy refused it).
	CodeBadCopy Code = 18
	// CodeNotSource: a repair came from a node the chain does not name as
	// the source of that custody (or the custody is not a repair's).
	CodeNotSource Code = 19
)

var (
	// ErrInternal is the sentinel of CodeInternal refusals.
	ErrInternal = errors.New("holder internal error")
	// ErrMalformed is the sentinel of CodeMalformed refusals, and is also
	// returned when a peer's frame does not decode.
	ErrMalformed = errors.New("malformed message")
	// ErrNotOwner is the sentinel of CodeNotOwner refusals.
	ErrNotOwner = errors.New("remote peer is not the owner")
	// ErrNotActive is the sentinel of CodeNotActive refusals.
	ErrNotActive = errors.New("owner is not an active node")
	// ErrTooLarge is the sentinel of CodeTooLarge refusals, and is also
	// returned when a peer announces a frame or blob over a cap.
	ErrTooLarge = errors.New("over size cap")
	// ErrDigestMismatch is the sentinel of CodeDigestMismatch refusals, and
	// is also returned when a fetched blob does not hash to its header's
	// digest.
	ErrDigestMismatch = errors.New("sha256 does not match the header")
	// ErrTruncated is the sentinel of CodeTruncated refusals, and is also
	// returned when a peer's stream ends early.
	ErrTruncated = errors.New("stream truncated")
	// ErrOverQuota is the sentinel of CodeOverQuota refusals.
	ErrOverQuota = errors.New("owner over quota")
	// ErrRateLimited is the sentinel of CodeRateLimited refusals.
	ErrRateLimited = errors.New("rate limited")
	// ErrBusy is the sentinel of CodeBusy refusals. Push and Fetch also
	// wrap it around a stream refused or reset by a resource manager
	// (go-libp2p's "resource limit exceeded", this node's or the holder's):
	// the holder is busy, not faulty, and the request may be retried later.
	ErrBusy = errors.New("holder busy")
	// ErrNotFound is the sentinel of CodeNotFound refusals.
	ErrNotFound = errors.New("nothing held")
	// ErrUnknownVault is the sentinel of CodeUnknownVault refusals.
	ErrUnknownVault = errors.New("vault is not live on chain")
	// ErrNotMember is the sentinel of CodeNotMember refusals.
	ErrNotMember = errors.New("owner is not a member of the vault")
	// ErrUnknownCustody is the sentinel of CodeUnknownCustody refusals, and
	// what a Custodies lookup wraps for a custody not in chain state.
	ErrUnknownCustody = errors.New("custody not in chain state")
	// ErrNotAssigned is the sentinel of CodeNotAssigned refusals.
	ErrNotAssigned = errors.New("custody assigned to another holder")
	// ErrNotLive is the sentinel of CodeNotLive refusals.
	ErrNotLive = errors.New("custody failed or its commitment no longer counts")
	// ErrWrongCopy is the sentinel of CodeWrongCopy refusals.
	ErrWrongCopy = errors.New("not the custody's copy index, size or owner")
	// ErrBadCopy is the sentinel of CodeBadCopy refusals.
	ErrBadCopy = errors.New("copy does not match the committed root")
	// ErrNotSource is the sentinel of CodeNotSource refusals, and what
	// Service.Repair returns when the chain does not name this node the
	// repair's source.
	ErrNotSource = errors.New("not the repair's source")

	// ErrBadReceipt is returned by Push and Receipt.Verify when a receipt is
	// not signed by the holder or does not describe the blob that was pushed.
	ErrBadReceipt = errors.New("bad receipt")
	// ErrProtocol is returned when a peer breaks the protocol in a way no
	// refusal code describes (an unknown code, a frame out of order, an entry
	// that is not the requester's).
	ErrProtocol = errors.New("protocol violation")
	// ErrBadConfig is returned by constructors given an unusable setting.
	ErrBadConfig = errors.New("bad p2p configuration")
	// ErrRecovering is returned by Gossip.Recover when another Recover is
	// running on the same Gossip.
	ErrRecovering = errors.New("a recovery is already running")
)

var codeErrors = map[Code]error{
	CodeInternal:       ErrInternal,
	CodeMalformed:      ErrMalformed,
	CodeNotOwner:       ErrNotOwner,
	CodeNotActive:      ErrNotActive,
	CodeTooLarge:       ErrTooLarge,
	CodeDigestMismatch: ErrDigestMismatch,
	CodeTruncated:      ErrTruncated,
	CodeOverQuota:      ErrOverQuota,
	CodeRateLimited:    ErrRateLimited,
	CodeBusy:           ErrBusy,
	CodeNotFound:       ErrNotFound,
	CodeUnknownVault:   ErrUnknownVault,
	CodeNotMember:      ErrNotMember,
	CodeUnknownCustody: ErrUnknownCustody,
	CodeNotAssigned:    ErrNotAssigned,
	CodeNotLive:        ErrNotLive,
	CodeWrongCopy:      ErrWrongCopy,
	CodeBadCopy:        ErrBadCopy,
	CodeNotSource:      ErrNotSource,
}

// String returns the code's short name, as used in metrics labels.
func (c Code) String() string {
	switch c {
	case CodeInternal:
		return "internal"
	case CodeMalformed:
		return "malformed"
	case CodeNotOwner:
		return "not_owner"
	case CodeNotActive:
		return "not_active"
	case CodeTooLarge:
		return "too_large"
	case CodeDigestMismatch:
		return "digest_mismatch"
	case CodeTruncated:
		return "truncated"
	case CodeOverQuota:
		return "over_quota"
	case CodeRateLimited:
		return "rate_limited"
	case CodeBusy:
		return "busy"
	case CodeNotFound:
		return "not_found"
	case CodeUnknownVault:
		return "unknown_vault"
	case CodeNotMember:
		return "not_member"
	case CodeUnknownCustody:
		return "unknown_custody"
	case CodeNotAssigned:
		return "not_assigned"
	case CodeNotLive:
		return "not_live"
	case CodeWrongCopy:
		return "wrong_copy"
	case CodeBadCopy:
		return "bad_copy"
	case CodeNotSource:
		return "not_source"
	}
	return fmt.Sprintf("code(%d)", uint32(c))
}

// RefusedError is a typed refusal: the holder's side builds one for every
// request it turns down and sends it as an error frame; the client side
// returns the one it received. errors.Is matches it against the sentinel of
// its code (ErrNotOwner for CodeNotOwner, and so on).
type RefusedError struct {
	Code    Code
	Message string
}

func (e *RefusedError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("refused: %v", e.Code.sentinel())
	}
	return fmt.Sprintf("refused: %v: %s", e.Code.sentinel(), e.Message)
}

// Unwrap returns the sentinel error of the code.
func (e *RefusedError) Unwrap() error { return e.Code.sentinel() }

func (c Code) sentinel() error {
	if err, ok := codeErrors[c]; ok {
		return err
	}
	return fmt.Errorf("%w: unknown error code %d", ErrProtocol, uint32(c))
}

func refuse(c Code, format string, args ...any) *RefusedError {
	return &RefusedError{Code: c, Message: fmt.Sprintf(format, args...)}
}

// ErrListen is returned by NewHost when a configured listen address could
// not be bound as configured (the port is taken by another process, or the
// address is not this machine's): libp2p starts a host as long as one
// address binds, which would leave the node silently without a transport.
var ErrListen = errors.New("listen address not bound")
