package secure

import (
	"errors"
	"fmt"
)

// Sentinel errors; functions wrap them with detail, so compare with errors.Is.
var (
	// ErrInvalidSecret: a secret is not a code made by NewSecret (wrong
	// length, foreign characters, check characters that do not match, or
	// too little variety to be random). Made-up secrets are refused on
	// purpose: the handshake is only as strong as the secret.
	ErrInvalidSecret = errors.New("secure: invalid secret")
	// ErrInvalidCode: a code is not a number from 1 to 999 and three
	// words of the code list (ParseCode).
	ErrInvalidCode = errors.New("secure: invalid code")
	// ErrNotSecure: the peer does not speak this protocol, for example an
	// icetcp connect started without --secret.
	ErrNotSecure = errors.New("secure: peer does not speak icetcp-secure/1")
	// ErrWrongSecret: the handshake failed authentication: the peer holds a
	// different secret, or someone in the path altered the handshake.
	ErrWrongSecret = errors.New("secure: handshake failed: the peer does not hold the same secret")
	// ErrHandshake: the handshake did not complete for another reason
	// (timeout, connection lost, malformed message).
	ErrHandshake = errors.New("secure: handshake failed")
	// ErrTruncated: the transport ended (EOF, reset, consent lost) before
	// the peer's end-of-stream record. The concrete error is a
	// *TruncatedError that says how many bytes arrived.
	ErrTruncated = errors.New("secure: stream truncated")
	// ErrRecord: a record failed authentication or is malformed: the stream
	// was tampered with or corrupted. The connection is unusable.
	ErrRecord = errors.New("secure: bad record")
	// ErrWriteClosed: Write after CloseWrite.
	ErrWriteClosed = errors.New("secure: write after CloseWrite")
	// ErrUnconfirmed: the peer on the signaling channel did not prove, in
	// ConfirmPeer, that it holds the secret: a wrong MAC (it holds another
	// secret, or it guessed), or it sent its credentials without
	// confirming (an icetcp without key confirmation, or not --secret).
	ErrUnconfirmed = errors.New("secure: the peer did not prove it holds the secret")
)

// TruncatedError reports a stream that ended without the peer's
// end-of-stream record: the peer crashed, was killed, or the path broke.
// It matches ErrTruncated with errors.Is and unwraps to the transport's error.
type TruncatedError struct {
	Received uint64 // application bytes that arrived intact before the end
	Err      error  // what the transport said (io.EOF for a plain close)
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("secure: peer vanished after %d bytes (no end-of-stream record): %v", e.Received, e.Err)
}

// Is makes errors.Is(err, ErrTruncated) true.
func (e *TruncatedError) Is(target error) bool { return target == ErrTruncated }

func (e *TruncatedError) Unwrap() error { return e.Err }
