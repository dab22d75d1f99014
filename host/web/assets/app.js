// agenthost's page: agents, chat with live replies, a room's memories, the
// runs timeline and the live log. Plain JavaScript; every string from the
// daemon is put in the page as text, never as HTML.
"use strict";

const state = {
  key: localStorage.getItem("agenthost.apiKey") || "",
  user: localStorage.getItem("agenthost.userName") || "you",
  agents: [],
  agentId: localStorage.getItem("agenthost.agent") || "",
  roomId: "",
  ws: null,
  wsRetry: 500,
  pending: 0,
  tab: "chat",
  seen: new Set(),
};

const $ = (id) => document.getElementById(id);
// el makes an element. "style" takes an object of CSS properties, set one
// by one through CSSOM: the page's policy (style-src 'self') refuses a
// style attribute, but not a property set from a script of the page.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "style") Object.assign(e.style, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

class AuthError extends Error {}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (state.key) headers["X-API-KEY"] = state.key;
  // The daemon takes a state-changing request only as JSON, body or not.
  if (method !== "GET") headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let env = null;
  try { env = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 401) { askKey(env && env.error ? env.error.message : ""); throw new AuthError("API key needed"); }
  if (!res.ok || !env || !env.success) {
    const msg = env && env.error ? env.error.message : `HTTP ${res.status}`;
    throw new Error(msg);
  }
  return env.data;
}

function notice(msg) {
  const n = $("notice");
  n.textContent = msg || "";
  n.hidden = !msg;
}

function askKey(msg) {
  $("auth").hidden = false;
  $("authError").textContent = msg || "";
  $("apiKey").focus();
}

function currentAgent() { return state.agents.find((a) => a.id === state.agentId); }

// ---- agents ----

async function loadAgents() {
  const data = await api("GET", "/api/agents");
  state.agents = data.agents;
  if (!currentAgent() && state.agents.length) state.agentId = (state.agents.find((a) => a.status === "running") || state.agents[0]).id;
  renderAgents();
}

function renderAgents() {
  const ul = $("agents");
  ul.replaceChildren();
  for (const a of state.agents) {
    const running = a.status === "running";
    const btn = el("button", {
      class: running ? "stop" : "start", "data-agent": a.name,
      onclick: async (ev) => {
        ev.stopPropagation();
        btn.disabled = true;
        try { await api("POST", `/api/agents/${encodeURIComponent(a.id)}/${running ? "stop" : "start"}`); notice(""); }
        catch (e) { if (!(e instanceof AuthError)) notice(e.message); }
        await loadAgents().catch(() => {});
      },
    }, running ? "Stop" : "Start");
    const li = el("li", { class: a.id === state.agentId ? "selected" : "", "data-agent": a.name, onclick: () => selectAgent(a.id) },
      el("div", { class: "name" }, a.name),
      el("div", { class: "status " + a.status, title: a.error || "" }, a.status),
      // In a cluster: the node that runs it.
      a.node ? el("div", { class: "node", title: "the cluster node that runs it" }, "on node " + a.node) : "",
      btn);
    ul.append(li);
  }
  const a = currentAgent();
  $("send").disabled = !a || a.status !== "running";
}

function selectAgent(id) {
  if (id === state.agentId && state.roomId) return;
  state.agentId = id;
  localStorage.setItem("agenthost.agent", id);
  state.roomId = "";
  renderAgents();
  join();
}

// ---- WebSocket ----

async function connect() {
  let url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  try {
    const t = await api("POST", "/api/auth/ws-ticket");
    url += "?ticket=" + encodeURIComponent(t.ticket);
  } catch (e) {
    if (e instanceof AuthError) return;
  }
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => {
    state.wsRetry = 500;
    setConn("on", "live", "Live: replies, agent changes and logs arrive as they happen (WebSocket).");
    join();
    subscribeLogs();
  };
  ws.onclose = () => {
    setConn("off", "reconnecting…", "The live connection to the daemon (WebSocket) is down; the page tries again. Messages still go through the HTTP API.");
    if (state.ws === ws) {
      state.ws = null;
      setTimeout(connect, state.wsRetry);
      state.wsRetry = Math.min(state.wsRetry * 2, 10000);
    }
  };
  ws.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (_) { return; }
    onEvent(ev);
  };
}

// setConn shows the state of the live connection. Its words are about the
// connection ("live", "connecting…"), never "offline", which is the name of
// the model plugin that needs no network.
function setConn(cls, text, title) {
  const c = $("conn");
  c.className = "conn " + cls;
  c.textContent = text;
  c.title = title;
}

function send(obj) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) { state.ws.send(JSON.stringify(obj)); return true; }
  return false;
}

function join() {
  const a = currentAgent();
  if (!a) return;
  send({ type: "join", agentId: a.id, userName: state.user });
}

function subscribeLogs() {
  send({ type: "subscribe_logs", level: $("logLevel").value });
}

function onEvent(ev) {
  switch (ev.type) {
    case "joined":
      if (ev.agentId === state.agentId) {
        state.roomId = ev.roomId;
        $("memRoom").textContent = `room ${ev.roomId}`;
        $("memRoom").title = ev.roomId;
        loadHistory();
        if (state.tab === "memories") loadMemories();
        if (state.tab === "runs") loadRuns();
      }
      break;
    case "message":
      if (ev.roomId === state.roomId && !state.seen.has(ev.id)) addMessage("me", ev.userName, ev.text, ev.id);
      break;
    case "reply":
      if (ev.roomId === state.roomId && !state.seen.has(ev.id || ev.runId + ev.text)) addMessage("agent", ev.agentName, ev.text, ev.id || ev.runId + ev.text);
      break;
    case "thinking":
      if (ev.roomId === state.roomId) { state.pending++; showThinking(ev.agentName); }
      break;
    case "run_finished":
      if (ev.roomId === state.roomId) {
        state.pending = Math.max(0, state.pending - 1);
        showThinking();
        if (ev.status === "error") addMessage("error", "error", ev.error || "the run failed");
        if (state.tab === "memories") loadMemories();
        if (state.tab === "runs") loadRuns();
      }
      break;
    case "error":
      addMessage("error", "error", ev.message);
      break;
    case "agent_status":
    case "agent_removed":
      loadAgents().catch(() => {});
      break;
    case "room_cleared":
      if (ev.roomId === state.roomId) { $("messages").replaceChildren(); state.seen.clear(); loadMemories(); }
      break;
    case "log":
      addLog(ev);
      break;
  }
}

// ---- chat ----

function addMessage(kind, who, text, id) {
  if (id) state.seen.add(id);
  const li = el("li", { class: kind }, el("span", { class: "who" }, who), text);
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
}

function showThinking(name) {
  const t = $("thinking");
  if (state.pending > 0) {
    if (name) $("thinkingName").textContent = name;
    t.hidden = false;
  } else {
    t.hidden = true;
  }
}

async function loadHistory() {
  const a = currentAgent();
  if (!a || !state.roomId) return;
  $("messages").replaceChildren();
  state.seen.clear();
  try {
    const data = await api("GET", `/api/memory/${encodeURIComponent(a.id)}/memories?roomId=${state.roomId}&count=50`);
    for (const m of data.memories.slice().reverse()) {
      if (!(m.content && m.content.text)) continue; // a decision not to answer: nothing was said
      const mine = m.entityId !== a.id;
      addMessage(mine ? "me" : "agent", mine ? state.user : a.name, (m.content && m.content.text) || "", m.id);
    }
  } catch (e) { if (!(e instanceof AuthError)) notice(e.message); }
}

$("chatForm").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("chatInput");
  const text = input.value.trim();
  const a = currentAgent();
  if (!text || !a) return;
  input.value = "";
  const cid = "c" + Date.now() + Math.random().toString(16).slice(2);
  if (send({ type: "message", agentId: a.id, roomId: state.roomId || undefined, userName: state.user, text, clientMessageId: cid })) return;
  // No socket: the HTTP API waits for the replies.
  addMessage("me", state.user, text);
  state.pending++; showThinking(a.name);
  try {
    const data = await api("POST", `/api/agents/${encodeURIComponent(a.id)}/messages`, { text, userName: state.user, roomId: state.roomId || undefined });
    state.roomId = data.roomId;
    for (const m of data.messages) addMessage("agent", a.name, m.text, m.id);
  } catch (e) {
    if (!(e instanceof AuthError)) addMessage("error", "error", e.message);
  } finally {
    state.pending = Math.max(0, state.pending - 1); showThinking();
  }
});

// ---- memories ----

// shortTime is a memory's time as HH:MM, narrow enough for a phone; its
// title has the rest.
function shortTime(t) {
  const d = new Date(t), two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

async function loadMemories() {
  const a = currentAgent();
  const tbody = $("memories");
  if (!a || !state.roomId) { tbody.replaceChildren(); return; }
  try {
    const data = await api("GET", `/api/memory/${encodeURIComponent(a.id)}/memories?roomId=${state.roomId}&count=200`);
    tbody.replaceChildren(...data.memories.map((m) => el("tr", { "data-id": m.id },
      el("td", { class: "when", title: new Date(m.createdAt).toLocaleString() }, shortTime(m.createdAt)),
      el("td", { class: "who" }, m.entityId === a.id ? a.name : state.user),
      el("td", { class: "text" }, (m.content && m.content.text) || ""),
      el("td", {}, el("button", { class: "danger", onclick: async () => {
        try { await api("DELETE", `/api/memory/${encodeURIComponent(a.id)}/memories/${m.id}`); } catch (e) { notice(e.message); }
        loadMemories();
      } }, "Delete")))));
  } catch (e) { if (!(e instanceof AuthError)) notice(e.message); }
}

$("memRefresh").addEventListener("click", loadMemories);
$("memClear").addEventListener("click", async () => {
  const a = currentAgent();
  if (!a || !state.roomId || !confirm("Delete every memory of this room?")) return;
  try { await api("DELETE", `/api/memory/${encodeURIComponent(a.id)}/memories/all/${state.roomId}`); } catch (e) { notice(e.message); }
  loadMemories();
});

// ---- runs ----

async function loadRuns() {
  const a = currentAgent();
  const ol = $("runs");
  if (!a) { ol.replaceChildren(); return; }
  try {
    const q = state.roomId ? `?roomId=${state.roomId}&count=30` : "?count=30";
    const data = await api("GET", `/api/agents/${encodeURIComponent(a.id)}/runs${q}`);
    ol.replaceChildren(...data.runs.map(renderRun));
  } catch (e) { if (!(e instanceof AuthError)) notice(e.message); }
}

function renderRun(r) {
  const start = r.startedAt, span = Math.max(r.durationMs, 1);
  const steps = [];
  const step = (kind, label, s) => {
    const ms = s.durationMs || 0;
    const end = s.at || start + ms;
    const left = Math.max(0, Math.min(100, ((end - ms - start) / span) * 100));
    const width = Math.max(0.5, Math.min(100 - left, (ms / span) * 100));
    steps.push(el("li", { class: kind },
      el("span", { class: "label", title: s.error || "" }, label),
      el("span", { class: "track" }, el("span", { class: "seg", style: { left: `${left}%`, width: `${width}%` } })),
      el("span", { class: "ms" }, ms + " ms")));
  };
  for (const m of r.modelCalls) {
    const tok = m.tokens ? ` · ${m.tokens.total} tok` : "";
    step("model", `${m.modelType} · ${m.provider}${tok}`, m);
  }
  for (const x of r.actions) step("action", `action ${x.action}${x.success ? "" : " ✗"}`, x);
  for (const x of r.evaluators) step("evaluator", `evaluator ${x.evaluator}`, x);
  return el("li", { "data-run": r.runId },
    el("div", { class: "run-head" },
      el("span", { class: "when" }, new Date(start).toLocaleTimeString()),
      el("span", { class: "status " + r.status }, r.status),
      el("span", {}, `${r.durationMs} ms`),
      el("span", {}, `${r.modelCalls.length} model calls`),
      el("span", { class: "text" }, r.text || "")),
    r.error ? el("div", { class: "error" }, r.error) : "",
    el("ol", { class: "steps" }, ...steps));
}

$("runsRefresh").addEventListener("click", loadRuns);

// ---- logs ----

// ms reads a duration of a timeline entry: " 12 ms", or nothing when the
// entry has none (an event that starts something).
const ms = (v) => (typeof v === "number" ? ` ${v} ms` : "");

// timelineText says what a timeline entry is: a run, a model call, an
// action, an evaluator, or an event a plugin announced (RUN_STARTED,
// RUN_ENDED with why, ...).
function timelineText(type, b) {
  if (type === "event") {
    const why = b.reason ? ` (${b.reason})` : b.error ? ` (${b.error})` : "";
    return `${b.event || "event"}${b.status ? " " + b.status : ""}${why}${ms(b.duration ?? b.durationMs)}`;
  }
  if (type === "run") return `run ${b.status || ""}${ms(b.durationMs)}${b.replies != null ? ` · ${b.replies} replies` : ""}`;
  if (type === "action") return `action ${b.action}${b.success === false ? " failed" : ""}${ms(b.durationMs)}`;
  if (type === "evaluator") return `evaluator ${b.evaluator}${ms(b.durationMs)}`;
  if (b.modelType) return `${b.modelType} via ${b.provider}${ms(b.durationMs)}`;
  return type;
}

function addLog(ev) {
  const ol = $("logs");
  const t = new Date(ev.time || Date.now()).toLocaleTimeString();
  let line;
  if (ev.kind === "timeline") {
    line = el("li", { class: "timeline" }, `${t} ${ev.agentName}: ${timelineText(ev.logType, ev.body || {})}`);
  } else {
    const f = Object.entries(ev.fields || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    line = el("li", { class: ev.level }, `${t} [${ev.level}] ${ev.name}: ${ev.message} ${f}`);
  }
  ol.append(line);
  while (ol.childElementCount > 500) ol.firstElementChild.remove();
  if (state.tab === "logs") line.scrollIntoView({ block: "end" });
}

$("logLevel").addEventListener("change", subscribeLogs);
$("logsClear").addEventListener("click", () => $("logs").replaceChildren());

// ---- tabs, user, key ----

for (const b of document.querySelectorAll(".tabs button")) {
  b.addEventListener("click", () => {
    state.tab = b.dataset.tab;
    for (const x of document.querySelectorAll(".tabs button")) x.classList.toggle("active", x === b);
    for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== "tab-" + state.tab;
    if (state.tab === "memories") loadMemories();
    if (state.tab === "runs") loadRuns();
  });
}

$("userName").value = state.user;
$("userName").addEventListener("change", () => {
  const v = $("userName").value.trim();
  if (!v) { $("userName").value = state.user; return; }
  state.user = v;
  localStorage.setItem("agenthost.userName", v);
  state.roomId = "";
  join();
});

$("authForm").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  state.key = $("apiKey").value;
  localStorage.setItem("agenthost.apiKey", state.key);
  $("auth").hidden = true;
  await start();
});

async function start() {
  // The daemon says in the page whether it needs a key: without one, ask
  // before calling it.
  if (document.body.dataset.auth === "key" && !state.key) { askKey(""); return; }
  try {
    const v = await api("GET", "/api/version");
    $("version").textContent = v.version;
    await loadAgents();
    if (!state.ws) connect();
  } catch (e) {
    if (!(e instanceof AuthError)) notice(e.message);
  }
}

start();
