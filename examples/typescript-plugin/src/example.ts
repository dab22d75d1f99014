// The example plugin itself: one provider and one action.
//
// It serves agenthost.plugin.v1.Plugin. The host calls Describe first, then
// Init once (with the address of its Runtime service), then Configure once
// per agent. Every later call names its agent in agent_id: one process serves
// every agent that uses the plugin.

import * as grpc from '@grpc/grpc-js';
import { ServeContext, grpcSizeOptions } from './goplugin';
import { clientOf, serviceOf } from './protos';

export const PLUGIN_NAME = 'typescript-example';
export const PLUGIN_VERSION = '0.1.0';
/** The minor of agenthost.plugin.v1 this plugin was written against. */
export const PROTOCOL_MINOR = 0;

export const PROVIDER_NAME = 'TS_EXAMPLE';
export const PROVIDER_TEXT = 'The TypeScript example provider says hello from Node.';
export const ACTION_NAME = 'TS_EXAMPLE_ACTION';

/** Calls to the host's Runtime get this long unless the incoming call has less. */
const runtimeCallTimeoutMs = 30_000;

// The few message shapes this plugin reads. Field names are the .proto's.
interface Content {
  text?: string;
  source?: string;
  actions?: string[];
  in_reply_to?: string;
}
interface Memory {
  id?: string;
  content?: Content | null;
}
interface InitRequest {
  runtime_address: string;
  protocol_minor: number;
  host_version: string;
  data_dir: string;
  settings: Record<string, string>;
}
interface ConfigureRequest {
  agent_id: string;
  character_json: Buffer;
  settings: Record<string, string>;
}
interface AgentRequest {
  agent_id: string;
}
interface GetProvidersRequest extends AgentRequest {
  names: string[];
  message?: Memory | null;
  run_id: string;
}
interface ValidateActionsRequest extends AgentRequest {
  names: string[];
}
interface RunActionRequest extends AgentRequest {
  name: string;
  message?: Memory | null;
  run_id: string;
}
interface ActionResult {
  success: boolean;
  text: string;
  error?: string;
}

interface AgentState {
  id: string;
  /** The character's name, when its JSON has one. */
  name: string;
  settings: Record<string, string>;
}

type Unary<Req> = (call: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

// unary wraps an async handler: a thrown RpcError becomes its status, any
// other error INTERNAL with its message.
function unary<Req>(fn: (req: Req, call: grpc.ServerUnaryCall<Req, unknown>) => Promise<unknown>): Unary<Req> {
  return (call, cb) => {
    fn(call.request, call).then(
      (res) => cb(null, res),
      (err: unknown) => {
        if (err instanceof RpcError) cb({ code: err.code, details: err.message });
        else cb({ code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) });
      },
    );
  };
}

function notOffered(what: string): Unary<unknown> {
  return (_call, cb) =>
    cb({ code: grpc.status.UNIMPLEMENTED, details: `${PLUGIN_NAME} offers no ${what}` });
}

function runtimeTarget(address: string): string {
  // The host sends unix:///path or host:port; a bare absolute path is a socket.
  return address.startsWith('/') ? `unix://${address}` : address;
}

function characterName(json: Buffer | undefined): string {
  if (!json || json.length === 0) return '';
  try {
    const c = JSON.parse(json.toString('utf8')) as { name?: unknown };
    return typeof c.name === 'string' ? c.name : '';
  } catch {
    return '';
  }
}

export function registerExample(ctx: ServeContext): void {
  const { log } = ctx;
  const agents = new Map<string, AgentState>();
  const Runtime = clientOf(ctx.protos.agenthost, 'Runtime');
  let runtime: grpc.Client | undefined;
  let runtimeAddress = '';
  // Runtime calls in flight, so that Plugin.Shutdown can cancel them.
  const inFlight = new Set<grpc.ClientUnaryCall>();

  const closeRuntime = () => {
    for (const c of inFlight) c.cancel();
    inFlight.clear();
    runtime?.close();
    runtime = undefined;
  };
  ctx.onStop(closeRuntime);

  const agentOf = (req: AgentRequest): AgentState => {
    if (!req.agent_id) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'agent_id is required');
    const a = agents.get(req.agent_id);
    if (!a) {
      throw new RpcError(
        grpc.status.FAILED_PRECONDITION,
        `agent ${req.agent_id} is not configured in ${PLUGIN_NAME}: call Configure first`,
      );
    }
    return a;
  };

  // callRuntime makes one unary call to the host's Runtime service, bounded by
  // the incoming call's deadline and by runtimeCallTimeoutMs, and cancelled
  // when the incoming call is.
  const callRuntime = <Res>(
    method: string,
    request: unknown,
    incoming: grpc.ServerUnaryCall<unknown, unknown>,
  ): Promise<Res> => {
    const client = runtime;
    if (!client) {
      return Promise.reject(
        new RpcError(grpc.status.FAILED_PRECONDITION, `${PLUGIN_NAME} has no Runtime connection: call Init first`),
      );
    }
    let deadline = Date.now() + runtimeCallTimeoutMs;
    const theirs = incoming.getDeadline();
    if (theirs instanceof Date && theirs.getTime() < deadline) deadline = theirs.getTime();
    else if (typeof theirs === 'number' && Number.isFinite(theirs) && theirs < deadline) deadline = theirs;
    return new Promise<Res>((resolve, reject) => {
      const fn = (client as unknown as Record<string, Function>)[method];
      const call: grpc.ClientUnaryCall = fn.call(
        client,
        request,
        new grpc.Metadata(),
        { deadline },
        (err: grpc.ServiceError | null, res: Res) => {
          inFlight.delete(call);
          if (err) reject(err);
          else resolve(res);
        },
      );
      inFlight.add(call);
      incoming.on('cancelled', () => call.cancel());
    });
  };

  ctx.server.addService(serviceOf(ctx.protos.agenthost, 'Plugin'), {
    Describe: unary(async () => ({
      name: PLUGIN_NAME,
      version: PLUGIN_VERSION,
      description: 'An agenthost plugin written in TypeScript: one provider and one action.',
      protocol_minor: PROTOCOL_MINOR,
      providers: [
        {
          name: PROVIDER_NAME,
          description: 'A greeting from the TypeScript example plugin.',
          dynamic: false,
          private: false,
          position: 10,
        },
      ],
      actions: [
        {
          name: ACTION_NAME,
          description: 'Replies with a line from the TypeScript example plugin, through the host.',
          similes: ['TYPESCRIPT_EXAMPLE', 'NODE_EXAMPLE_ACTION'],
          examples: [],
        },
      ],
    })),

    Init: unary(async (req: InitRequest) => {
      if (!req.runtime_address) {
        throw new RpcError(grpc.status.INVALID_ARGUMENT, 'runtime_address is required');
      }
      closeRuntime();
      runtimeAddress = req.runtime_address;
      // The Runtime socket is the host's own, private unix socket: no TLS.
      runtime = new Runtime(runtimeTarget(runtimeAddress), grpc.credentials.createInsecure(), {
        ...grpcSizeOptions,
      });
      log.info('initialised', {
        runtime_address: runtimeAddress,
        host_version: req.host_version,
        host_protocol_minor: req.protocol_minor,
      });
      return {};
    }),

    Configure: unary(async (req: ConfigureRequest) => {
      if (!req.agent_id) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'agent_id is required');
      const a: AgentState = {
        id: req.agent_id,
        name: characterName(req.character_json),
        settings: { ...(req.settings ?? {}) },
      };
      agents.set(a.id, a);
      log.info('agent configured', { agent_id: a.id, character: a.name, agents: agents.size });
      return { warnings: [] };
    }),

    Unconfigure: unary(async (req: AgentRequest) => {
      if (!req.agent_id) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'agent_id is required');
      agents.delete(req.agent_id);
      log.info('agent unconfigured', { agent_id: req.agent_id, agents: agents.size });
      return {};
    }),

    GetProviders: unary(async (req: GetProvidersRequest) => {
      agentOf(req);
      return {
        results: req.names.map((name) =>
          name === PROVIDER_NAME
            ? {
                name,
                text: PROVIDER_TEXT,
                values_json: Buffer.from(JSON.stringify({ tsExampleGreeting: 'hello from Node' })),
              }
            : { name, error: `${PLUGIN_NAME} has no provider ${name}` },
        ),
      };
    }),

    ValidateActions: unary(async (req: ValidateActionsRequest) => {
      agentOf(req);
      // The example's action is always available.
      return { valid: req.names.filter((n) => n === ACTION_NAME) };
    }),

    RunAction: unary(async (req: RunActionRequest, call) => {
      const agent = agentOf(req);
      if (req.name !== ACTION_NAME) {
        throw new RpcError(grpc.status.NOT_FOUND, `${PLUGIN_NAME} has no action ${req.name}`);
      }
      const text = `${ACTION_NAME} ran in Node for agent ${agent.id}`;
      const content: Content = { text, actions: [ACTION_NAME] };
      if (req.message?.content?.source) content.source = req.message.content.source;
      if (req.message?.id) content.in_reply_to = req.message.id;
      let result: ActionResult;
      try {
        await callRuntime('Respond', { agent_id: agent.id, run_id: req.run_id, content }, call);
        result = { success: true, text };
      } catch (err) {
        if (err instanceof RpcError) throw err;
        const msg = err instanceof Error ? err.message : String(err);
        log.warn('Runtime.Respond failed', { agent_id: agent.id, run_id: req.run_id, error: msg });
        result = { success: false, text: '', error: `Runtime.Respond failed: ${msg}` };
      }
      log.debug('action ran', { agent_id: agent.id, run_id: req.run_id, action: ACTION_NAME, success: result.success });
      return { result };
    }),

    // Shutdown cancels every call in flight; the host stops the process next.
    Shutdown: unary(async () => {
      log.debug('shutdown requested', { runtime_address: runtimeAddress });
      for (const c of inFlight) c.cancel();
      inFlight.clear();
      return {};
    }),

    // Not offered by this plugin (its manifest declares none of them).
    RunEvaluators: notOffered('evaluators'),
    HandleEvent: notOffered('event handlers'),
    UseModel: notOffered('models'),
    SendMessage: notOffered('message sources'),
  });
}
