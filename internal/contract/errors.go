package contract

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind is what kind of failure an error is. The SDK, the host and the
// plugins tell kinds apart only through this file: a kind travels as a
// gRPC code and comes back as the same kind on the other side.
type Kind int

// The kinds. Internal is the zero value: an error nobody classified is a
// failure of whoever reports it.
const (
	// Internal is a bug or an unexpected failure; its message is for the
	// log, not for the user.
	Internal Kind = iota
	// NotFound: the thing named does not exist (or is not the caller's).
	NotFound
	// Invalid: the request is wrong, and the message says how.
	Invalid
	// Unavailable: something the call needs is down for now; retrying
	// later may work.
	Unavailable
	// Unimplemented: the other side does not offer the call (an older
	// host or plugin, an optional method).
	Unimplemented
	// PermissionDenied: the caller may not make this call.
	PermissionDenied
	// Unauthenticated: the caller did not say who it is (no runtime
	// token, or one that is not valid).
	Unauthenticated
	// DeadlineExceeded: the call took longer than it was given.
	DeadlineExceeded
	// Canceled: the caller gave up.
	Canceled
)

// The sentinel of each kind: errors.Is(err, ErrNotFound) holds for every
// error of kind NotFound, whichever side made it. The SDK exports them.
var (
	ErrNotFound         = errors.New("not found")
	ErrInvalid          = errors.New("invalid")
	ErrUnavailable      = errors.New("unavailable")
	ErrUnimplemented    = errors.New("unimplemented")
	ErrPermissionDenied = errors.New("permission denied")
	ErrUnauthenticated  = errors.New("unauthenticated")
)

// kinds is the one mapping: each kind, its sentinel and its gRPC code.
// Deadlines and cancellation are the context package's errors.
var kinds = []struct {
	kind Kind
	err  error
	code codes.Code
}{
	{NotFound, ErrNotFound, codes.NotFound},
	{Invalid, ErrInvalid, codes.InvalidArgument},
	{Unavailable, ErrUnavailable, codes.Unavailable},
	{Unimplemented, ErrUnimplemented, codes.Unimplemented},
	{PermissionDenied, ErrPermissionDenied, codes.PermissionDenied},
	{Unauthenticated, ErrUnauthenticated, codes.Unauthenticated},
	{DeadlineExceeded, context.DeadlineExceeded, codes.DeadlineExceeded},
	{Canceled, context.Canceled, codes.Canceled},
}

// Err is the kind's sentinel (context.DeadlineExceeded and
// context.Canceled for those two); nil for Internal.
func (k Kind) Err() error {
	for _, x := range kinds {
		if x.kind == k {
			return x.err
		}
	}
	return nil
}

// Code is the gRPC code an error of the kind travels as.
func (k Kind) Code() codes.Code {
	for _, x := range kinds {
		if x.kind == k {
			return x.code
		}
	}
	return codes.Unknown
}

// Retryable reports whether the same call may work later unchanged.
func (k Kind) Retryable() bool { return k == Unavailable || k == DeadlineExceeded }

// UserFacing reports whether an error of the kind says, in its message,
// what the one who made the request can do about it (fix the request, wait,
// ask for access); an Internal error's message is for the log.
func (k Kind) UserFacing() bool { return k != Internal && k != Canceled }

// KindOfCode is the kind a gRPC code carries. Codes without a kind of
// their own (Unknown, Internal, FailedPrecondition, ...) are Internal.
func KindOfCode(c codes.Code) Kind {
	for _, x := range kinds {
		if x.code == c {
			return x.kind
		}
	}
	return Internal
}

// KindOf is the kind of err: the kind of its gRPC code when it is a
// status, else the kind whose sentinel it wraps.
func KindOf(err error) Kind {
	if err == nil {
		return Internal
	}
	if st, ok := status.FromError(err); ok {
		return KindOfCode(st.Code())
	}
	for _, x := range kinds {
		if errors.Is(err, x.err) {
			return x.kind
		}
	}
	return Internal
}

// Retryable reports whether err is worth retrying unchanged.
func Retryable(err error) bool { return err != nil && KindOf(err).Retryable() }

// New makes an error of kind k with its own text: errors.Is matches it
// with itself and with the kind's sentinel.
func New(k Kind, text string) error { return &kindError{kind: k, text: text} }

type kindError struct {
	kind Kind
	text string
}

func (e *kindError) Error() string { return e.text }

func (e *kindError) Is(target error) bool { return target != nil && target == e.kind.Err() }

// Status turns err into the gRPC status it crosses the wire as: a status
// stays as it is, anything else gets its kind's code. The message is made
// valid UTF-8, which gRPC requires.
func Status(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(KindOf(err).Code(), ValidUTF8(err.Error()))
}

// FromStatus turns a gRPC error that reached caller back into an error of
// its kind, "caller: message", which errors.Is matches with the kind's
// sentinel. An error without a kind keeps its code in the text. Errors
// that are not statuses are wrapped as they are.
func FromStatus(caller string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", caller, err)
	}
	if k := KindOfCode(st.Code()); k != Internal {
		return fmt.Errorf("%s: %w", caller, New(k, st.Message()))
	}
	return fmt.Errorf("%s: %s (%s)", caller, st.Message(), st.Code())
}

// ValidUTF8 replaces invalid UTF-8, so that protobuf never refuses to
// marshal text that a model, a platform or an error produced.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
