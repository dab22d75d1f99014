package sdk

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/internal/syncbuf"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
)

// logLines decodes the JSON lines written to out.
func logLines(t *testing.T, out *syncbuf.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line that is not JSON: %q", line)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestAgentLoggerFields serves a plugin with the JSON logger Serve uses
// and checks, over gRPC, what a handler's line carries: the plugin's name,
// the agent's id and name, the run id of the call, and no field the host
// would rename as forged.
func TestAgentLoggerFields(t *testing.T) {
	p := Plugin{Name: "weather",
		Events: []EventHandler{{Type: "PING", Handle: func(ctx context.Context, a *Agent, ev *Event) error {
			a.Logger(ctx).Info("in a run", "city", "Oslo")
			a.Logger(context.Background()).Info("outside any run")
			return nil
		}}},
		Models: []Model{{Type: "M", Handler: func(ctx context.Context, a *Agent, req *ModelRequest) (*ModelResponse, error) {
			a.Logger(ctx).Info("model call")
			return &ModelResponse{Text: "ok"}, nil
		}}},
	}
	for _, viaField := range []bool{false, true} {
		out := &syncbuf.Buffer{}
		log := hclog.New(&hclog.LoggerOptions{Name: "weather", Output: out, JSONFormat: true, Level: hclog.Info})
		if viaField {
			// The plugin's own logger wins over the server's.
			p.Logger = log
			checkAgentLogger(t, servePluginWith(t, p, hclog.NewNullLogger()), out)
		} else {
			checkAgentLogger(t, servePluginWith(t, p, log), out)
		}
	}
}

func checkAgentLogger(t *testing.T, c pb.PluginClient, out *syncbuf.Buffer) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := c.Configure(ctx, &pb.ConfigureRequest{AgentId: testAgent, CharacterJson: []byte(`{"name": "Ada", "bio": "x"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HandleEvent(ctx, &pb.HandleEventRequest{AgentId: testAgent, Type: "PING", RunId: "run-7"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UseModel(ctx, &pb.ModelRequest{AgentId: testAgent, Type: "M", RunId: "run-8"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]any{
		"in a run":        {"@module": "weather", "agent_id": testAgent, "agent_name": "Ada", "run_id": "run-7", "city": "Oslo"},
		"outside any run": {"@module": "weather", "agent_id": testAgent, "agent_name": "Ada"},
		"model call":      {"@module": "weather", "agent_id": testAgent, "agent_name": "Ada", "run_id": "run-8"},
	}
	seen := 0
	for _, line := range logLines(t, out) {
		msg, _ := line["@message"].(string)
		fields, ok := want[msg]
		if !ok {
			continue
		}
		seen++
		for k, v := range fields {
			if line[k] != v {
				t.Errorf("%q: %s = %v, want %v", msg, k, line[k], v)
			}
		}
		if _, ok := line["run_id"]; ok && fields["run_id"] == nil {
			t.Errorf("%q carries a run id although its context has none", msg)
		}
		for _, forged := range []string{"agent", "plugin", "pid"} {
			if _, ok := line[forged]; ok {
				t.Errorf("%q has a field %q, which the host renames", msg, forged)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%d of the %d lines logged", seen, len(want))
	}
}

// TestWithRunID: a plugin that starts a run of its own marks its context.
func TestWithRunID(t *testing.T) {
	out := &syncbuf.Buffer{}
	a := &Agent{ID: "a1", plugin: &pluginScope{name: "p", pluginLog: hclog.New(&hclog.LoggerOptions{Output: out, JSONFormat: true})}}
	ctx := WithRunID(context.Background(), "r1")
	a.Logger(WithRunID(ctx, "")).Info("kept")
	a.Logger(WithRunID(ctx, "r2")).Info("replaced")
	lines := logLines(t, out)
	if len(lines) != 2 || lines[0]["run_id"] != "r1" || lines[1]["run_id"] != "r2" {
		t.Errorf("run ids = %v; want an empty id to keep r1 and a new one to replace it", lines)
	}
}
