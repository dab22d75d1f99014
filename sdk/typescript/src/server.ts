// The Plugin service: converts the protocol's messages to plain values,
// finds the author's handler, and converts its answer back.
//
// A handler that throws never takes the process down: a provider's error
// becomes its result's error, an action's a failed result, an evaluator's
// its outcome's error, and for the other calls (models, events, routes,
// sources, configure) the call's gRPC error, of the thrown error's kind.
// Each names the handler.

import * as grpc from '@grpc/grpc-js';
import { Agent, type AgentState, type CallScope, type HostLink } from './agent';
import {
  actionResultToProto,
  contentFromProto,
  contentToProto,
  decodeObject,
  memoryFromProto,
  modelRequestFromProto,
  modelResponseToProto,
  onBadJson,
  outcomeFromProto,
  stateFromProto,
  targetFromProto,
  encodeJson,
} from './convert';
import { CancelledError, DeadlineExceededError, InvalidError, NotFoundError, codeOf, messageOf } from './errors';
import { DatabaseClient } from './gen/agenthost/plugin/v1/database';
import * as pb from './gen/agenthost/plugin/v1/plugin';
import type * as pbt from './gen/agenthost/plugin/v1/types';
import { RuntimeClient } from './gen/agenthost/plugin/v1/runtime';
import type { Logger } from './log';
import type {
  Action,
  ActionResult,
  Evaluator,
  EventHandler,
  JsonObject,
  Model,
  Plugin,
  Provider,
  Route,
  Setting,
  Source,
} from './types';

/** The minor of agenthost.plugin.v1 this SDK speaks (the Go side's contract.ProtocolMinor). */
export const PROTOCOL_MINOR = 3;
/** Bounds every message, both ways (the Go side's contract.MaxMessageSize). */
export const MAX_MESSAGE_SIZE = 64 << 20;

export const grpcSizeOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_SIZE,
  'grpc.max_send_message_length': MAX_MESSAGE_SIZE,
};

/** A cancellation this close to the deadline is the deadline's. */
const deadlineSlackMs = 100;

type Surface = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

/** A gRPC error with a code and a message. */
function rpcError(code: grpc.status, details: string): Partial<grpc.StatusObject> {
  return { code, details };
}

class RpcFailure extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

function statusOf(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof RpcFailure) return rpcError(err.code, err.message);
  return rpcError(codeOf(err), messageOf(err));
}

// validate catches definition mistakes at start rather than at the first
// message.
export function validatePlugin(p: Plugin): void {
  if (!p || typeof p.name !== 'string' || p.name.trim() === '') throw new Error('plugin definition: name is empty');
  const seen = new Set<string>();
  const check = (kind: string, name: unknown, fn: unknown, fnName: string) => {
    if (typeof name !== 'string' || name.trim() === '') throw new Error(`plugin ${p.name}: a ${kind} has an empty name`);
    if (seen.has(`${kind}/${name}`)) throw new Error(`plugin ${p.name}: ${kind} ${name} is defined twice`);
    seen.add(`${kind}/${name}`);
    if (typeof fn !== 'function') throw new Error(`plugin ${p.name}: ${kind} ${name} has no ${fnName} function`);
  };
  for (const s of p.settings ?? []) {
    check('setting', s.name, () => {}, '');
    if (s.required && s.default) {
      throw new Error(`plugin ${p.name}: setting ${s.name} is required and has a default; keep one of them`);
    }
  }
  for (const a of p.actions ?? []) check('action', a.name, a.handler, 'handler');
  for (const pr of p.providers ?? []) check('provider', pr.name, pr.get, 'get');
  for (const e of p.evaluators ?? []) check('evaluator', e.name, e.handler, 'handler');
  for (const m of p.models ?? []) check('model', m.type, m.handler, 'handler');
  for (const s of p.sources ?? []) check('source', s.name, s.send, 'send');
  for (const e of p.events ?? []) {
    if (typeof e.type !== 'string' || !e.type.trim() || typeof e.handler !== 'function') {
      throw new Error(`plugin ${p.name}: an event handler needs a type and a handler function`);
    }
  }
  for (const r of p.routes ?? []) {
    if (typeof r.path !== 'string' || !r.path.startsWith('/') || typeof r.handler !== 'function') {
      throw new Error(`plugin ${p.name}: a route needs a path starting with "/" and a handler function`);
    }
  }
}

function characterOf(json: Buffer, agentId: string): JsonObject {
  if (json.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new InvalidError(`configure agent ${agentId}: the character is not JSON: ${messageOf(err)}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    throw new InvalidError(`configure agent ${agentId}: the character is not a JSON object`);
  }
  return v as JsonObject;
}

/** The deadline of a served call in Unix milliseconds, or undefined. */
function deadlineOf(call: Surface): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return typeof ms === 'number' && Number.isFinite(ms) ? ms : undefined;
}

export class PluginShim {
  readonly plugin: Plugin;
  readonly log: Logger;
  /** Aborts when the host asks the plugin to shut down; every call follows it. */
  readonly stop = new AbortController();

  private readonly actions = new Map<string, Action>();
  private readonly providers = new Map<string, Provider>();
  private readonly evaluators = new Map<string, Evaluator>();
  private readonly models = new Map<string, Model>();
  private readonly events = new Map<string, EventHandler[]>();
  private readonly sources = new Map<string, Source>();
  private readonly declared = new Map<string, Setting>();
  private readonly undeclared = new Set<string>();
  private readonly agents = new Map<string, AgentState>();
  private link: HostLink | undefined;

  constructor(plugin: Plugin, log: Logger) {
    validatePlugin(plugin);
    this.plugin = plugin;
    this.log = log;
    for (const a of plugin.actions ?? []) this.actions.set(a.name, a);
    for (const p of plugin.providers ?? []) this.providers.set(p.name, p);
    for (const e of plugin.evaluators ?? []) this.evaluators.set(e.name, e);
    for (const m of plugin.models ?? []) this.models.set(m.type, m);
    for (const e of plugin.events ?? []) this.events.set(e.type, [...(this.events.get(e.type) ?? []), e]);
    for (const s of plugin.sources ?? []) this.sources.set(s.name, s);
    for (const s of plugin.settings ?? []) this.declared.set(s.name, s);
    onBadJson((field, err) => log.warn('a JSON field from the host does not parse; it is read as {}', { field, error: messageOf(err) }));
  }

  /** Closes the Runtime connection and stops every agent's background work. */
  close(): void {
    for (const a of this.agents.values()) a.lifetime.abort(new CancelledError('the plugin is stopping'));
    this.link?.runtime.close();
    this.link?.database.close();
    this.link = undefined;
  }

  manifest(): pb.Manifest {
    const p = this.plugin;
    const events = [...new Set((p.events ?? []).map((e) => e.type))];
    return pb.Manifest.fromPartial({
      name: p.name,
      version: p.version ?? '',
      description: p.description ?? '',
      protocolMinor: PROTOCOL_MINOR,
      aliases: p.aliases ?? [],
      http: (p.routes ?? []).length > 0,
      actions: (p.actions ?? []).map((a) => ({
        name: a.name, description: a.description ?? '', similes: a.similes ?? [],
        examples: (a.examples ?? []).map((conv) => ({
          messages: conv.map((m) => ({ name: m.name, content: contentToProto(m.content) })),
        })),
      })),
      providers: (p.providers ?? []).map((pr) => ({
        name: pr.name, description: pr.description ?? '', dynamic: pr.dynamic ?? false, private: pr.private ?? false,
        position: pr.position ?? 0,
      })),
      evaluators: (p.evaluators ?? []).map((e) => ({
        name: e.name, description: e.description ?? '', similes: e.similes ?? [], alwaysRun: e.alwaysRun ?? false,
      })),
      models: (p.models ?? []).map((m) => ({ type: m.type, priority: m.priority ?? 0 })),
      events,
      messageSources: (p.sources ?? []).map((s) => s.name),
      settings: (p.settings ?? []).map((s) => ({
        name: s.name, description: s.description ?? '', required: s.required ?? false, secret: s.secret ?? false,
        defaultValue: s.default ?? '', endpoint: s.endpoint ?? false,
      })),
    });
  }

  // scope binds a served call: its signal aborts when the host cancels
  // the call, when its deadline passes, and when the plugin stops. done
  // releases the timer and the listeners.
  private scope(call: Surface, runId: string): { scope: CallScope; done: () => void } {
    const ac = new AbortController();
    const deadline = deadlineOf(call);
    // gRPC reports a passed deadline as a cancellation too, and the
    // host's side of it passes a little before ours (ours counts from when
    // the call arrived).
    const onCancel = () =>
      ac.abort(
        deadline !== undefined && Date.now() >= deadline - deadlineSlackMs
          ? new DeadlineExceededError("the call's deadline passed")
          : new CancelledError('the host cancelled the call'),
      );
    const onStop = () => ac.abort(new CancelledError('the plugin is stopping'));
    call.on('cancelled', onCancel);
    if (this.stop.signal.aborted) onStop();
    else this.stop.signal.addEventListener('abort', onStop, { once: true });
    let timer: NodeJS.Timeout | undefined;
    if (deadline !== undefined) {
      timer = setTimeout(() => ac.abort(new DeadlineExceededError("the call's deadline passed")), Math.max(0, deadline - Date.now()));
      timer.unref();
    }
    return {
      scope: { runId, signal: ac.signal, deadline },
      done: () => {
        if (timer) clearTimeout(timer);
        call.removeListener('cancelled', onCancel);
        this.stop.signal.removeEventListener('abort', onStop);
      },
    };
  }

  private agentState(id: string): AgentState {
    if (!id) throw new RpcFailure(grpc.status.INVALID_ARGUMENT, 'agent_id is empty');
    const a = this.agents.get(id);
    if (!a) {
      throw new RpcFailure(grpc.status.FAILED_PRECONDITION, `agent ${JSON.stringify(id)} is not configured in plugin ${this.plugin.name}`);
    }
    return a;
  }

  // served wraps a unary handler: it runs with the agent bound to the
  // call, and whatever it throws becomes the call's error.
  private served<Req extends { agentId?: string }, Res>(
    runIdOf: (req: Req) => string,
    fn: (agent: Agent, req: Req) => Promise<Res>,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, cb) => {
      let done = () => {};
      (async () => {
        const state = this.agentState(call.request.agentId ?? '');
        const s = this.scope(call as Surface, runIdOf(call.request));
        done = s.done;
        return fn(new Agent(state, s.scope), call.request);
      })().then(
        (res) => {
          done();
          cb(null, res);
        },
        (err: unknown) => {
          done();
          cb(statusOf(err));
        },
      );
    };
  }

  private unary<Req, Res>(fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, cb) => {
      fn(call.request, call).then(
        (res) => cb(null, res),
        (err: unknown) => cb(statusOf(err)),
      );
    };
  }

  /** Logs what a handler threw, with its stack, and returns the message naming it. */
  private failed(kind: string, name: string, err: unknown, agent?: Agent): string {
    const msg = `${kind} ${name} failed: ${messageOf(err)}`;
    (agent?.log ?? this.log).error(`${kind} failed`, { [kind.replace(/ /g, '_')]: name, error: err });
    return msg;
  }

  private async guard<T>(kind: string, name: string, agent: Agent, fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new RpcFailure(codeOf(err), this.failed(kind, name, err, agent));
    }
  }

  private async validates(kind: string, name: string, agent: Agent, fn: () => boolean | Promise<boolean>): Promise<boolean> {
    try {
      return Boolean(await fn());
    } catch (err) {
      this.failed(`${kind} validate`, name, err, agent);
      return false;
    }
  }

  service(): pb.PluginServer {
    return {
      describe: this.unary(async () => this.manifest()),

      init: this.unary(async (req: pb.InitRequest) => {
        if (req.runtimeAddress) {
          this.close();
          // The Runtime socket is the host's private unix socket: no TLS.
          // The token says which plugin calls.
          const target = req.runtimeAddress.startsWith('/') ? `unix://${req.runtimeAddress}` : req.runtimeAddress;
          const metadata = new grpc.Metadata();
          metadata.set('authorization', `Bearer ${req.runtimeToken}`);
          const creds = grpc.credentials.createInsecure();
          const runtime = new RuntimeClient(target, creds, grpcSizeOptions);
          // The Database client shares the Runtime client's connection.
          const database = new DatabaseClient(target, creds, { ...grpcSizeOptions, channelOverride: runtime.getChannel() });
          // Connect now: the first call then finds the connection made.
          runtime.getChannel().getConnectivityState(true);
          this.link = { runtime, database, metadata };
        }
        if (this.plugin.init) {
          const features = [...req.features];
          try {
            await this.plugin.init({
              version: req.hostVersion,
              protocolMinor: Math.min(req.protocolMinor, PROTOCOL_MINOR),
              features,
              dataDir: req.dataDir,
              offers: (f: string) => features.includes(f),
            });
          } catch (err) {
            throw new RpcFailure(codeOf(err), this.failed('init of plugin', this.plugin.name, err));
          }
        }
        this.log.debug('initialised', { host_version: req.hostVersion, host_protocol_minor: req.protocolMinor });
        return {};
      }),

      configure: this.unary(async (req: pb.ConfigureRequest) => {
        if (!req.agentId) throw new RpcFailure(grpc.status.INVALID_ARGUMENT, 'configure: agent_id is empty');
        const character = characterOf(req.characterJson, req.agentId);
        const name = typeof character.name === 'string' ? character.name : '';
        const label = name && name !== req.agentId ? `${name} (${req.agentId})` : req.agentId;
        for (const s of this.plugin.settings ?? []) {
          if (!s.required || (req.settings[s.name] ?? '').trim() !== '') continue;
          const what = s.description ? ` (${s.description.replace(/\.$/, '')})` : '';
          throw new InvalidError(
            `the setting ${s.name}${what} is required, and agent ${label} does not have it: ` +
              `set it in the character's ${s.secret ? 'secrets' : 'settings'} or in the daemon's environment (.env)`,
          );
        }
        this.agents.get(req.agentId)?.lifetime.abort(new CancelledError('the agent was configured again'));
        const state: AgentState = {
          id: req.agentId, name, character, settings: Object.freeze({ ...req.settings }), declared: this.declared,
          lifetime: new AbortController(), link: () => this.link, log: this.log, undeclared: this.undeclared,
        };
        let warnings: string[] = [];
        if (this.plugin.configure) {
          const agent = new Agent(state, { runId: '', signal: state.lifetime.signal });
          try {
            warnings = (await this.plugin.configure(agent)) ?? [];
          } catch (err) {
            state.lifetime.abort(new CancelledError('the agent did not start'));
            throw new RpcFailure(codeOf(err), `configure agent ${label} in plugin ${this.plugin.name}: ${messageOf(err)}`);
          }
        }
        this.agents.set(req.agentId, state);
        return { warnings: warnings.map(String) };
      }),

      unconfigure: this.unary(async (req: pb.UnconfigureRequest) => {
        const state = this.agents.get(req.agentId);
        this.agents.delete(req.agentId);
        if (!state) return {};
        state.lifetime.abort(new CancelledError('the agent stopped'));
        if (this.plugin.unconfigure) {
          const agent = new Agent(state, { runId: '', signal: new AbortController().signal });
          try {
            await this.plugin.unconfigure(agent);
          } catch (err) {
            this.failed('unconfigure of agent', req.agentId, err, agent);
          }
        }
        return {};
      }),

      getProviders: this.served(
        (req: pb.GetProvidersRequest) => req.runId,
        async (agent, req) => {
          const message = memoryFromProto(req.message);
          const state = stateFromProto(req.state);
          // Providers are independent: they run side by side.
          const results = await Promise.all(
            req.names.map(async (name): Promise<pb.ProviderResult> => {
              const out = pb.ProviderResult.fromPartial({ name });
              const p = this.providers.get(name);
              if (!p) {
                out.error = `plugin ${this.plugin.name} has no provider ${JSON.stringify(name)}`;
                return out;
              }
              try {
                const r = await p.get(agent, message, state);
                const res = typeof r === 'string' ? { text: r } : (r ?? {});
                out.text = res.text ?? '';
                out.valuesJson = encodeJson(res.values);
                out.dataJson = encodeJson(res.data);
              } catch (err) {
                out.error = this.failed('provider', name, err, agent);
              }
              return out;
            }),
          );
          return { results };
        },
      ),

      validateActions: this.served(
        () => '',
        async (agent, req: pb.ValidateActionsRequest) => {
          const message = memoryFromProto(req.message);
          const state = stateFromProto(req.state);
          const ok = await Promise.all(
            req.names.map(async (name) => {
              const a = this.actions.get(name);
              if (!a) return false;
              if (!a.validate) return true;
              return this.validates('action', name, agent, () => a.validate!(agent, message, state));
            }),
          );
          return { valid: req.names.filter((_, i) => ok[i]) };
        },
      ),

      runAction: this.served(
        (req: pb.RunActionRequest) => req.runId,
        async (agent, req) => {
          const a = this.actions.get(req.name);
          if (!a) throw new NotFoundError(`plugin ${this.plugin.name} has no action ${JSON.stringify(req.name)}`);
          let result: ActionResult;
          try {
            const r = await a.handler(agent, {
              message: memoryFromProto(req.message),
              state: stateFromProto(req.state),
              responses: req.responses.map(memoryFromProto),
              runId: req.runId,
              previous: req.previous.map(outcomeFromProto),
              options: decodeObject(req.optionsJson, 'run_action.options_json'),
            });
            result = r ?? { success: true };
          } catch (err) {
            // An action that fails is a result, not a broken call: the
            // chain goes on and the failure is recorded.
            result = { success: false, error: this.failed('action', req.name, err, agent) };
          }
          return { result: actionResultToProto(result) };
        },
      ),

      runEvaluators: this.served(
        (req: pb.RunEvaluatorsRequest) => req.runId,
        async (agent, req) => {
          const call = {
            message: memoryFromProto(req.message),
            state: stateFromProto(req.state),
            didRespond: req.didRespond,
            responses: req.responses.map(memoryFromProto),
            runId: req.runId,
          };
          const outcomes = await Promise.all(
            req.names.map(async (name): Promise<pb.EvaluatorOutcome> => {
              const e = this.evaluators.get(name);
              if (!e) return { name, ran: false, error: `plugin ${this.plugin.name} has no evaluator ${JSON.stringify(name)}` };
              if (!call.didRespond && !e.alwaysRun) return { name, ran: false, error: '' };
              if (e.validate && !(await this.validates('evaluator', name, agent, () => e.validate!(agent, call.message, call.state)))) {
                return { name, ran: false, error: '' };
              }
              try {
                await e.handler(agent, call);
                return { name, ran: true, error: '' };
              } catch (err) {
                return { name, ran: true, error: this.failed('evaluator', name, err, agent) };
              }
            }),
          );
          return { outcomes };
        },
      ),

      handleEvent: this.served(
        (req: pb.HandleEventRequest) => req.runId,
        async (agent, req) => {
          const hs = this.events.get(req.type);
          if (!hs) throw new NotFoundError(`plugin ${this.plugin.name} does not handle event ${req.type}`);
          const ev = {
            type: req.type, runId: req.runId, source: req.source,
            message: req.message ? memoryFromProto(req.message) : undefined,
            payload: decodeObject(req.payloadJson, 'handle_event.payload_json'),
          };
          const failures: RpcFailure[] = [];
          // One handler's failure must not skip the others.
          for (const h of hs) {
            try {
              await this.guard('event handler', req.type, agent, () => h.handler(agent, ev));
            } catch (err) {
              failures.push(err as RpcFailure);
            }
          }
          if (failures.length > 0) {
            throw new RpcFailure(failures[0].code, failures.map((f) => f.message).join('; '));
          }
          // Events go to the host with emitEvent as they happen; none are
          // handed back with the answer (HandleEventResponse.emitted).
          return { emitted: [] };
        },
      ),

      useModel: this.served(
        (req: pbt.ModelRequest) => req.runId,
        async (agent, req) => {
          const m = this.models.get(req.type);
          if (!m) throw new NotFoundError(`plugin ${this.plugin.name} has no model of type ${req.type}`);
          const res = await this.guard('model', req.type, agent, () => m.handler(agent, modelRequestFromProto(req)));
          return modelResponseToProto(res);
        },
      ),

      streamModel: (call) => {
        const req = call.request;
        let done = () => {};
        (async () => {
          const state = this.agentState(req.agentId);
          const m = this.models.get(req.type);
          if (!m) throw new NotFoundError(`plugin ${this.plugin.name} has no model of type ${req.type}`);
          const s = this.scope(call as Surface, req.runId);
          done = s.done;
          const agent = new Agent(state, s.scope);
          const request = modelRequestFromProto(req);
          let res;
          if (m.stream) {
            res = await this.guard('model', req.type, agent, () =>
              m.stream!(agent, request, (text) => {
                if (text) call.write({ text, final: undefined });
              }),
            );
          } else {
            res = await this.guard('model', req.type, agent, () => m.handler(agent, request));
            const text = typeof res === 'string' ? res : res?.text;
            if (text) call.write({ text, final: undefined });
          }
          call.write({ text: '', final: modelResponseToProto(res) });
          call.end();
        })().then(done, (err: unknown) => {
          done();
          call.emit('error', statusOf(err));
        });
      },

      sendMessage: this.served(
        () => '',
        async (agent, req: pb.SendMessageRequest) => {
          const target = targetFromProto(req.target);
          const src = this.sources.get(target.source);
          if (!src) throw new NotFoundError(`plugin ${this.plugin.name} cannot send to source ${JSON.stringify(target.source)}`);
          const ids = await this.guard('source', target.source, agent, () => src.send(agent, target, contentFromProto(req.content)));
          return { messageIds: ids ?? [] };
        },
      ),

      handleHttp: this.served(
        () => '',
        async (agent, req: pb.HandleHTTPRequest) => {
          const routes = this.plugin.routes ?? [];
          if (routes.length === 0) throw new NotFoundError(`plugin ${this.plugin.name} serves no HTTP requests`);
          const path = req.path || '/';
          const onPath = routes.filter((r) => r.path === path);
          const route: Route | undefined = onPath.find((r) => !r.method || r.method.toUpperCase() === req.method.toUpperCase());
          if (!route) {
            const status = onPath.length === 0 ? 404 : 405;
            const body = onPath.length === 0 ? `no route ${path}` : `${req.method} is not allowed on ${path}`;
            return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from(`${body}\n`) };
          }
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
          const what = `${route.method ?? req.method} ${route.path}`;
          const res = await this.guard('http route', what, agent, () =>
            route.handler(agent, { method: req.method, path, query: req.rawQuery, headers, body: req.body, remoteAddr: req.remoteAddr }),
          );
          const body = res?.body;
          return {
            status: res?.status ?? 200,
            headers: { ...(res?.headers ?? {}) },
            body: body === undefined ? Buffer.alloc(0) : typeof body === 'string' ? Buffer.from(body) : Buffer.from(body),
          };
        },
      ),

      // Shutdown cancels every call in flight; the host then stops the
      // process through the controller.
      shutdown: this.unary(async () => {
        this.stop.abort(new CancelledError('the plugin is stopping'));
        return {};
      }),
    };
  }
}
