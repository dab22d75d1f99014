// The agent a handler runs for, and its way back to the host.
//
// Every handler gets an Agent bound to the call it serves: the Runtime calls
// it makes carry the plugin's runtime token (which tells the host who
// calls), end by the call's deadline, and are cancelled with the call. The
// host serves storage (memories, entities, rooms, cache, logs) as the
// Database service on the same connection; it checks each call and forwards
// it to the agent's database plugin.

import { Metadata, type CallOptions, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { CancelledError, DeadlineExceededError, UnavailableError, errorFromStatus } from './errors';
import type { Logger } from './log';
import {
  contentToProto,
  entityFromProto,
  entityToProto,
  logFromProto,
  logToProto,
  memoryFromProto,
  memoryToProto,
  modelRequestToProto,
  modelResponseFromProto,
  roomFromProto,
  roomToProto,
  targetToProto,
  encodeJson,
} from './convert';
import type * as db from './gen/agenthost/plugin/v1/database';
import type * as pbp from './gen/agenthost/plugin/v1/plugin';
import type * as rt from './gen/agenthost/plugin/v1/runtime';
import type * as pbt from './gen/agenthost/plugin/v1/types';
import type {
  Content,
  Entity,
  JsonObject,
  LogEntry,
  Memory,
  ModelRequest,
  ModelResponse,
  Room,
  Setting,
  Target,
} from './types';

/** An ordinary Runtime call (storage, respond) gets this long unless the call it serves has less. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** A model call gets this long unless the call it serves has less. */
export const DEFAULT_MODEL_TIMEOUT_MS = 5 * 60_000;

/** Selects memories; every field is optional. */
export interface MemoryQuery {
  /** messages (the default), facts, documents, ... */
  table?: string;
  roomId?: string;
  roomIds?: string[];
  entityId?: string;
  worldId?: string;
  /** 0 or absent: the store's default. */
  count?: number;
  unique?: boolean;
  /** Unix milliseconds, inclusive. */
  start?: number;
  end?: number;
  omitEmbeddings?: boolean;
}

/** Finds the memories most similar to an embedding. */
export interface SearchQuery {
  embedding: number[];
  table?: string;
  /** Minimum cosine similarity. */
  threshold?: number;
  count?: number;
  unique?: boolean;
  roomId?: string;
  worldId?: string;
  entityId?: string;
}

/** Selects rooms: by ids, by participant or by world. */
export interface RoomQuery {
  ids?: string[];
  participantId?: string;
  participantIds?: string[];
  worldId?: string;
}

/** Selects timeline entries, newest first. */
export interface LogQuery {
  roomId?: string;
  type?: string;
  entityId?: string;
  count?: number;
  /** Skips that many of the newest entries. */
  offset?: number;
}

/** The plugin's connection to the host, made at Init. */
export interface HostLink {
  runtime: rt.RuntimeClient;
  database: db.DatabaseClient;
  /** authorization: Bearer <runtime token>, on every call. */
  metadata: Metadata;
}

/** What stays the same for an agent across calls. */
export interface AgentState {
  id: string;
  name: string;
  character: JsonObject;
  settings: Readonly<Record<string, string>>;
  declared: ReadonlyMap<string, Setting>;
  /** Aborts when the agent is unconfigured or the plugin stops. */
  lifetime: AbortController;
  link: () => HostLink | undefined;
  log: Logger;
  /** Settings read without being declared, warned about once. */
  undeclared: Set<string>;
}

/** The call an Agent is bound to. */
export interface CallScope {
  runId: string;
  signal: AbortSignal;
  /** Unix milliseconds. */
  deadline?: number;
}

type Invoke<Res> = (
  md: Metadata,
  opts: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => ClientUnaryCall;

/**
 * One agent as the plugin sees it, bound to the call being served: its id,
 * character and settings, and the host's Runtime for it. One plugin process
 * serves every agent that uses the plugin.
 */
export class Agent {
  /** The agent's id. */
  readonly id: string;
  /** The character's name. */
  readonly name: string;
  /** The character, in elizaOS's JSON shape, without its secrets. */
  readonly character: JsonObject;
  /** The settings the plugin declares, as resolved for this agent. */
  readonly settings: Readonly<Record<string, string>>;
  /** The run the call belongs to ("" when the call has none). */
  readonly runId: string;
  /**
   * Aborts when the host cancels the call, its deadline passes, or the
   * plugin stops. Pass it to fetch() and the like; Runtime calls made
   * through this agent follow it by themselves.
   */
  readonly signal: AbortSignal;
  /** When the call must be answered, in Unix milliseconds; undefined for none. */
  readonly deadline: number | undefined;
  /** The plugin's logger with agent_id, agent_name and run_id on every line. */
  readonly log: Logger;

  readonly #state: AgentState;

  /** @internal Handlers receive agents; plugins do not make them. */
  constructor(state: AgentState, scope: CallScope) {
    this.#state = state;
    this.id = state.id;
    this.name = state.name;
    this.character = state.character;
    this.settings = state.settings;
    this.runId = scope.runId;
    this.signal = scope.signal;
    this.deadline = scope.deadline;
    const fields: Record<string, unknown> = { agent_id: state.id };
    if (state.name) fields.agent_name = state.name;
    if (scope.runId) fields.run_id = scope.runId;
    this.log = state.log.with(fields);
  }

  /**
   * A setting's value, or its declared default when the agent does not
   * have it, or undefined. Only declared settings are ever set.
   */
  setting(name: string): string | undefined {
    const decl = this.#state.declared.get(name);
    if (!decl && !this.#state.undeclared.has(name)) {
      this.#state.undeclared.add(name);
      this.#state.log.warn(
        `the plugin reads setting ${name}, which its manifest does not declare: the host never sends it; add it to the plugin's settings`,
        { setting: name },
      );
    }
    const v = this.#state.settings[name];
    if (v !== undefined && v !== '') return v;
    return decl?.default;
  }

  /** The milliseconds left before the call's deadline; Infinity without one. */
  timeLeft(): number {
    return this.deadline === undefined ? Infinity : Math.max(0, this.deadline - Date.now());
  }

  // ---- models ------------------------------------------------------------

  /** Calls the agent's model of a type, the highest priority one unless request.provider names one. */
  async useModel(type: string, request: Omit<ModelRequest, 'type'> = {}): Promise<ModelResponse> {
    const req = modelRequestToProto(this.id, { runId: this.runId, ...request, type });
    const res = await this.#call<pbt.ModelResponse>(`UseModel ${type}`, DEFAULT_MODEL_TIMEOUT_MS, (md, o, cb) =>
      this.#link(`UseModel ${type}`).runtime.useModel(req, md, o, cb),
    );
    return modelResponseFromProto(res);
  }

  /** Asks a text model (TEXT_LARGE unless options.type says otherwise) for a completion. */
  async generateText(
    prompt: string,
    options: { type?: string; system?: string; temperature?: number; maxTokens?: number; stopSequences?: string[] } = {},
  ): Promise<string> {
    const { type = 'TEXT_LARGE', ...rest } = options;
    return (await this.useModel(type, { ...rest, prompt })).text ?? '';
  }

  /** The TEXT_EMBEDDING vector of a text. */
  async embed(text: string): Promise<number[]> {
    const res = await this.useModel('TEXT_EMBEDDING', { text });
    if (!res.embedding?.length) throw new UnavailableError(`model ${res.provider || 'TEXT_EMBEDDING'} returned no embedding`);
    return res.embedding;
  }

  // ---- messages and events ----------------------------------------------

  /**
   * Sends content back to where the run's message came from (elizaOS's
   * callback). The host stores it among the room's messages unless
   * memoryId names a memory the plugin stored. With last set, no other
   * reply of the run follows: the host answers whoever waits for the run
   * (an HTTP client) at once, while the handler goes on. Returns the
   * platform's ids.
   */
  async respond(content: Content | string, options: { runId?: string; memoryId?: string; last?: boolean } = {}): Promise<string[]> {
    const res = await this.#call<rt.RespondResponse>('Respond', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('Respond').runtime.respond(
        { agentId: this.id, runId: options.runId ?? this.runId, content: contentToProto(content), memoryId: options.memoryId ?? '', last: options.last ?? false },
        md, o, cb,
      ),
    );
    return res.messageIds;
  }

  /** Sends content to a target; target.source picks the plugin that delivers it. */
  async sendMessage(target: Target, content: Content | string): Promise<string[]> {
    const res = await this.#call<pbp.SendMessageResponse>('SendMessage', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('SendMessage').runtime.sendMessage(
        { agentId: this.id, target: targetToProto(target), content: contentToProto(content), deliveryId: '' },
        md, o, cb,
      ),
    );
    return res.messageIds;
  }

  /** Hands an event to the plugins subscribed to its type. */
  async emitEvent(type: string, options: { payload?: JsonObject; message?: Memory; source?: string; runId?: string } = {}): Promise<void> {
    await this.#call<rt.EmitEventResponse>(`EmitEvent ${type}`, DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link(`EmitEvent ${type}`).runtime.emitEvent(
        {
          agentId: this.id, type, source: options.source ?? '', message: memoryToProto(options.message),
          payloadJson: encodeJson(options.payload), runId: options.runId ?? this.runId,
        },
        md, o, cb,
      ),
    );
  }

  /** Asks the host for the agent's settings, as Configure carried them. */
  async getSettings(): Promise<Record<string, string>> {
    const res = await this.#call<rt.GetSettingsResponse>('GetSettings', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('GetSettings').runtime.getSettings({ agentId: this.id }, md, o, cb),
    );
    return { ...res.settings };
  }

  // ---- memories ----------------------------------------------------------

  /** Stores a memory (in options.table, else memory.table, else messages) and returns its id. */
  async createMemory(memory: Memory, options: { table?: string; unique?: boolean } = {}): Promise<{ id: string; created: boolean }> {
    const table = options.table ?? memory.table ?? 'messages';
    const res = await this.#call<db.CreateMemoryResponse>('CreateMemory', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('CreateMemory').database.createMemory(
        { agentId: this.id, memory: memoryToProto(memory), table, unique: options.unique ?? false },
        md, o, cb,
      ),
    );
    return { id: res.id, created: res.created };
  }

  /** Memories, newest first. */
  async getMemories(query: MemoryQuery = {}): Promise<Memory[]> {
    const res = await this.#call<db.GetMemoriesResponse>('GetMemories', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('GetMemories').database.getMemories(
        {
          agentId: this.id, table: query.table ?? 'messages', roomId: query.roomId ?? '', roomIds: query.roomIds ?? [],
          entityId: query.entityId ?? '', worldId: query.worldId ?? '', count: query.count ?? 0, unique: query.unique ?? false,
          start: query.start ?? 0, end: query.end ?? 0, omitEmbeddings: query.omitEmbeddings ?? false,
        },
        md, o, cb,
      ),
    );
    return res.memories.map(memoryFromProto);
  }

  /** The memories most similar to query.embedding, best first. */
  async searchMemories(query: SearchQuery): Promise<Memory[]> {
    const res = await this.#call<db.SearchMemoriesResponse>('SearchMemories', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('SearchMemories').database.searchMemories(
        {
          agentId: this.id, table: query.table ?? 'messages', embedding: query.embedding, threshold: query.threshold ?? 0,
          count: query.count ?? 0, unique: query.unique ?? false, roomId: query.roomId ?? '', worldId: query.worldId ?? '',
          entityId: query.entityId ?? '',
        },
        md, o, cb,
      ),
    );
    return res.memories.map(memoryFromProto);
  }

  /** Counts a room's memories in a table (messages unless options.table says otherwise). */
  async countMemories(roomId: string, options: { table?: string; unique?: boolean } = {}): Promise<number> {
    const res = await this.#call<db.CountMemoriesResponse>('CountMemories', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('CountMemories').database.countMemories(
        { agentId: this.id, roomId, table: options.table ?? 'messages', unique: options.unique ?? false },
        md, o, cb,
      ),
    );
    return res.count;
  }

  /** Deletes one memory. */
  async deleteMemory(id: string): Promise<void> {
    await this.#call<db.DeleteMemoryResponse>('DeleteMemory', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('DeleteMemory').database.deleteMemory({ agentId: this.id, id }, md, o, cb),
    );
  }

  // ---- entities and rooms ------------------------------------------------

  /** The entities with these ids that exist. */
  async getEntities(ids: string[]): Promise<Entity[]> {
    const res = await this.#call<db.GetEntitiesResponse>('GetEntities', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('GetEntities').database.getEntities({ agentId: this.id, ids, includeComponents: false }, md, o, cb),
    );
    return res.entities.map(entityFromProto);
  }

  /** The entities that take part in a room. */
  async getEntitiesForRoom(roomId: string): Promise<Entity[]> {
    const res = await this.#call<db.GetEntitiesForRoomResponse>('GetEntitiesForRoom', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('GetEntitiesForRoom').database.getEntitiesForRoom({ agentId: this.id, roomId, includeComponents: false }, md, o, cb),
    );
    return res.entities.map(entityFromProto);
  }

  /** Creates or replaces entities. */
  async upsertEntities(entities: Entity[]): Promise<void> {
    await this.#call<db.UpsertEntitiesResponse>('UpsertEntities', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('UpsertEntities').database.upsertEntities({ agentId: this.id, entities: entities.map(entityToProto) }, md, o, cb),
    );
  }

  /** Rooms by ids, by participant or by world. */
  async getRooms(query: RoomQuery): Promise<Room[]> {
    const res = await this.#call<db.GetRoomsResponse>('GetRooms', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('GetRooms').database.getRooms(
        {
          agentId: this.id, ids: query.ids ?? [], participantId: query.participantId ?? '',
          participantIds: query.participantIds ?? [], worldId: query.worldId ?? '',
        },
        md, o, cb,
      ),
    );
    return res.rooms.map(roomFromProto);
  }

  /** One room, or undefined when there is none with that id. */
  async getRoom(id: string): Promise<Room | undefined> {
    return (await this.getRooms({ ids: [id] }))[0];
  }

  /** Creates or replaces a room. */
  async upsertRoom(room: Room): Promise<void> {
    await this.#call<db.UpsertRoomResponse>('UpsertRoom', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('UpsertRoom').database.upsertRoom({ agentId: this.id, room: roomToProto(room) }, md, o, cb),
    );
  }

  /** The ids of the entities that take part in a room. */
  async getParticipants(roomId: string): Promise<string[]> {
    const res = await this.#call<db.GetParticipantsResponse>('GetParticipants', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('GetParticipants').database.getParticipants({ agentId: this.id, roomId }, md, o, cb),
    );
    return res.entityIds;
  }

  // ---- cache and timeline ------------------------------------------------

  /** The agent's cached value of a key, or undefined. */
  async getCache(key: string): Promise<string | undefined> {
    const res = await this.#call<db.GetCacheResponse>('GetCache', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('GetCache').database.getCache({ agentId: this.id, key }, md, o, cb),
    );
    return res.found ? Buffer.from(res.value).toString('utf8') : undefined;
  }

  /** Caches a value for the agent; options.ttlMs makes it expire. */
  async setCache(key: string, value: string, options: { ttlMs?: number } = {}): Promise<void> {
    await this.#call<db.SetCacheResponse>('SetCache', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('SetCache').database.setCache(
        { agentId: this.id, key, value: Buffer.from(value, 'utf8'), ttlMs: options.ttlMs ?? 0 },
        md, o, cb,
      ),
    );
  }

  /** Forgets a cached key. */
  async deleteCache(key: string): Promise<void> {
    await this.#call<db.DeleteCacheResponse>('DeleteCache', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('DeleteCache').database.deleteCache({ agentId: this.id, key }, md, o, cb),
    );
  }

  /** Adds an entry to the agent's timeline (GET /api/agents/{id}/logs). */
  async addLog(entry: LogEntry): Promise<void> {
    await this.#call<db.AddLogResponse>('AddLog', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('AddLog').database.addLog({ log: logToProto(this.id, entry) }, md, o, cb),
    );
  }

  /** The agent's timeline entries, newest first. */
  async getLogs(query: LogQuery = {}): Promise<LogEntry[]> {
    const res = await this.#call<db.GetLogsResponse>('GetLogs', DEFAULT_CALL_TIMEOUT_MS, (md, o, cb) =>
      this.#link('GetLogs').database.getLogs(
        {
          agentId: this.id, roomId: query.roomId ?? '', type: query.type ?? '', count: query.count ?? 0,
          entityId: query.entityId ?? '', offset: query.offset ?? 0,
        },
        md, o, cb,
      ),
    );
    return res.logs.map(logFromProto);
  }

  // ---- plumbing ------------------------------------------------------------

  #link(what: string): HostLink {
    const link = this.#state.link();
    if (!link) {
      throw new UnavailableError(`runtime ${what}: the plugin has no Runtime connection yet (the host has not called Init)`);
    }
    return link;
  }

  // #call makes one unary call on the Runtime connection, ended by the
  // served call's deadline (or timeoutMs, whichever comes first) and
  // cancelled with it.
  #call<Res>(what: string, timeoutMs: number, invoke: Invoke<Res>): Promise<Res> {
    const signal = this.signal;
    if (signal.aborted) return Promise.reject(abortError(signal, `runtime ${what}`));
    let deadline = Date.now() + timeoutMs;
    if (this.deadline !== undefined && this.deadline < deadline) deadline = this.deadline;
    return new Promise<Res>((resolve, reject) => {
      let call: ClientUnaryCall | undefined;
      const onAbort = () => call?.cancel();
      try {
        call = invoke(this.#state.link()?.metadata ?? new Metadata(), { deadline }, (err, res) => {
          signal.removeEventListener('abort', onAbort);
          if (err) reject(errorFromStatus(`runtime ${what}`, err));
          else resolve(res);
        });
      } catch (err) {
        reject(err);
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** The error a call gets when its signal aborted: the signal's reason when it is one of ours. */
export function abortError(signal: AbortSignal, what: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof DeadlineExceededError) return new DeadlineExceededError(`${what}: ${reason.message}`);
  if (reason instanceof CancelledError) return new CancelledError(`${what}: ${reason.message}`);
  return new CancelledError(`${what}: cancelled`);
}
