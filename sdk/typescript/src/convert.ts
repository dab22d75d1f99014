// Conversion between the protocol's messages (src/gen) and the plain
// values of types.ts. Free-form maps travel as JSON in bytes fields.

import * as pb from './gen/agenthost/plugin/v1/types';
import type {
  ActionOutcome,
  ActionResult,
  Content,
  Entity,
  JsonObject,
  LogEntry,
  Media,
  Memory,
  ModelRequest,
  ModelResponse,
  Room,
  State,
  Target,
} from './types';

let badJson: (field: string, err: unknown) => void = () => {};

/** Says where JSON that does not parse is reported (the plugin's log). */
export function onBadJson(fn: (field: string, err: unknown) => void): void {
  badJson = fn;
}

const empty = Buffer.alloc(0);

export function encodeJson(v: unknown): Buffer {
  if (v === undefined || v === null) return empty;
  if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0) return empty;
  return Buffer.from(JSON.stringify(v));
}

/** A JSON object from a *_json field: {} when empty, or when it is not an object (reported). */
export function decodeObject(b: Uint8Array | undefined, field: string): JsonObject {
  if (!b || b.length === 0) return {};
  try {
    const v: unknown = JSON.parse(Buffer.from(b).toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as JsonObject;
    badJson(field, new Error('not a JSON object'));
  } catch (err) {
    badJson(field, err);
  }
  return {};
}

function decodeAny(b: Uint8Array | undefined, field: string): unknown {
  if (!b || b.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(b).toString('utf8'));
  } catch (err) {
    badJson(field, err);
    return undefined;
  }
}

const contentKeys = new Set([
  'text', 'thought', 'actions', 'providers', 'source', 'target', 'url', 'inReplyTo', 'attachments', 'channelType',
]);

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

function strs(v: unknown): string[] {
  return Array.isArray(v) ? v.map(str) : [];
}

function mediaToProto(m: Media): pb.Media {
  return pb.Media.fromPartial({
    id: str(m.id), url: str(m.url), title: str(m.title), source: str(m.source),
    description: str(m.description), text: str(m.text), contentType: str(m.contentType),
  });
}

function mediaFromProto(m: pb.Media): Media {
  const out: Media = {};
  for (const k of ['id', 'url', 'title', 'source', 'description', 'text', 'contentType'] as const) {
    if (m[k]) out[k] = m[k];
  }
  return out;
}

export function contentToProto(c: Content | string | undefined): pb.Content {
  if (typeof c === 'string') c = { text: c };
  c = c ?? {};
  const extra: JsonObject = {};
  for (const [k, v] of Object.entries(c)) {
    if (!contentKeys.has(k) && v !== undefined) extra[k] = v;
  }
  return pb.Content.fromPartial({
    text: str(c.text), thought: str(c.thought), actions: strs(c.actions), providers: strs(c.providers),
    source: str(c.source), target: str(c.target), url: str(c.url), inReplyTo: str(c.inReplyTo),
    attachments: (Array.isArray(c.attachments) ? c.attachments : []).map(mediaToProto),
    channelType: str(c.channelType), extraJson: encodeJson(extra),
  });
}

export function contentFromProto(c: pb.Content | undefined): Content {
  if (!c) return {};
  const out: Content = { ...decodeObject(c.extraJson, 'content.extra_json') };
  for (const k of contentKeys) delete out[k];
  if (c.text) out.text = c.text;
  if (c.thought) out.thought = c.thought;
  if (c.actions.length) out.actions = c.actions;
  if (c.providers.length) out.providers = c.providers;
  if (c.source) out.source = c.source;
  if (c.target) out.target = c.target;
  if (c.url) out.url = c.url;
  if (c.inReplyTo) out.inReplyTo = c.inReplyTo;
  if (c.attachments.length) out.attachments = c.attachments.map(mediaFromProto);
  if (c.channelType) out.channelType = c.channelType;
  return out;
}

export function memoryToProto(m: Memory | undefined): pb.Memory | undefined {
  if (!m) return undefined;
  return pb.Memory.fromPartial({
    id: str(m.id), entityId: str(m.entityId), agentId: str(m.agentId), roomId: str(m.roomId), worldId: str(m.worldId),
    createdAt: m.createdAt ?? 0, content: contentToProto(m.content), embedding: m.embedding ?? [],
    unique: m.unique ?? false, similarity: m.similarity ?? 0, metadataJson: encodeJson(m.metadata), table: str(m.table),
  });
}

export function memoryFromProto(m: pb.Memory | undefined): Memory {
  if (!m) return { content: {} };
  const out: Memory = { content: contentFromProto(m.content) };
  if (m.id) out.id = m.id;
  if (m.entityId) out.entityId = m.entityId;
  if (m.agentId) out.agentId = m.agentId;
  if (m.roomId) out.roomId = m.roomId;
  if (m.worldId) out.worldId = m.worldId;
  if (m.createdAt) out.createdAt = m.createdAt;
  if (m.embedding.length) out.embedding = m.embedding;
  if (m.unique) out.unique = true;
  if (m.similarity) out.similarity = m.similarity;
  if (m.metadataJson.length) out.metadata = decodeObject(m.metadataJson, 'memory.metadata_json');
  if (m.table) out.table = m.table;
  return out;
}

export function stateFromProto(s: pb.State | undefined): State {
  return {
    values: decodeObject(s?.valuesJson, 'state.values_json'),
    data: decodeObject(s?.dataJson, 'state.data_json'),
    text: s?.text ?? '',
  };
}

export function actionResultToProto(r: ActionResult): pb.ActionResult {
  return pb.ActionResult.fromPartial({
    success: Boolean(r.success), text: str(r.text), valuesJson: encodeJson(r.values), dataJson: encodeJson(r.data),
    error: str(r.error),
  });
}

export function actionResultFromProto(r: pb.ActionResult | undefined): ActionResult {
  const out: ActionResult = { success: r?.success ?? false };
  if (r?.text) out.text = r.text;
  if (r?.valuesJson.length) out.values = decodeObject(r.valuesJson, 'action_result.values_json');
  if (r?.dataJson.length) out.data = decodeObject(r.dataJson, 'action_result.data_json');
  if (r?.error) out.error = r.error;
  return out;
}

export function outcomeFromProto(o: { name: string; result?: pb.ActionResult | undefined }): ActionOutcome {
  return { name: o.name, result: actionResultFromProto(o.result) };
}

export function entityToProto(e: Entity): pb.Entity {
  return pb.Entity.fromPartial({ id: str(e.id), names: strs(e.names), metadataJson: encodeJson(e.metadata), agentId: str(e.agentId) });
}

export function entityFromProto(e: pb.Entity): Entity {
  const out: Entity = { id: e.id, names: e.names };
  if (e.metadataJson.length) out.metadata = decodeObject(e.metadataJson, 'entity.metadata_json');
  if (e.agentId) out.agentId = e.agentId;
  return out;
}

export function roomToProto(r: Room): pb.Room {
  return pb.Room.fromPartial({
    id: str(r.id), name: str(r.name), agentId: str(r.agentId), source: str(r.source), type: str(r.type),
    channelId: str(r.channelId), serverId: str(r.serverId), worldId: str(r.worldId), metadataJson: encodeJson(r.metadata),
  });
}

export function roomFromProto(r: pb.Room): Room {
  const out: Room = { id: r.id };
  for (const k of ['name', 'agentId', 'source', 'type', 'channelId', 'serverId', 'worldId'] as const) {
    if (r[k]) out[k] = r[k];
  }
  if (r.metadataJson.length) out.metadata = decodeObject(r.metadataJson, 'room.metadata_json');
  return out;
}

export function targetToProto(t: Target): pb.Target {
  return pb.Target.fromPartial({
    source: str(t.source), roomId: str(t.roomId), channelId: str(t.channelId), serverId: str(t.serverId),
    entityId: str(t.entityId), threadId: str(t.threadId),
  });
}

export function targetFromProto(t: pb.Target | undefined): Target {
  const out: Target = { source: t?.source ?? '' };
  for (const k of ['roomId', 'channelId', 'serverId', 'entityId', 'threadId'] as const) {
    if (t?.[k]) out[k] = t[k];
  }
  return out;
}

export function logToProto(agentId: string, l: LogEntry): pb.LogEntry {
  return pb.LogEntry.fromPartial({
    id: str(l.id), agentId, entityId: str(l.entityId), roomId: str(l.roomId), type: str(l.type),
    bodyJson: Buffer.from(JSON.stringify(l.body ?? {})), createdAt: l.createdAt ?? 0,
  });
}

export function logFromProto(l: pb.LogEntry): LogEntry {
  const out: LogEntry = { type: l.type, body: decodeObject(l.bodyJson, 'log.body_json') };
  if (l.id) out.id = l.id;
  if (l.entityId) out.entityId = l.entityId;
  if (l.roomId) out.roomId = l.roomId;
  if (l.createdAt) out.createdAt = l.createdAt;
  return out;
}

export function modelRequestToProto(agentId: string, r: ModelRequest): pb.ModelRequest {
  return pb.ModelRequest.fromPartial({
    agentId, type: str(r.type), runId: str(r.runId), prompt: str(r.prompt), system: str(r.system),
    temperature: r.temperature, maxTokens: r.maxTokens ?? 0, stopSequences: strs(r.stopSequences),
    frequencyPenalty: r.frequencyPenalty, presencePenalty: r.presencePenalty, text: str(r.text),
    probe: r.probe ?? false, paramsJson: encodeJson(r.params), provider: str(r.provider),
  });
}

export function modelRequestFromProto(r: pb.ModelRequest): ModelRequest {
  const out: ModelRequest = { type: r.type };
  if (r.runId) out.runId = r.runId;
  if (r.prompt) out.prompt = r.prompt;
  if (r.system) out.system = r.system;
  if (r.temperature !== undefined) out.temperature = r.temperature;
  if (r.maxTokens) out.maxTokens = r.maxTokens;
  if (r.stopSequences.length) out.stopSequences = r.stopSequences;
  if (r.frequencyPenalty !== undefined) out.frequencyPenalty = r.frequencyPenalty;
  if (r.presencePenalty !== undefined) out.presencePenalty = r.presencePenalty;
  if (r.text) out.text = r.text;
  if (r.probe) out.probe = true;
  if (r.paramsJson.length) out.params = decodeObject(r.paramsJson, 'model_request.params_json');
  if (r.provider) out.provider = r.provider;
  return out;
}

export function modelResponseToProto(r: ModelResponse | string | undefined): pb.ModelResponse {
  if (typeof r === 'string') r = { text: r };
  r = r ?? {};
  return pb.ModelResponse.fromPartial({
    text: str(r.text), embedding: r.embedding ?? [],
    json: r.json === undefined ? empty : Buffer.from(JSON.stringify(r.json)),
    data: r.data ? Buffer.from(r.data) : empty, contentType: str(r.contentType),
    usage: r.usage ? pb.Usage.fromPartial(r.usage) : undefined, model: str(r.model), provider: str(r.provider),
  });
}

export function modelResponseFromProto(r: pb.ModelResponse): ModelResponse {
  const out: ModelResponse = {};
  if (r.text) out.text = r.text;
  if (r.embedding.length) out.embedding = r.embedding;
  if (r.json.length) out.json = decodeAny(r.json, 'model_response.json');
  if (r.data.length) out.data = r.data;
  if (r.contentType) out.contentType = r.contentType;
  if (r.usage) out.usage = { ...r.usage };
  if (r.model) out.model = r.model;
  if (r.provider) out.provider = r.provider;
  return out;
}
