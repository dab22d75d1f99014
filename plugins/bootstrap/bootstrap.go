package bootstrap

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/boundedmap"
	"github.com/agenthost/agenthost/sdk"
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
	store Store
	// evalStore is the same store for the tasks that hold evaluations
	// (evaluations.go): writing them changes nothing any room read shows
	// (see changingStore).
	evalStore Store
	agents    *sdk.Instances[*agentState]
	// embeds tunes the agents' embedding queues (embeddings.go).
	embeds embedTuning

	// eventRuns maps the runs an event started (agent id, NUL, run id)
	// to where their replies go: the host has no run for them.
	eventRuns sync.Map

	// own holds this plugin's actions by name, for validating them here
	// instead of through the host.
	ownOnce sync.Once
	own     map[string]sdk.Action

	// sched runs every agent's task service (schedule.go).
	schedOnce sync.Once
	sched     *scheduler
}

// agentState is what the plugin keeps in memory for one agent.
type agentState struct {
	settings agentSettings
	tasks    *taskService
	evals    *evaluations
	embeds   *embedQueue

	mu sync.Mutex
	// latest maps a room to the response id of the newest run in it: an
	// older run whose id is no longer there drops its reply.
	latest map[string]string
	// runs maps the pipeline runs in flight to their rooms.
	runs map[string]string
	info *sdk.AgentInfo
	// owned remembers worlds whose ownership was checked.
	owned map[string]bool
	// handling and handled know the deliveries of a message without the
	// store (see claimMessage): the message ids whose first delivery is
	// being stored, each with a channel closed once it is, and the ids
	// this process stored.
	handling map[string]chan struct{}
	handled  *boundedmap.Map[bool]
	// windows are the rooms' recent messages, kept (window.go).
	windows roomWindows
}

// New returns the bootstrap plugin. It keeps relationships, components
// and tasks in the database.
func New() sdk.Plugin { return NewWithStore(DatabaseStore()) }

// NewWithStore returns the bootstrap plugin keeping relationships,
// components and tasks in store: [CacheStore] for a database plugin that
// does not serve them.
func NewWithStore(store Store) sdk.Plugin { return newBootstrap(store).plugin() }

func newBootstrap(store Store) *bootstrap {
	b := &bootstrap{store: changingStore{store}, evalStore: store, embeds: defaultEmbedTuning}
	b.agents = &sdk.Instances[*agentState]{New: b.newAgentState, Close: (*agentState).close}
	return b
}

func (b *bootstrap) plugin() sdk.Plugin {
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
			{Name: SettingReflectionEvery, Description: "Reflect after this many new messages in a room; by default a quarter of the conversation length."},
			{Name: SettingTaskTick, Description: "How often the task service looks for due tasks, in milliseconds.", Default: "1000"},
			{Name: SettingFactsThreshold, Description: "Minimum similarity of a fact recalled by the FACTS provider.", Default: "0.1"},
			{Name: SettingDisableReflexion, Description: "true turns the reflection evaluator off.", Default: "false"},
		},
		Events:     b.eventHandlers(),
		Providers:  b.providers(),
		Actions:    b.actions(),
		Evaluators: []sdk.Evaluator{b.reflectionEvaluator()},
		Instances:  b.agents,
	}
}

// newAgentState readies an agent when it is configured: its settings are
// read (a bad value is a warning, and the default is used) and its task
// service starts.
func (b *bootstrap) newAgentState(ctx context.Context, a *sdk.Agent) (*agentState, []string, error) {
	st, warnings := b.newState(a)
	st.tasks = startTaskService(b, a, st.settings.taskTick)
	return st, warnings, nil
}

// newState is an agent's state, without its task service.
func (b *bootstrap) newState(a *sdk.Agent) (*agentState, []string) {
	settings, warnings := readSettings(a)
	run := func(ctx context.Context, e evaluation) { b.runEvaluation(ctx, a, e) }
	return &agentState{settings: settings, evals: newEvaluations(run, &b.scheduler().quiet), embeds: newEmbedQueue(a, b.evalStore, &b.scheduler().quiet, b.embeds), latest: map[string]string{}, runs: map[string]string{}, owned: map[string]bool{},
		handling: map[string]chan struct{}{}, handled: boundedmap.New[bool](maxHandled)}, warnings
}

func (st *agentState) close() {
	if st.tasks != nil {
		st.tasks.stop()
	}
	st.evals.close()
	st.embeds.close()
}

// state returns the agent's in-memory state. A call that comes in while
// the agent is being stopped gets a state of its own, which is dropped.
func (b *bootstrap) state(a *sdk.Agent) *agentState {
	if st, err := b.agents.Get(a); err == nil {
		return st
	}
	st, _ := b.newState(a)
	return st
}

// settings returns the agent's settings, as read when it was configured.
func (b *bootstrap) settings(a *sdk.Agent) agentSettings { return b.state(a).settings }

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
		a.Logger(ctx).Warn("describe agent failed", "error", err)
		return &sdk.AgentInfo{ID: a.ID, Name: a.Name()}
	}
	st.mu.Lock()
	st.info = got
	st.mu.Unlock()
	return got
}

// agentSettings are an agent's settings, read once when it is configured:
// an agent's settings do not change while it runs.
type agentSettings struct {
	conversationLen   int
	respondToBots     bool
	maxAgentTurns     int
	runTimeout        time.Duration
	responseRetries   int
	reflectionEvery   int
	taskTick          time.Duration
	factsThreshold    float64
	disableReflection bool
}

// readSettings reads the agent's settings with their declared defaults. A
// value that does not parse, or a count that is not positive, is a
// warning, and the default is used: a typo must not take the agent's
// message handling down.
func readSettings(a *sdk.Agent) (agentSettings, []string) {
	c := a.Config()
	positive := func(name string) int { return c.IntBetween(name, 1, math.MaxInt) }
	s := agentSettings{
		conversationLen:   positive(SettingConversationLen),
		respondToBots:     c.Bool(SettingRespondToBots),
		maxAgentTurns:     positive(SettingMaxAgentTurns),
		runTimeout:        time.Duration(positive(SettingRunTimeout)) * time.Millisecond,
		responseRetries:   positive(SettingResponseRetries),
		reflectionEvery:   positive(SettingReflectionEvery),
		taskTick:          time.Duration(positive(SettingTaskTick)) * time.Millisecond,
		factsThreshold:    c.Float(SettingFactsThreshold),
		disableReflection: c.Bool(SettingDisableReflexion),
	}
	if s.reflectionEvery == 0 {
		// elizaOS reflects every quarter of the conversation length.
		s.reflectionEvery = (s.conversationLen + 3) / 4
	}
	return s, c.Warnings()
}
