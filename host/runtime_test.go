package host

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/syncbuf"
	"github.com/agenthost/agenthost/sdk"
)

// TestPluginsReachOnlyTheirOwnStorage plays a plugin written against the
// protocol alone (internal/testplugin/rawhostile) against the Runtime
// connection, where plugins call the Runtime and the Database service: a
// call without its token or with a forged one, a call for an agent that
// does not use the plugin, the host's own Database methods, and storage
// calls that name another agent's records. Every one must be refused, the
// right way, and nothing of the victim's may come back or change.
func TestPluginsReachOnlyTheirOwnStorage(t *testing.T) {
	t.Parallel()
	victim := &sdk.Character{Name: "Victim", Bio: sdk.StringList{"x"}, Plugins: []string{"offline"}}
	mallory := &sdk.Character{Name: "Mallory", Bio: sdk.StringList{"x"}, Plugins: []string{"offline", "rawhostile"}}
	td := startTestDaemon(t, daemonOpt{chars: []*sdk.Character{victim, mallory}, pluginDirs: []string{testPlugins(t, "rawhostile")}})
	said := td.say("Victim", "alice", "my secret is 1234")
	if said.RoomID == "" || len(said.Messages) == 0 {
		t.Fatalf("the victim did not answer: %+v", said)
	}
	mems := td.memories("Victim", "roomId="+said.RoomID)
	if len(mems) == 0 {
		t.Fatal("the victim stored nothing")
	}
	var victimMemory, victimEntity string
	for _, m := range mems {
		if m.EntityID != victim.AgentID() {
			victimMemory, victimEntity = m.ID, m.EntityID
		}
	}
	if victimEntity == "" {
		t.Fatalf("no memory of alice's among %+v", mems)
	}

	attack := func(path string, q url.Values) map[string]string {
		t.Helper()
		return rawhostileReport(t, td, mallory.AgentID(), path+"?"+q.Encode())
	}
	expect := func(report map[string]string, want func(name string) string) {
		t.Helper()
		names := make([]string, 0, len(report))
		for name := range report {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if got := report[name]; !strings.HasPrefix(got, want(name)) {
				t.Errorf("%s: %s, want %q", name, got, want(name))
			}
		}
	}

	// Who calls, and for whom.
	expect(attack("/runtime", url.Values{"victim": {victim.AgentID()}}), func(name string) string {
		if strings.HasPrefix(name, "no token/") || strings.HasPrefix(name, "forged token/") {
			return "refused: Unauthenticated"
		}
		return "refused: NotFound"
	})

	// The host's own methods, and requests that name several agents or
	// none.
	expect(attack("/hostonly", url.Values{"victim": {victim.AgentID()}}), func(name string) string {
		switch {
		case name == "AddLogs own and victim":
			return "refused: NotFound"
		case strings.Contains(name, "without agent"):
			return "refused: InvalidArgument"
		case name == "CreateMemory own claiming victim":
			return "refused: stored as its own agent's"
		}
		return "refused: PermissionDenied"
	})

	// The victim's records, named in calls for the plugin's own agent.
	expect(attack("/scope", url.Values{"mem": {victimMemory}, "room": {said.RoomID}, "entity": {victimEntity}}), func(string) string {
		return "refused:"
	})

	// Nothing of the victim's changed.
	after := td.memories("Victim", "roomId="+said.RoomID)
	if len(after) != len(mems) {
		t.Errorf("the victim's room had %d memories, now %d", len(mems), len(after))
	}
	for _, m := range after {
		if text, _ := m.Content["text"].(string); text == "overwritten" || text == "injected" || text == "claims to be the victim's" {
			t.Errorf("the victim's memories were written to: %+v", m)
		}
	}
}

// rawhostileReport calls one of rawhostile's report routes for an agent.
func rawhostileReport(t *testing.T, td *testDaemon, agentID, path string) map[string]string {
	t.Helper()
	res, err := (&http.Client{Timeout: time.Minute}).Get(td.url + "/hooks/rawhostile/" + agentID + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	report := map[string]string{}
	if res.StatusCode != 200 || json.Unmarshal(body, &report) != nil || len(report) == 0 {
		t.Fatalf("%s: %d %s", path, res.StatusCode, body)
	}
	return report
}

// TestRuntimeCallsDuringConfigure: a plugin may call the Runtime for an
// agent from its Configure on (its settings, the agent's plugins, its
// storage), before the agent is listed as running.
func TestRuntimeCallsDuringConfigure(t *testing.T) {
	ch := &sdk.Character{Name: "Setup", Bio: sdk.StringList{"x"}, Plugins: []string{"offline", "rawhostile"},
		Settings: map[string]any{"RAWHOSTILE_MODE": "configure-calls"}}
	td := startTestDaemon(t, daemonOpt{chars: []*sdk.Character{ch}, pluginDirs: []string{testPlugins(t, "rawhostile")}})
	report := rawhostileReport(t, td, ch.AgentID(), "/configure")
	for _, call := range []string{"GetSettings", "DescribeAgent", "SetCache", "GetCache"} {
		if got := report[call]; !strings.HasPrefix(got, "ALLOWED") {
			t.Errorf("%s from Configure: %s", call, got)
		}
	}
	if !strings.Contains(report["GetCache"], `"found":true`) || !strings.Contains(report["GetSettings"], "RAWHOSTILE_MODE") {
		t.Errorf("the calls made from Configure did not reach the agent's storage and settings: %v", report)
	}
}

// TestBadJSONFromPlugins: a _json field that holds no JSON object is
// refused in a plugin's request, naming the field, and dropped from a
// plugin's answer; both are logged with the plugin and the field.
func TestBadJSONFromPlugins(t *testing.T) {
	var log syncbuf.Buffer
	ch := &sdk.Character{Name: "Sloppy", Bio: sdk.StringList{"x"}, Plugins: []string{"offline", "rawhostile"}}
	td := startTestDaemon(t, daemonOpt{chars: []*sdk.Character{ch}, pluginDirs: []string{testPlugins(t, "rawhostile")}, logOut: &log})
	report := rawhostileReport(t, td, ch.AgentID(), "/badjson")
	for call, field := range map[string]string{"EmitEvent payload_json": "payload_json", "CreateMemory metadata_json": "memory.metadata_json"} {
		if got := report[call]; !strings.HasPrefix(got, "refused: InvalidArgument") || !strings.Contains(got, field) {
			t.Errorf("%s: %s, want refused with InvalidArgument naming %s", call, got, field)
		}
	}
	// The provider's text is kept; its bad values are not.
	if got := report["ComposeState"]; !strings.Contains(got, "rawhostile provider text") || strings.Contains(got, "broken") {
		t.Errorf("ComposeState: %s", got)
	}
	// The host logs before it answers: the lines are there.
	for _, want := range []string{"plugin.rawhostile", "call=Plugin.GetProviders", "field=results[0].values_json", "field=results[0].data_json",
		"call=Runtime.EmitEvent", "field=payload_json", "call=Database.CreateMemory", "field=memory.metadata_json"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, log.String())
		}
	}
}
