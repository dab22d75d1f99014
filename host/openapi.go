package host

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// The OpenAPI 3.1 document of the HTTP API, served at /api/openapi.json.
// It is written here by hand, route by route; a test checks that it lists
// exactly the routes the mux serves.

type oaParam struct {
	Name, In, Desc string
	Required       bool
	Schema         map[string]any
}

type oaOp struct {
	Summary, Tag string
	Params       []oaParam
	Body         map[string]any // request body schema, nil for none
	OK           int            // success status
	Data         map[string]any // schema of the envelope's data
	Errors       []int
	Open         bool // no API key needed
	Raw          string
}

var (
	strS   = map[string]any{"type": "string"}
	intS   = map[string]any{"type": "integer"}
	boolS  = map[string]any{"type": "boolean"}
	uuidS  = map[string]any{"type": "string", "format": "uuid"}
	anyObj = map[string]any{"type": "object", "additionalProperties": true}
)

func arr(items map[string]any) map[string]any { return map[string]any{"type": "array", "items": items} }
func ref(name string) map[string]any          { return map[string]any{"$ref": "#/components/schemas/" + name} }
func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

var (
	pAgent = oaParam{Name: "agentId", In: "path", Required: true, Desc: "The agent's id (UUID) or name.", Schema: strS}
	pRoom  = oaParam{Name: "roomId", In: "path", Required: true, Desc: "A room id.", Schema: uuidS}
	qRoom  = oaParam{Name: "roomId", In: "query", Desc: "Only this room.", Schema: uuidS}
	qCount = func(def, max int) oaParam {
		return oaParam{Name: "count", In: "query", Desc: "How many, newest first.", Schema: map[string]any{"type": "integer", "minimum": 1, "maximum": max, "default": def}}
	}
	memData = obj(map[string]any{"memories": arr(ref("Memory"))})
	pPlugin = oaParam{Name: "name", In: "path", Required: true, Desc: "Short name (sql) or alias (@elizaos/plugin-sql).", Schema: strS}
)

func openAPIOps() map[string]map[string]oaOp {
	agentErr := []int{400, 404}
	return map[string]map[string]oaOp{
		"/healthz": {"get": {Summary: "Liveness: 200 while the daemon is up and serving. An agent that failed does not change it (restarting the daemon would not help); /api/health lists it.", Tag: "server", OK: 200,
			Data: ref("Liveness"), Open: true}},
		"/metrics": {"get": {Summary: "Prometheus metrics in the text exposition format.", Tag: "server", OK: 200, Raw: "text/plain"}},
		"/api/health": {"get": {Summary: "Health in detail: status ok, or degraded while an agent that should run does not, with each failed agent and plugin and why.", Tag: "server", OK: 200,
			Data: ref("Health")}},
		"/api/status": {"get": {Summary: "Daemon status: version, uptime, agents and plugins by state, WebSocket clients.", Tag: "server", OK: 200, Data: anyObj}},
		"/api/version": {"get": {Summary: "Version of the daemon and of the plugin protocol.", Tag: "server", OK: 200,
			Data: obj(map[string]any{"version": strS, "protocol": strS, "go": strS, "os": strS, "arch": strS})}},
		"/api/openapi.json": {"get": {Summary: "This document.", Tag: "server", OK: 200, Raw: "application/json"}},
		"/api/auth/ws-ticket": {"post": {Summary: "A one-time ticket for /ws?ticket=… (browsers cannot send the API key as a header on a WebSocket); valid 60 s.", Tag: "server", OK: 200,
			Data: obj(map[string]any{"ticket": strS, "expiresInSeconds": intS})}},
		"/api/plugins": {"get": {Summary: "Every plugin found, with its state (stopped, starting, running, restarting, failed), restarts, process id, manifest and the agents using it.", Tag: "plugins", OK: 200,
			Data: obj(map[string]any{"plugins": arr(ref("Plugin"))})}},
		"/api/plugins/{name}": {"get": {Summary: "One plugin by short name or alias.", Tag: "plugins", OK: 200, Data: ref("Plugin"), Errors: []int{404},
			Params: []oaParam{pPlugin}}},
		"/api/plugins/reload": {"post": {Summary: "Look at the plugin folders now (the daemon also does twice a second, and on SIGHUP): new plugins become known, changed binaries are upgraded in place, removed ones are reported; what changed, and each binary refused with why.",
			Tag: "plugins", OK: 200, Data: ref("ReloadReport"), Errors: []int{500}}},
		"/api/plugins/{name}/reload": {"post": {Summary: "Look at one plugin's binary now, as /api/plugins/reload does.", Tag: "plugins", OK: 200,
			Data: ref("ReloadReport"), Errors: []int{400, 404, 500}, Params: []oaParam{pPlugin}}},
		"/api/cluster": {"get": {Summary: "A cluster node's view: the live nodes (id, HTTP address, agents held, last heartbeat) and the node that runs each agent (\"\" while none does). 404 on a daemon that runs alone.",
			Tag: "server", OK: 200, Errors: []int{404},
			Data: obj(map[string]any{"nodes": arr(obj(map[string]any{"id": strS, "address": strS, "agents": map[string]any{"type": "integer"}, "lastSeen": strS})),
				"agents": arr(obj(map[string]any{"id": uuidS, "name": strS, "node": strS}))})}},
		"/api/agents": {
			"get": {Summary: "List agents with their status.", Tag: "agents", OK: 200, Data: obj(map[string]any{"agents": arr(ref("AgentSummary"))})},
			"post": {Summary: "Create an agent from an elizaOS character JSON; started when start is true.", Tag: "agents", OK: 201, Data: ref("AgentDetail"),
				Body:   obj(map[string]any{"characterJson": ref("Character"), "character": ref("Character"), "agent": ref("Character"), "start": boolS}),
				Errors: []int{400, 409, 413, 500}},
		},
		"/api/agents/{agentId}": {
			"get": {Summary: "An agent with its character (secrets redacted).", Tag: "agents", Params: []oaParam{pAgent}, OK: 200, Data: ref("AgentDetail"), Errors: agentErr},
			"patch": {Summary: "Change character fields (null removes one; settings and secrets merge key by key). A running agent restarts.", Tag: "agents",
				Params: []oaParam{pAgent}, Body: anyObj, OK: 200, Data: ref("AgentDetail"), Errors: []int{400, 404, 409, 413, 500}},
			"delete": {Summary: "Stop and remove an agent; its memories stay stored.", Tag: "agents", Params: []oaParam{pAgent}, OK: 200,
				Data: obj(map[string]any{"id": uuidS, "name": strS, "removed": boolS}), Errors: agentErr},
		},
		"/api/agents/{agentId}/start": {"post": {Summary: "Start a stopped agent.", Tag: "agents", Params: []oaParam{pAgent}, OK: 200, Data: ref("AgentSummary"), Errors: []int{400, 404, 500}}},
		"/api/agents/{agentId}/stop":  {"post": {Summary: "Stop an agent; it stays listed, and stopped after a restart.", Tag: "agents", Params: []oaParam{pAgent}, OK: 200, Data: ref("AgentSummary"), Errors: agentErr}},
		"/api/agents/{agentId}/messages": {"post": {Summary: "Send a message and wait for the agent's replies. With an Idempotency-Key, sending it again never stores or answers it twice: " +
			"a retry while the first is in flight waits for it, a retry after it gets the same answer (the same reply ids) with the header Idempotent-Replayed: true.", Tag: "messages",
			Params: []oaParam{pAgent, {Name: "Idempotency-Key", In: "header", Desc: "The message's key, chosen by the client (1 to 255 visible ASCII characters, e.g. a UUID), " +
				"per agent and user name; the WebSocket's clientMessageId shares it.", Schema: map[string]any{"type": "string", "minLength": 1, "maxLength": maxIdempotencyKey}}},
			Body: obj(map[string]any{"text": strS, "userName": strS, "roomId": uuidS}, "text"), OK: 200,
			Data:   obj(map[string]any{"messages": arr(obj(map[string]any{"id": strS, "text": strS, "actions": arr(strS)})), "roomId": uuidS, "messageId": uuidS, "duplicate": boolS}),
			Errors: []int{400, 404, 413, 422, 500, 502, 503, 504}}},
		"/api/agents/{agentId}/rooms": {"get": {Summary: "The agent's rooms.", Tag: "rooms", OK: 200, Errors: agentErr, Data: obj(map[string]any{"rooms": arr(ref("Room"))}),
			Params: []oaParam{pAgent, {Name: "worldId", In: "query", Desc: "Only rooms of this world.", Schema: uuidS}, {Name: "participantId", In: "query", Desc: "Only rooms this entity takes part in.", Schema: uuidS}}}},
		"/api/agents/{agentId}/rooms/{roomId}": {"get": {Summary: "One room with its participants.", Tag: "rooms", Params: []oaParam{pAgent, pRoom}, OK: 200, Data: ref("Room"), Errors: agentErr}},
		"/api/agents/{agentId}/worlds": {"get": {Summary: "The agent's worlds.", Tag: "rooms", Params: []oaParam{pAgent}, OK: 200, Errors: agentErr,
			Data: obj(map[string]any{"worlds": arr(obj(map[string]any{"id": uuidS, "name": strS, "serverId": strS, "metadata": anyObj}))})}},
		"/api/agents/{agentId}/logs": {"get": {Summary: "Timeline entries (run, useModel:*, action, evaluator), newest first.", Tag: "runs", OK: 200, Errors: agentErr,
			Params: []oaParam{pAgent, qRoom, {Name: "type", In: "query", Desc: "Only this type.", Schema: strS}, {Name: "excludeTypes", In: "query", Desc: "Comma-separated types to leave out.", Schema: strS}, qCount(50, 1000)},
			Data:   obj(map[string]any{"logs": arr(ref("LogEntry"))})}},
		"/api/agents/{agentId}/logs/{logId}": {"delete": {Summary: "Delete one timeline entry.", Tag: "runs", OK: 200, Errors: agentErr,
			Params: []oaParam{pAgent, {Name: "logId", In: "path", Required: true, Desc: "A log entry id.", Schema: uuidS}},
			Data:   obj(map[string]any{"deleted": intS, "id": uuidS})}},
		"/api/agents/{agentId}/runs": {"get": {Summary: "Runs (one per message handled), newest first, each with its model calls, actions, evaluators and timings; runs in flight first.", Tag: "runs", OK: 200, Errors: agentErr,
			Params: []oaParam{pAgent, qRoom, qCount(20, 200)}, Data: obj(map[string]any{"runs": arr(ref("Run"))})}},
		"/api/agents/{agentId}/runs/{runId}": {"get": {Summary: "One run with its prompts and responses.", Tag: "runs", OK: 200, Data: ref("Run"), Errors: agentErr,
			Params: []oaParam{pAgent, {Name: "runId", In: "path", Required: true, Desc: "A run id.", Schema: uuidS}}}},
		"/api/memory/{agentId}/memories": {
			"get": {Summary: "Memories, newest first.", Tag: "memories", OK: 200, Data: memData, Errors: agentErr,
				Params: []oaParam{pAgent, qRoom, {Name: "entityId", In: "query", Desc: "Only by this author.", Schema: uuidS},
					{Name: "tableName", In: "query", Desc: "The logical table (messages, action_results, facts, documents…); default messages.", Schema: strS},
					{Name: "before", In: "query", Desc: "Only older than this time (Unix ms).", Schema: intS}, qCount(50, 1000),
					{Name: "limit", In: "query", Desc: "Same as count.", Schema: intS}}},
			"delete": {Summary: "Delete every memory of the agent (of one room with roomId).", Tag: "memories", Params: []oaParam{pAgent, qRoom}, OK: 200,
				Data: obj(map[string]any{"deleted": intS}), Errors: agentErr},
		},
		"/api/memory/{agentId}/rooms/{roomId}/memories": {"get": {Summary: "A room's memories, newest first.", Tag: "memories", OK: 200, Data: memData, Errors: agentErr,
			Params: []oaParam{pAgent, pRoom, {Name: "tableName", In: "query", Desc: "The logical table; default messages.", Schema: strS},
				{Name: "before", In: "query", Desc: "Only older than this time (Unix ms).", Schema: intS}, qCount(50, 1000), {Name: "limit", In: "query", Desc: "Same as count.", Schema: intS}}}},
		"/api/memory/{agentId}/memories/all/{roomId}": {"delete": {Summary: "Clear a room: delete its memories.", Tag: "memories", Params: []oaParam{pAgent, pRoom}, OK: 200,
			Data: obj(map[string]any{"deleted": intS}), Errors: agentErr}},
		"/api/memory/{agentId}/memories/{memoryId}": {"delete": {Summary: "Delete one memory.", Tag: "memories", OK: 200, Errors: agentErr,
			Params: []oaParam{pAgent, {Name: "memoryId", In: "path", Required: true, Desc: "A memory id.", Schema: uuidS}},
			Data:   obj(map[string]any{"deleted": intS, "id": uuidS})}},
	}
}

func openAPISchemas() map[string]any {
	return map[string]any{
		"Error":    obj(map[string]any{"success": map[string]any{"const": false}, "error": obj(map[string]any{"code": strS, "message": strS}, "code", "message")}, "success", "error"),
		"Liveness": obj(map[string]any{"status": map[string]any{"const": "ok"}, "version": strS, "uptimeSeconds": intS}),
		"Health": obj(map[string]any{"status": map[string]any{"type": "string", "enum": []string{"ok", "degraded"}}, "version": strS, "uptimeSeconds": intS,
			"agents": intS, "failedAgents": arr(obj(map[string]any{"id": uuidS, "name": strS, "status": strS, "error": strS})),
			"failedPlugins": arr(obj(map[string]any{"name": strS, "error": strS}))}),
		"AgentSummary": obj(map[string]any{"id": uuidS, "name": strS, "username": strS, "bio": arr(strS), "plugins": arr(strS), "error": strS, "node": strS,
			"status": map[string]any{"type": "string", "enum": []string{"starting", "running", "stopped", "failed"}}}, "id", "name", "status"),
		"AgentDetail": obj(map[string]any{"id": uuidS, "name": strS, "status": strS, "plugins": arr(strS), "error": strS, "node": strS, "character": ref("Character")}),
		"Character": map[string]any{"type": "object", "description": "An elizaOS character (name and bio required); validated strictly.",
			"properties": map[string]any{"id": uuidS, "name": strS, "username": strS, "system": strS, "bio": map[string]any{"oneOf": []any{strS, arr(strS)}},
				"plugins": arr(strS), "settings": anyObj, "secrets": anyObj, "topics": arr(strS), "adjectives": arr(strS), "style": anyObj},
			"required": []string{"name", "bio"}},
		"Memory": obj(map[string]any{"id": uuidS, "entityId": uuidS, "agentId": uuidS, "roomId": uuidS, "worldId": uuidS, "type": strS,
			"createdAt": intS, "unique": boolS, "content": anyObj, "metadata": anyObj}),
		"Room": obj(map[string]any{"id": uuidS, "name": strS, "source": strS, "type": strS, "channelId": strS, "serverId": strS, "worldId": strS,
			"metadata": anyObj, "participants": arr(uuidS)}),
		"LogEntry": obj(map[string]any{"id": uuidS, "agentId": uuidS, "entityId": strS, "roomId": strS, "type": strS, "body": anyObj, "createdAt": intS}),
		"Run": obj(map[string]any{"runId": uuidS, "messageId": uuidS, "roomId": uuidS, "entityId": uuidS, "source": strS,
			"status": map[string]any{"type": "string", "enum": []string{"running", "completed", "error"}}, "text": strS,
			"startedAt": intS, "endedAt": intS, "durationMs": intS, "replies": intS, "error": strS,
			"modelCalls": arr(anyObj), "actions": arr(anyObj), "evaluators": arr(anyObj), "providers": arr(anyObj)}),
		"Plugin": obj(map[string]any{"name": strS, "state": map[string]any{"type": "string", "enum": []string{"stopped", "starting", "running", "restarting", "failed"}},
			"restarts": intS, "pid": intS, "bundled": boolS, "path": strS, "error": strS, "manifest": anyObj, "agents": arr(strS),
			"confinement": strS, "lastExit": obj(map[string]any{"at": intS, "reason": strS}),
			"checksum": strS, "locked": boolS, "removed": boolS, "attached": obj(map[string]any{"pid": intS, "address": strS}),
			"upgrade": obj(map[string]any{"at": intS, "path": strS, "from": strS, "to": strS, "tookMs": intS, "refused": boolS, "error": strS, "warnings": arr(strS)})}),
		"ReloadReport": obj(map[string]any{"added": arr(strS), "upgraded": arr(strS), "updated": arr(strS), "removed": arr(strS),
			"refused": arr(obj(map[string]any{"name": strS, "path": strS, "reason": strS}))}),
	}
}

var oaStatusText = map[int]string{400: "Bad input: malformed JSON, wrong types, invalid ids, a plugin the daemon does not have.", 401: "The API key is missing or wrong.",
	403: "The Host header does not name this daemon (AGENTHOST_ALLOWED_HOSTS), or the Origin is not its own nor allowed (AGENTHOST_CORS_ORIGINS).",
	404: "No such agent, room, memory, log entry or run.", 409: "An agent with this id or name exists.", 413: "The body is too large.",
	415: "A POST, PATCH or DELETE without Content-Type: application/json.", 422: "The Idempotency-Key was used for another message.",
	429: "Rate limited.", 500: "The agent could not be started or the request failed.", 502: "A plugin crashed or is unavailable.",
	503: "The agent is not running, or the database is unavailable (then with Retry-After).", 504: "The agent did not answer in time."}

var (
	openAPIOnce sync.Once
	openAPIDoc  []byte
)

// OpenAPI returns the document.
func OpenAPI(version string) map[string]any {
	paths := map[string]any{}
	for path, ops := range openAPIOps() {
		item := map[string]any{}
		for method, op := range ops {
			o := map[string]any{"summary": op.Summary, "tags": []string{op.Tag},
				"operationId": strings.ToLower(method) + strings.NewReplacer("/api", "", "/", "_", "{", "", "}", "", ".", "_", "-", "_").Replace(path)}
			if op.Open {
				o["security"] = []any{}
			}
			var params []any
			for _, p := range op.Params {
				params = append(params, map[string]any{"name": p.Name, "in": p.In, "required": p.Required, "description": p.Desc, "schema": p.Schema})
			}
			if params != nil {
				o["parameters"] = params
			}
			if op.Body != nil {
				o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": op.Body}}}
			}
			resp := map[string]any{}
			ok := map[string]any{"description": "Success."}
			switch {
			case op.Raw != "":
				ok["content"] = map[string]any{op.Raw: map[string]any{"schema": map[string]any{}}}
			default:
				ok["content"] = map[string]any{"application/json": map[string]any{"schema": obj(map[string]any{"success": map[string]any{"const": true}, "data": op.Data}, "success", "data")}}
			}
			resp[itoa(op.OK)] = ok
			errs := append([]int{}, op.Errors...)
			errs = append(errs, 403)
			if !op.Open {
				errs = append(errs, 401, 429)
			}
			if method != "get" {
				errs = append(errs, 415)
			}
			for _, code := range errs {
				resp[itoa(code)] = map[string]any{"description": oaStatusText[code],
					"content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
			}
			o["responses"] = resp
			item[method] = o
		}
		paths[path] = item
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "agenthost API", "version": version,
			"description": "The HTTP API of the agenthost daemon. Every response is the envelope {\"success\": true, \"data\": …} or {\"success\": false, \"error\": {\"code\", \"message\"}}. " +
				"When AGENTHOST_API_KEY (or ELIZA_SERVER_AUTH_TOKEN) is set, every route but /healthz needs it as the X-API-KEY header or a bearer token. " +
				"With or without a key, a request must name the daemon in its Host header (localhost, a loopback or listening address, or AGENTHOST_ALLOWED_HOSTS), " +
				"an Origin header must be the daemon's own or in AGENTHOST_CORS_ORIGINS, and a POST, PATCH or DELETE must send Content-Type: application/json " +
				"(one with no body, no Content-Type and no Origin is taken too). " +
				"{agentId} is an agent's id or its name. Live events are on the WebSocket at /ws (see the README)."},
		"servers": []any{map[string]any{"url": "/"}},
		"paths":   paths,
		"components": map[string]any{
			"schemas": openAPISchemas(),
			"securitySchemes": map[string]any{
				"apiKey": map[string]any{"type": "apiKey", "in": "header", "name": "X-API-KEY"},
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
			},
		},
		"security": []any{map[string]any{"apiKey": []any{}}, map[string]any{"bearer": []any{}}},
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func (d *Daemon) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	openAPIOnce.Do(func() {
		openAPIDoc, _ = json.MarshalIndent(OpenAPI(d.cfg.Version), "", "  ")
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}
