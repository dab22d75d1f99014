"""The kinds of failure the host and plugins tell apart.

Each kind travels as one gRPC code (internal/contract/errors.go is the one
mapping). Raise one of these from a handler and the host learns its kind; a
Runtime call that fails raises the one of its code, so
``except NotFoundError`` catches what was not found whichever side said so.
Any other exception is an internal failure.
"""

import grpc


class AgentHostError(Exception):
    """The base of every error this SDK raises for a kind of failure."""

    code = grpc.StatusCode.INTERNAL


class NotFoundError(AgentHostError):
    """The thing named does not exist (or is not the caller's)."""

    code = grpc.StatusCode.NOT_FOUND


class InvalidError(AgentHostError):
    """The request is wrong, and the message says how."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class UnavailableError(AgentHostError):
    """Something the call needs is down for now; retrying later may work."""

    code = grpc.StatusCode.UNAVAILABLE


class UnimplementedError(AgentHostError):
    """The other side does not offer the call."""

    code = grpc.StatusCode.UNIMPLEMENTED


class PermissionDeniedError(AgentHostError):
    """The caller may not make this call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class UnauthenticatedError(AgentHostError):
    """The call did not carry a valid runtime token."""

    code = grpc.StatusCode.UNAUTHENTICATED


class DeadlineExceededError(AgentHostError):
    """The call took longer than it was given."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class CancelledError(AgentHostError):
    """The caller gave up: the host cancelled the call, or the plugin is stopping."""

    code = grpc.StatusCode.CANCELLED


_BY_CODE = {
    cls.code: cls
    for cls in (
        NotFoundError,
        InvalidError,
        UnavailableError,
        UnimplementedError,
        PermissionDeniedError,
        UnauthenticatedError,
        DeadlineExceededError,
        CancelledError,
    )
}


def error_from_rpc(what, err):
    """The error of a failed gRPC call, of its code's kind, naming what was called."""
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.INTERNAL
    details = err.details() if callable(getattr(err, "details", None)) else str(err)
    cls = _BY_CODE.get(code)
    message = f"{what}: {details or 'failed'}"
    if cls is None:
        e = AgentHostError(message)
        e.code = code
        return e
    return cls(message)


def code_of(err):
    """The gRPC code an exception raised by a handler travels as."""
    return err.code if isinstance(err, AgentHostError) else grpc.StatusCode.INTERNAL


def message_of(err):
    """The message of an exception: its text, else its class name."""
    return str(err) or type(err).__name__
