// The plain values a plugin author works with: what a plugin declares and
// what its handlers receive and return. Protobuf types never appear here;
// convert.ts translates at the edge.

import type { Agent } from './agent';

/** A value a handler may return directly or as a promise. */
export type Awaitable<T> = T | Promise<T>;

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/** An attachment of a message. */
export interface Media {
  id?: string;
  url?: string;
  title?: string;
  source?: string;
  description?: string;
  text?: string;
  /** image, video, audio, document or link. */
  contentType?: string;
}

/**
 * The payload of every message and memory, as in elizaOS. Keys beyond the
 * named ones travel too.
 */
export interface Content {
  text?: string;
  /** The agent's private reasoning; never shown to users. */
  thought?: string;
  actions?: string[];
  providers?: string[];
  /** The platform tag: api, telegram, discord, ... */
  source?: string;
  target?: string;
  url?: string;
  inReplyTo?: string;
  attachments?: Media[];
  channelType?: string;
  [key: string]: unknown;
}

/** A stored message, fact, document or fragment. */
export interface Memory {
  id?: string;
  /** The author. */
  entityId?: string;
  agentId?: string;
  roomId?: string;
  worldId?: string;
  /** Unix milliseconds. */
  createdAt?: number;
  content: Content;
  embedding?: number[];
  unique?: boolean;
  /** Set on search results only. */
  similarity?: number;
  metadata?: JsonObject;
  /** The table: messages, facts, documents, fragments, ... */
  table?: string;
}

/** What providers produce and prompts consume. */
export interface State {
  values: JsonObject;
  data: JsonObject;
  text: string;
}

/** A user, a bot or the agent itself. */
export interface Entity {
  id: string;
  names: string[];
  metadata?: JsonObject;
  agentId?: string;
}

/** A channel, a DM, a thread. */
export interface Room {
  id: string;
  name?: string;
  agentId?: string;
  source?: string;
  /** SELF, DM, GROUP, VOICE_DM, VOICE_GROUP, FEED, THREAD, WORLD, FORUM or API. */
  type?: string;
  channelId?: string;
  serverId?: string;
  worldId?: string;
  metadata?: JsonObject;
}

/** Where an outgoing message goes; source picks the plugin. */
export interface Target {
  source: string;
  roomId?: string;
  channelId?: string;
  serverId?: string;
  entityId?: string;
  threadId?: string;
}

/** What an action hands to the next one in its chain. */
export interface ActionResult {
  success: boolean;
  text?: string;
  values?: JsonObject;
  data?: JsonObject;
  error?: string;
}

/** One finished action of a chain. */
export interface ActionOutcome {
  name: string;
  result: ActionResult;
}

/** A provider's contribution to the state; a string is its text. */
export interface ProviderResult {
  text?: string;
  values?: JsonObject;
  data?: JsonObject;
}

/** Counts the tokens of one model call. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/**
 * A request for a model. Text calls use prompt, system and the sampling
 * fields; TEXT_EMBEDDING uses text; other types put their parameters in
 * params.
 */
export interface ModelRequest {
  /** TEXT_SMALL, TEXT_LARGE, TEXT_EMBEDDING, OBJECT_SMALL, IMAGE, ... */
  type: string;
  runId?: string;
  prompt?: string;
  system?: string;
  temperature?: number;
  maxTokens?: number;
  stopSequences?: string[];
  frequencyPenalty?: number;
  presencePenalty?: number;
  text?: string;
  probe?: boolean;
  params?: JsonObject;
  /** Ask for one plugin's handler instead of the highest priority. */
  provider?: string;
}

/** A model's answer: one of text, embedding, json or data. */
export interface ModelResponse {
  text?: string;
  embedding?: number[];
  json?: unknown;
  data?: Uint8Array;
  contentType?: string;
  usage?: Usage;
  /** The model that answered, e.g. gpt-4o-mini. */
  model?: string;
  /** The plugin that answered; set by the host. */
  provider?: string;
}

/** What an event handler receives. */
export interface Event {
  type: string;
  runId: string;
  source: string;
  /** Set for the message events. */
  message?: Memory;
  payload: JsonObject;
}

/** A request the daemon received for the plugin at /hooks/{plugin}/{agentId}/... */
export interface HttpRequest {
  method: string;
  /** What follows /hooks/{plugin}/{agentId}, starting with "/". */
  path: string;
  /** The query string, without "?". */
  query: string;
  /** Header names in lower case; several values of one header joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  remoteAddr: string;
}

/** A route's answer; status defaults to 200. */
export interface HttpResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/** A timeline entry: a run, a model call, an action, an evaluator. */
export interface LogEntry {
  id?: string;
  entityId?: string;
  roomId?: string;
  type: string;
  body: JsonObject;
  /** Unix milliseconds. */
  createdAt?: number;
}

// ---- what a plugin declares ----------------------------------------------

/**
 * A setting the plugin reads. The host sends a plugin only the settings it
 * declares (and those a character grants it).
 */
export interface Setting {
  name: string;
  description?: string;
  /** An agent without it does not start; the error names the setting. */
  required?: boolean;
  /** A credential: a key or a token. */
  secret?: boolean;
  /** What agent.setting() answers when the setting is not set. */
  default?: string;
  /** An address the plugin sends its secrets to, such as a base URL. */
  endpoint?: boolean;
}

/** One line of an example conversation. */
export interface ExampleMessage {
  name: string;
  content: Content;
}

/** Adds text and values to the state a prompt is built from. */
export interface Provider {
  name: string;
  description?: string;
  /** Runs only when asked for by name. */
  dynamic?: boolean;
  /** Never in the default set and not advertised. */
  private?: boolean;
  /** Orders providers; lower first. */
  position?: number;
  get(agent: Agent, message: Memory, state: State): Awaitable<ProviderResult | string>;
}

/** What an action handler receives about its run. */
export interface ActionCall {
  message: Memory;
  state: State;
  responses: Memory[];
  runId: string;
  /** The results of the earlier actions of this chain. */
  previous: ActionOutcome[];
  options: JsonObject;
}

/** Something the agent can do in answer to a message. */
export interface Action {
  name: string;
  description?: string;
  similes?: string[];
  examples?: ExampleMessage[][];
  /** Whether the action is offered for this message; offered when absent. */
  validate?(agent: Agent, message: Memory, state: State): Awaitable<boolean>;
  /** Nothing returned means success. A thrown error is a failed result naming the action. */
  handler(agent: Agent, call: ActionCall): Awaitable<ActionResult | void>;
}

/** What an evaluator handler receives. */
export interface EvaluatorCall {
  message: Memory;
  state: State;
  didRespond: boolean;
  responses: Memory[];
  runId: string;
}

/** Runs after the agent has responded (or chosen not to). */
export interface Evaluator {
  name: string;
  description?: string;
  similes?: string[];
  /** Runs even when the agent did not respond. */
  alwaysRun?: boolean;
  validate?(agent: Agent, message: Memory, state: State): Awaitable<boolean>;
  handler(agent: Agent, call: EvaluatorCall): Awaitable<void>;
}

/** Serves one model type. */
export interface Model {
  type: string;
  /** Decides between plugins serving the same type; higher wins. */
  priority?: number;
  /** A string is the answer's text. */
  handler(agent: Agent, request: ModelRequest): Awaitable<ModelResponse | string>;
  /**
   * Answers streamed calls: emit each piece of text as it is made, then
   * return the whole answer. Without it a streamed call gets handler's
   * answer in one piece.
   */
  stream?(agent: Agent, request: ModelRequest, emit: (text: string) => void): Awaitable<ModelResponse | string>;
}

/** Handles one event type. */
export interface EventHandler {
  type: string;
  handler(agent: Agent, event: Event): Awaitable<void>;
}

/** A platform the plugin can send messages to, e.g. "telegram". */
export interface Source {
  name: string;
  /** Delivers content and returns the platform's message ids. */
  send(agent: Agent, target: Target, content: Content): Awaitable<string[] | void>;
}

/**
 * An HTTP route the daemon forwards to the plugin: requests to
 * /hooks/{plugin}/{agentId}{path}. The daemon checks no API key there:
 * authenticate the caller yourself (a platform's webhook secret).
 */
export interface Route {
  /** GET, POST, ...; any method when absent. */
  method?: string;
  /** The path after /hooks/{plugin}/{agentId}, e.g. "/webhook". */
  path: string;
  handler(agent: Agent, request: HttpRequest): Awaitable<HttpResponse>;
}

/** What Init tells the plugin about its host. */
export interface Host {
  version: string;
  /** The protocol minor the host and this SDK both speak. */
  protocolMinor: number;
  /** Every method the plugin may call, by full gRPC name. */
  features: string[];
  /** The plugin's own folder (DATA_DIR/plugins/NAME). */
  dataDir: string;
  /** Whether the host offers a feature, e.g. "/agenthost.plugin.v1.Database/GetMemories". */
  offers(feature: string): boolean;
}

/**
 * Everything a plugin offers. Fill in the parts you have. Names of actions,
 * providers, evaluators and sources are the contract with characters and
 * prompts: keep them stable.
 */
export interface Plugin {
  /** The short name a character uses; the executable is agenthost-plugin-NAME. */
  name: string;
  version?: string;
  description?: string;
  /** Other names a character may use. */
  aliases?: string[];
  settings?: Setting[];
  providers?: Provider[];
  actions?: Action[];
  evaluators?: Evaluator[];
  models?: Model[];
  events?: EventHandler[];
  sources?: Source[];
  routes?: Route[];
  /** Runs once per process, before any agent is configured. */
  init?(host: Host): Awaitable<void>;
  /**
   * Runs once per agent that uses the plugin. The agent it gets lives until
   * the agent stops (its signal aborts then): keep it for background work.
   * Returned strings are warnings the host logs; a thrown error stops the
   * agent.
   */
  configure?(agent: Agent): Awaitable<string[] | void>;
  /** Runs when an agent stops. */
  unconfigure?(agent: Agent): Awaitable<void>;
}
