package contract

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestKindsCrossTheWire: an error of each kind leaves as its code and comes
// back as the same kind, wrapped so that errors.Is finds the sentinel.
func TestKindsCrossTheWire(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		code codes.Code
	}{
		{NotFound, codes.NotFound}, {Invalid, codes.InvalidArgument}, {Unavailable, codes.Unavailable},
		{Unimplemented, codes.Unimplemented}, {PermissionDenied, codes.PermissionDenied},
		{Unauthenticated, codes.Unauthenticated}, {DeadlineExceeded, codes.DeadlineExceeded}, {Canceled, codes.Canceled},
	} {
		err := fmt.Errorf("task 7: %w", c.kind.Err())
		st := Status(err)
		if status.Code(st) != c.code || KindOf(st) != c.kind || KindOf(err) != c.kind {
			t.Errorf("%v: travels as %v (kind %v)", c.kind, status.Code(st), KindOf(st))
		}
		back := FromStatus("runtime GetTask", st)
		if !errors.Is(back, c.kind.Err()) || back.Error() != "runtime GetTask: task 7: "+c.kind.Err().Error() {
			t.Errorf("%v came back as %q", c.kind, back)
		}
	}
	// Without a kind: Unknown on the wire, and the code kept in the text.
	st := Status(errors.New("boom"))
	if status.Code(st) != codes.Unknown || KindOf(st) != Internal {
		t.Errorf("an error of no kind: %v", st)
	}
	if got := FromStatus("runtime X", status.Error(codes.FailedPrecondition, "not configured")).Error(); got != "runtime X: not configured (FailedPrecondition)" {
		t.Errorf("FailedPrecondition came back as %q", got)
	}
	// A status stays the status it is.
	if s := status.Error(codes.ResourceExhausted, "full"); Status(s) != s {
		t.Error("a status was changed")
	}
	// Invalid UTF-8 never makes a status gRPC refuses.
	if m := status.Convert(Status(errors.New("bad \xff"))).Message(); m != "bad \uFFFD" {
		t.Errorf("message = %q", m)
	}
}

func TestKindsOwnErrors(t *testing.T) {
	crashed := New(Unavailable, "plugin crashed")
	err := fmt.Errorf("plugin x crashed during y: %w", crashed)
	if !errors.Is(err, crashed) || !errors.Is(err, ErrUnavailable) || !Retryable(err) || KindOf(err) != Unavailable {
		t.Errorf("an error of its own kind: %v", err)
	}
	if !Retryable(context.DeadlineExceeded) || Retryable(ErrInvalid) || Retryable(nil) {
		t.Error("retryable: deadlines are, bad requests are not")
	}
	if Internal.UserFacing() || !Invalid.UserFacing() || !Unavailable.UserFacing() {
		t.Error("user-facing: every kind but Internal and Canceled")
	}
}
