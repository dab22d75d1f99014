package sdk

import "github.com/agenthost/agenthost/internal/contract"

// The kinds of failure the host and plugins tell apart. Wrap one (fmt's %w)
// in a handler's error and the host learns what kind it is: each travels as
// its gRPC code and comes back as the same error, so errors.Is(err,
// ErrNotFound) holds for a runtime call that found nothing, whichever side
// said so.
var (
	// ErrNotFound is wrapped by errors for things that do not exist.
	ErrNotFound = contract.ErrNotFound
	// ErrInvalid is wrapped by errors about bad input (InvalidArgument):
	// the caller's request is wrong, and the message says how.
	ErrInvalid = contract.ErrInvalid
	// ErrUnavailable is wrapped by errors about a resource that is down for
	// now (a database that went away, a model API that keeps failing);
	// callers may retry.
	ErrUnavailable = contract.ErrUnavailable
	// ErrUnimplemented is wrapped by errors for calls the other side does
	// not offer: a host or a database plugin of an older protocol, or an
	// optional method a plugin left out. See also [Host.Offers].
	ErrUnimplemented = contract.ErrUnimplemented
	// ErrPermissionDenied is wrapped by errors for calls the caller may not
	// make, e.g. a plugin calling one of the host's own database methods.
	ErrPermissionDenied = contract.ErrPermissionDenied
	// ErrUnauthenticated is wrapped by errors for calls made without a
	// valid runtime token.
	ErrUnauthenticated = contract.ErrUnauthenticated
)
