package host

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAPIBadInput(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{env: map[string]string{"AGENTHOST_MAX_BODY": "64k"}})
	msgs := "/api/agents/Eliza/messages"
	big := `{"text":"` + strings.Repeat("a", 70<<10) + `"}`
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"malformed JSON", "POST", msgs, `{"text": "hi"`, 400, "INVALID_JSON"},
		{"not JSON at all", "POST", msgs, `hello`, 400, "INVALID_JSON"},
		{"empty body", "POST", msgs, ``, 400, "INVALID_REQUEST"},
		{"JSON array", "POST", msgs, `["hi"]`, 400, "INVALID_REQUEST"},
		{"JSON null", "POST", msgs, `null`, 400, "INVALID_REQUEST"},
		{"wrong type", "POST", msgs, `{"text": 42}`, 400, "INVALID_REQUEST"},
		{"wrong type nested", "POST", msgs, `{"text": "hi", "userName": ["a"]}`, 400, "INVALID_REQUEST"},
		{"unknown field", "POST", msgs, `{"text": "hi", "txet": "x"}`, 400, "INVALID_REQUEST"},
		{"two objects", "POST", msgs, `{"text": "hi"} {"text": "again"}`, 400, "INVALID_JSON"},
		{"empty text", "POST", msgs, `{"text": "  "}`, 400, "INVALID_REQUEST"},
		{"NUL in text", "POST", msgs, `{"text": "a\u0000b"}`, 400, "INVALID_REQUEST"},
		{"bad room id", "POST", msgs, `{"text": "hi", "roomId": "../../etc/passwd"}`, 400, "INVALID_REQUEST"},
		{"control chars in user", "POST", msgs, `{"text": "hi", "userName": "a\u001b[31m"}`, 400, "INVALID_REQUEST"},
		{"oversized body", "POST", msgs, big, 413, "BODY_TOO_LARGE"},
		{"unknown agent", "POST", "/api/agents/Nobody/messages", `{"text": "hi"}`, 404, "AGENT_NOT_FOUND"},
		{"hostile agent name", "GET", "/api/agents/'%3B%20DROP%20TABLE%20agents%3B--", nil, 404, "AGENT_NOT_FOUND"},
		{"agent name with control chars", "GET", "/api/agents/a%00b", nil, 400, "INVALID_ID"},
		{"agent name too long", "GET", "/api/agents/" + strings.Repeat("x", 200), nil, 400, "INVALID_ID"},
		{"bad memory id", "DELETE", "/api/memory/Eliza/memories/not-a-uuid", nil, 400, "INVALID_ID"},
		{"bad room in query", "GET", "/api/memory/Eliza/memories?roomId=1%27%20OR%201%3D1", nil, 400, "INVALID_ID"},
		{"bad room in path", "GET", "/api/memory/Eliza/rooms/xyz/memories", nil, 400, "INVALID_ID"},
		{"bad count", "GET", "/api/memory/Eliza/memories?count=-5", nil, 400, "INVALID_REQUEST"},
		{"huge count", "GET", "/api/memory/Eliza/memories?count=99999999999999999999", nil, 400, "INVALID_REQUEST"},
		{"hostile table", "GET", "/api/memory/Eliza/memories?tableName=messages%3B%20DROP", nil, 400, "INVALID_REQUEST"},
		{"bad before", "GET", "/api/memory/Eliza/memories?before=yesterday", nil, 400, "INVALID_REQUEST"},
		{"bad log type", "GET", "/api/agents/Eliza/logs?type=%3Cscript%3E", nil, 400, "INVALID_REQUEST"},
		{"bad run id", "GET", "/api/agents/Eliza/runs/zzz", nil, 400, "INVALID_ID"},
		{"bad world filter", "GET", "/api/agents/Eliza/rooms?worldId=1", nil, 400, "INVALID_ID"},
		{"create: no character", "POST", "/api/agents", `{}`, 400, "INVALID_CHARACTER"},
		{"create: character twice", "POST", "/api/agents", `{"character": {"name":"A","bio":"x"}, "agent": {"name":"B","bio":"y"}}`, 400, "INVALID_CHARACTER"},
		{"create: not an object", "POST", "/api/agents", `{"characterJson": "Eliza"}`, 400, "INVALID_CHARACTER"},
		{"create: no name", "POST", "/api/agents", `{"characterJson": {"bio": "x"}}`, 400, "INVALID_CHARACTER"},
		{"create: bio of wrong type", "POST", "/api/agents", `{"characterJson": {"name": "X", "bio": 1}}`, 400, "INVALID_CHARACTER"},
		{"create: unknown key", "POST", "/api/agents", `{"characterJson": {"name": "X", "bio": "x", "evil": true}}`, 400, "INVALID_CHARACTER"},
		{"create: start not bool", "POST", "/api/agents", `{"characterJson": {"name": "X", "bio": "x"}, "start": "yes"}`, 400, "INVALID_REQUEST"},
		{"patch: array", "PATCH", "/api/agents/Eliza", `[1]`, 400, "INVALID_REQUEST"},
		{"patch: null body", "PATCH", "/api/agents/Eliza", `null`, 400, "INVALID_REQUEST"},
		{"patch: name removed", "PATCH", "/api/agents/Eliza", `{"name": null}`, 400, "INVALID_CHARACTER"},
		{"patch unknown agent", "PATCH", "/api/agents/Nobody", `{"bio": "x"}`, 404, "AGENT_NOT_FOUND"},
		{"start unknown agent", "POST", "/api/agents/Nobody/start", nil, 404, "AGENT_NOT_FOUND"},
		{"stop unknown agent", "POST", "/api/agents/Nobody/stop", nil, 404, "AGENT_NOT_FOUND"},
		{"delete unknown agent", "DELETE", "/api/agents/Nobody", nil, 404, "AGENT_NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, env := td.do(c.method, c.path, c.body)
			if code != c.status || env.code() != c.code {
				t.Fatalf("want %d %s, got %d %s: %+v", c.status, c.code, code, env.code(), env.Error)
			}
			if env.Error == nil || len(env.Error.Message) < 10 || !utf8.ValidString(env.Error.Message) {
				t.Fatalf("the error must say what is wrong: %+v", env.Error)
			}
			if strings.ContainsAny(env.Error.Message, "\x00\x1b") {
				t.Fatalf("the error echoes control characters: %q", env.Error.Message)
			}
		})
	}

	// Hostile but valid strings are stored and returned unchanged.
	hostile := []string{
		`'; DROP TABLE memories; --`,
		`<script>alert(1)</script>`,
		"emoji 🦙 and RTL \u202e text",
		`{"text": "json in json"}`,
		`%00%s%n%x{{.}}${jndi:ldap://x}`,
	}
	for _, h := range hostile {
		r := td.say("Eliza", "hostile", h)
		mems := td.memories("Eliza", "roomId="+r.RoomID+"&count=2")
		if len(mems) != 2 || mems[1].Content["text"] != h {
			t.Errorf("hostile text %q came back as %+v", h, mems)
		}
	}
	// A hostile user name gets its own room and is echoed as data only.
	td.say("Eliza", `Robert'); DROP TABLE students;--`, "hello")
	var status map[string]any
	td.ok(200, "GET", "/api/status", nil, &status)
	if status["agentCount"] != float64(1) {
		t.Errorf("the daemon should be unharmed: %v", status)
	}
}

// FuzzDecodeMessage feeds arbitrary bodies to the request decoding and
// validation of POST /api/agents/{agentId}/messages: no panic, and a body
// is either accepted as a valid message or refused with a 4xx status, an
// error code and a message.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"text":"hello"}`, `{"text":"hi","userName":"a","roomId":"5f4f0a40-2c1e-4c5b-9d7e-1a2b3c4d5e6f"}`,
		`{"text":42}`, `{"text":"x"} {"text":"y"}`, `{"text":"\u0000"}`, `[]`, `null`, ``, `{`, `{"text":"` + strings.Repeat("b", 100) + `"}`,
		`{"roomId":"../../x","text":"t"}`, `{"userName":"\u001b[2J","text":"t"}`, "\xff\xfe", `{"text":"ok","extra":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req messageRequest
		code, errCode, msg := decodeJSON(bytes.NewReader(body), &req, 1<<20)
		if code != 0 {
			if code < 400 || code > 499 || errCode == "" || msg == "" {
				t.Fatalf("refusal must be a 4xx with a code and message: %d %q %q", code, errCode, msg)
			}
			if !utf8.ValidString(msg) {
				t.Fatalf("message is not valid UTF-8: %q", msg)
			}
			return
		}
		if err := req.validate(); err != nil {
			if err.Error() == "" {
				t.Fatal("empty validation error")
			}
			return
		}
		if strings.TrimSpace(req.Text) == "" || !utf8.ValidString(req.Text) || req.UserName == "" {
			t.Fatalf("accepted an invalid message: %+v", req)
		}
		if req.RoomID != "" && !json.Valid([]byte(`"`+req.RoomID+`"`)) {
			t.Fatalf("bad room id accepted: %q", req.RoomID)
		}
	})
}

// FuzzDecodeFrame does the same for the WebSocket's client frames and the
// agent-creation body.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","agentId":"Eliza"}`, `{"type":"message","text":"hi","clientMessageId":"1"}`,
		`{"type":"subscribe_logs","level":"debug"}`, `{"type":1}`, `{"type":"x","zzz":1}`, `"join"`,
		`{"characterJson":{"name":"A","bio":"b"}}`, `{"agent":{"name":"A","bio":["b",1]}}`, `{"character":null,"start":true}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if req, code, msg := decodeWS(body); req == nil && (code == "" || msg == "") {
			t.Fatalf("a refused frame needs a code and a message")
		}
		var c createAgentRequest
		code, _, _ := decodeJSON(bytes.NewReader(body), &c, 1<<20)
		if code == 0 {
			if ch, err := c.character(); err == nil && (ch.Name == "" || ch.AgentID() == "") {
				t.Fatalf("accepted a character without a name: %+v", ch)
			}
		} else if code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", code)
		}
	})
}
