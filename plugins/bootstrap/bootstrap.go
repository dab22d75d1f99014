package bootstrap

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
)

// Version is the plugin's version.
const Version = "0.2.0"

// Settings the plugin reads, per agent (character settings or environment).
const (
	SettingBypassTypes      = "SHOULD_RESPOND_BYPASS_TYPES"
	SettingBypassSources    = "SHOULD_RESPOND_BYPASS_SOURCES"
	SettingConversationLen  = "CONVERSATION_LENGTH"
	SettingRespondToBots    = "RESPOND_TO_AGENTS"
	SettingMaxAgentTurns    = "MAX_AGENT_TURNS"
	SettingRunTimeout       = "RUN_TIMEOUT_MS"
	SettingResponseRetries  = "RESPONSE_RETRIES"
	SettingReflectionEvery  = "REFLECTION_INTERVAL"
	SettingTaskTick         = "TASK_TICK_MS"
	SettingFactsThreshold   = "FACTS_MATCH_THRESHOLD"
	SettingDisableReflexion = "DISABLE_REFLECTION"
)

// bootstrap is the plugin's state: one value serves every agent of the
// process.
type bootstrap struct {
	log   hclog.Logger
	store Store

	mu     sync.Mutex
	agents map[string]*agentState

	// eventRuns maps the runs an event started (agent id, NUL, run id)
	// to where their replies go: the host has no run for them.
	eventRuns sync.Map

	// own holds this plugin's actions by name, for validating them here
	// instead of through the host.
	ownOnce sync.Once
	own     map[string]sdk.Action
}

// agentState is what the plugin keeps in memory for one agent.
type agentState struct {
	mu sync.Mutex
	// latest maps a room to the response id of the newest run in it: an
	// older run whose id is no longer there drops its reply.
	latest map[string]string
	// runs maps the pipeline runs in flight to their rooms.
	runs map[string]string
	info *sdk.AgentInfo
	// owned remembers worlds whose ownership was checked.
	owned map[string]bool
	tasks *taskService
}

// New returns the bootstrap plugin. It keeps relationships, components
// and tasks in the database.
func New() sdk.Plugin { return NewWithStore(DatabaseStore()) }

// NewWithStore returns the bootstrap plugin keeping relationships,
// components and tasks in store: [CacheStore] for a database plugin that
// does not serve them.
func NewWithStore(store Store) sdk.Plugin {
	b := &bootstrap{log: sdk.NewLogger("bootstrap"), store: store, agents: map[string]*agentState{}}
	return sdk.Plugin{
		Name:    "bootstrap",
		Version: Version,
		Description: "Core message handling: should-respond, state, the response, actions, " +
			"providers, reflection and the task service.",
		Aliases: []string{"@elizaos/plugin-bootstrap"},
		Settings: []sdk.Setting{
			{Name: SettingBypassTypes, Description: "More room types (comma list) whose messages are always answered; DM, VOICE_DM, SELF and API always are."},
			{Name: SettingBypassSources, Description: "More message sources (comma list) that are always answered; client_chat, api and web always are."},
			{Name: SettingConversationLen, Description: "How many recent messages prompts show.", Default: "32"},
			{Name: SettingRespondToBots, Description: "true lets the agent answer messages from other agents and bots.", Default: "false"},
			{Name: SettingMaxAgentTurns, Description: "With RESPOND_TO_AGENTS, how many agent messages in a row the agent answers before it waits for a person.", Default: "3"},
			{Name: SettingRunTimeout, Description: "How long one message may take before the run times out, in milliseconds.", Default: "3600000"},
			{Name: SettingResponseRetries, Description: "How often an unusable model answer is asked for again.", Default: "3"},
			{Name: SettingReflectionEvery, Description: "Reflect after this many new messages in a room.", Default: "conversation length / 4"},
			{Name: SettingTaskTick, Description: "How often the task service looks for due tasks, in milliseconds.", Default: "1000"},
			{Name: SettingFactsThreshold, Description: "Minimum similarity of a fact recalled by the FACTS provider.", Default: "0.1"},
			{Name: SettingDisableReflexion, Description: "true turns the reflection evaluator off.", Default: "false"},
		},
		Events:     b.eventHandlers(),
		Providers:  b.providers(),
		Actions:    b.actions(),
		Evaluators: []sdk.Evaluator{b.reflectionEvaluator()},
		Configure:  b.configure,
		Unconfigure: func(ctx context.Context, a *sdk.Agent) {
			b.mu.Lock()
			st := b.agents[a.ID]
			delete(b.agents, a.ID)
			b.mu.Unlock()
			if st != nil && st.tasks != nil {
				st.tasks.stop()
			}
		},
	}
}

func (b *bootstrap) configure(ctx context.Context, a *sdk.Agent) ([]string, error) {
	b.mu.Lock()
	old := b.agents[a.ID]
	st := newAgentState()
	b.agents[a.ID] = st
	b.mu.Unlock()
	if old != nil && old.tasks != nil {
		old.tasks.stop()
	}
	st.tasks = startTaskService(b, a)
	return nil, nil
}

func newAgentState() *agentState {
	return &agentState{latest: map[string]string{}, runs: map[string]string{}, owned: map[string]bool{}}
}

// state returns the agent's in-memory state, creating it for an agent that
// was never configured (a handler called in a test).
func (b *bootstrap) state(a *sdk.Agent) *agentState {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.agents[a.ID]
	if st == nil {
		st = newAgentState()
		b.agents[a.ID] = st
	}
	return st
}

// info returns what the agent is made of, asked of the host once: an
// agent's plugins do not change while it runs, and a restart configures
// the plugin again, which clears it.
func (b *bootstrap) info(ctx context.Context, a *sdk.Agent) *sdk.AgentInfo {
	st := b.state(a)
	st.mu.Lock()
	info := st.info
	st.mu.Unlock()
	if info != nil {
		return info
	}
	got, err := a.DescribeAgent(ctx)
	if err != nil {
		b.log.Warn("describe agent failed", "agent", a.ID, "error", err)
		return &sdk.AgentInfo{ID: a.ID, Name: a.Name()}
	}
	st.mu.Lock()
	st.info = got
	st.mu.Unlock()
	return got
}

// setting helpers read an agent's settings with defaults.

func settingInt(a *sdk.Agent, key string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(a.Setting(key)))
	if err != nil || n <= 0 {
		return def
	}
	return n
}

func settingFloat(a *sdk.Agent, key string, def float64) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(a.Setting(key)), 64)
	if err != nil {
		return def
	}
	return f
}

func settingBool(a *sdk.Agent, key string) bool {
	switch strings.ToLower(strings.TrimSpace(a.Setting(key))) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

// settingList reads a comma list, with or without brackets and quotes.
func settingList(a *sdk.Agent, key string) []string {
	s := strings.Trim(strings.TrimSpace(a.Setting(key)), "[]")
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.Trim(strings.TrimSpace(f), `"'`); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func conversationLength(a *sdk.Agent) int { return settingInt(a, SettingConversationLen, 32) }

func runTimeout(a *sdk.Agent) time.Duration {
	return time.Duration(settingInt(a, SettingRunTimeout, 3600000)) * time.Millisecond
}
