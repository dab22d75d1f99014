// @agenthost/sdk: write agenthost plugins in TypeScript.
//
//   import { serve } from '@agenthost/sdk';
//
//   serve({
//     name: 'hello',
//     providers: [{ name: 'HELLO', get: () => 'Say hello.' }],
//   });
//
// A plugin is a plain value: the providers, actions, evaluators, models,
// event handlers, sources and HTTP routes it offers and the settings it
// reads. serve() does the rest: go-plugin's handshake with AutoMTLS, the
// health, controller and stdio services, and the agenthost protocol.
// Handlers receive an Agent bound to the call they serve, through which
// they reach the host. README.md has the whole API.

export { serve, negotiateVersion, CORE_PROTOCOL_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, PROTOCOL_VERSIONS } from './serve';
export { PROTOCOL_MINOR, MAX_MESSAGE_SIZE } from './server';
export { Agent, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MODEL_TIMEOUT_MS } from './agent';
export type { MemoryQuery, SearchQuery, RoomQuery, LogQuery } from './agent';
export { Logger } from './log';
export type { Level, Fields } from './log';
export {
  AgentHostError,
  NotFoundError,
  InvalidError,
  UnavailableError,
  UnimplementedError,
  PermissionDeniedError,
  UnauthenticatedError,
  DeadlineExceededError,
  CancelledError,
} from './errors';
export type * from './types';
