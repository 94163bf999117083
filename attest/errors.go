package attest

import (
	"errors"
	"fmt"

	"github.com/ksb-project/ksb/attest/internal/statestore"
)

var (
	// ErrMalformed is returned when bytes are not a canonical encoding of a
	// transaction: truncated, unknown or repeated fields, fields out of order,
	// default values encoded, or a wrong wire type.
	ErrMalformed = errors.New("malformed transaction")

	// ErrTooLarge is returned when a transaction, a field or a list is over
	// its cap (see the Max constants).
	ErrTooLarge = errors.New("over size limit")

	// ErrBadSignature is returned when a transaction's signature does not
	// verify under its signer key over its sign bytes.
	ErrBadSignature = errors.New("bad transaction signature")

	// ErrWrongChain is returned when a transaction names another chain ID.
	ErrWrongChain = errors.New("wrong chain ID")

	// ErrBadSequence is returned when a transaction's sequence is not the
	// signer's next one (a replay, or a stale sequence). CheckTx returns it
	// for a sequence behind the signer's committed one, or MaxPendingPerSigner
	// or more ahead of it.
	ErrBadSequence = errors.New("wrong sequence")

	// ErrUnauthorized is returned when the signer may not send the message:
	// not an active node, or not the authority for a Churn. CheckTx checks it
	// against the last committed state, so such a transaction never enters
	// the mempool.
	ErrUnauthorized = errors.New("unauthorized signer")

	// ErrMempoolFull is returned by CheckTx when the signer already has
	// MaxPendingPerSigner transactions in the mempool. It is temporary: the
	// allowance is counted again after every block.
	ErrMempoolFull = errors.New("signer's mempool allowance is used up")

	// ErrInvalid is returned when a message is well formed but its content
	// cannot be accepted: a bad address or key, a share committed to a
	// retired vault or by a non-member, a bad threshold.
	ErrInvalid = errors.New("invalid message")

	// ErrNotFound is returned when a message or query names a node, vault,
	// commitment or custody that is not in state.
	ErrNotFound = errors.New("not found")

	// ErrNotAssigned is returned when a holder attests, releases or proves a
	// custody the chain did not assign to it (a phantom attestation), or an
	// owner drills a custody of a commitment that is not its own.
	ErrNotAssigned = errors.New("custody not assigned to the signer")

	// ErrNoChallenge is returned for a proof of a custody that has no open
	// challenge for the signer in the epoch named: never challenged, a
	// wrong epoch, a replay of an answered challenge, or a proof after the
	// window closed.
	ErrNoChallenge = errors.New("no open challenge")

	// ErrWrongSegment is returned for a proof of another segment than the
	// one challenged.
	ErrWrongSegment = errors.New("wrong segment")

	// ErrBadProof is returned for a proof that does not show possession of
	// the custody's copy (custody.Verify refused it: a wrong path, a
	// segment of another copy, a wrong length); it wraps the
	// custody.ProofError. (An ICS23 state proof that does not verify on a
	// client is ErrStateProof.)
	ErrBadProof = errors.New("invalid proof")

	// ErrRateLimited is returned for a Drill sent less than
	// Params.DrillInterval blocks after the owner's previous one.
	ErrRateLimited = errors.New("rate limited")

	// ErrExists is returned when a Churn adds a node that is already active or
	// creates a vault that already exists.
	ErrExists = errors.New("already exists")

	// ErrBadQuery is returned for a query path the application does not serve.
	ErrBadQuery = errors.New("unknown query")

	// ErrInternal is returned when the application's storage fails.
	ErrInternal = errors.New("internal error")

	// ErrStateProof is returned by VerifyStateProof when an ICS23 proof of
	// a state key does not show what it is checked for: a wrong value,
	// key, root (app hash) or op type, or proof bytes that do not decode.
	// It is a client-side error of proven queries, not a result code; a
	// custody proof the chain refuses is ErrBadProof.
	ErrStateProof = statestore.ErrBadProof

	// ErrNotCommitted is returned by Client.Broadcast when a transaction was
	// accepted into the mempool but not seen in a block within the wait.
	ErrNotCommitted = errors.New("transaction not committed")

	// ErrNotNamed is returned by the readers over a StateGetter
	// (ComputeCoverage, ReadOwnerCommitments, ReadNodes) when an answer would
	// need a listing: a verifying client proves each key it names, but ICS23
	// has no range proofs, so no proof could show a listing complete.
	ErrNotNamed = errors.New("a listing cannot be read from verified state")
)

// TxError is a transaction the chain refused: in CheckTx (Height 0) or in its
// block. Its Unwrap gives the sentinel error of its code, so
// errors.Is(err, ErrBadSequence) works on a client's result.
type TxError struct {
	// Hash is the transaction hash (upper-case hex), as CometBFT prints it.
	Hash string
	// Height is the block that included the transaction, 0 if CheckTx refused it.
	Height int64
	// Code is the application's result code (see code.go).
	Code uint32
	// Log is the application's explanation.
	Log string
}

func (e *TxError) Error() string {
	if e.Height == 0 {
		return fmt.Sprintf("transaction %s refused (code %d): %s", e.Hash, e.Code, e.Log)
	}
	return fmt.Sprintf("transaction %s failed in block %d (code %d): %s", e.Hash, e.Height, e.Code, e.Log)
}

// Unwrap returns the sentinel error of e.Code, or nil for an unknown code.
func (e *TxError) Unwrap() error { return codeErr(e.Code) }

// QueryError is an ABCI query the application answered with a non-zero code.
type QueryError struct {
	// Path is the query path.
	Path string
	// Code is the application's result code.
	Code uint32
	// Log is the application's explanation.
	Log string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("query %s (code %d): %s", e.Path, e.Code, e.Log)
}

// Unwrap returns the sentinel error of e.Code, or nil for an unknown code.
func (e *QueryError) Unwrap() error { return codeErr(e.Code) }
