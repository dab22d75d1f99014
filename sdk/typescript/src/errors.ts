// The kinds of failure the host and plugins tell apart.
//
// Each kind travels as one gRPC code (internal/contract/errors.go is the
// one mapping). Throw one of these from a handler and the host learns its
// kind; a Runtime call that fails throws the one of its code, so
// `err instanceof NotFoundError` tells what went wrong whichever side said
// so. Any other error is an internal failure.

import { status } from '@grpc/grpc-js';

/** The base of every error this SDK throws for a kind of failure. */
export class AgentHostError extends Error {
  /** The gRPC code the error travels as. */
  readonly code: status;

  constructor(message: string, code: status = status.INTERNAL, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The thing named does not exist (or is not the caller's). */
export class NotFoundError extends AgentHostError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, status.NOT_FOUND, options);
  }
}

/** The request is wrong, and the message says how. */
export class InvalidError extends AgentHostError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, status.INVALID_ARGUMENT, options);
  }
}

/** Something the call needs is down for now; retrying later may work. */
export class UnavailableError extends AgentHostError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, status.UNAVAILABLE, options);
  }
}

/** The other side does not offer the call. */
export class UnimplementedError extends AgentHostError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, status.UNIMPLEMENTED, options);
  }
}

/** The caller may not make this call. */
export class PermissionDeniedError extends AgentHostError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, status.PERMISSION_DENIED, options);
  }
}

/** The call did not carry a valid runtime token. */
export class UnauthenticatedError extends AgentHostError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, status.UNAUTHENTICATED, options);
  }
}

/** The call took longer than it was given. */
export class DeadlineExceededError extends AgentHostError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, status.DEADLINE_EXCEEDED, options);
  }
}

/** The caller gave up: the host cancelled the call, or the plugin is stopping. */
export class CancelledError extends AgentHostError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, status.CANCELLED, options);
  }
}

const byCode = new Map<status, new (message: string, options?: { cause?: unknown }) => AgentHostError>([
  [status.NOT_FOUND, NotFoundError],
  [status.INVALID_ARGUMENT, InvalidError],
  [status.UNAVAILABLE, UnavailableError],
  [status.UNIMPLEMENTED, UnimplementedError],
  [status.PERMISSION_DENIED, PermissionDeniedError],
  [status.UNAUTHENTICATED, UnauthenticatedError],
  [status.DEADLINE_EXCEEDED, DeadlineExceededError],
  [status.CANCELLED, CancelledError],
]);

/** The error of a failed gRPC call, of its code's kind, naming what was called. */
export function errorFromStatus(what: string, err: { code?: number; details?: string; message?: string }): AgentHostError {
  const code = typeof err.code === 'number' ? (err.code as status) : status.INTERNAL;
  const details = err.details || err.message || 'failed';
  const Kind = byCode.get(code);
  const message = `${what}: ${details}`;
  return Kind ? new Kind(message, { cause: err }) : new AgentHostError(message, code, { cause: err });
}

/** The gRPC code an error thrown by a handler travels as. */
export function codeOf(err: unknown): status {
  return err instanceof AgentHostError ? err.code : status.INTERNAL;
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
