package sdk

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
)

// Plugin is everything a plugin offers. Fill in the parts you have; a nil or
// empty part is simply not offered. Names of actions, providers, evaluators
// and sources are the contract with characters and prompts: keep them stable.
type Plugin struct {
	// Name is the short name a character uses, e.g. "bootstrap".
	Name        string
	Version     string
	Description string
	// Aliases are other names a character may use, e.g. "@elizaos/plugin-sql".
	Aliases  []string
	Settings []Setting

	Actions    []Action
	Providers  []Provider
	Evaluators []Evaluator
	Models     []Model
	Events     []EventHandler
	Sources    []Source

	// HTTP answers the requests the daemon receives for this plugin at
	// /hooks/{plugin}/{agentId}[/{path}], e.g. a platform's webhook calls.
	// The daemon checks no API key there: authenticate the caller yourself.
	HTTP func(ctx context.Context, a *Agent, req *HTTPRequest) (*HTTPResponse, error)

	// Logger is where the plugin logs, and what [Agent.Logger] builds on.
	// Nil means [NewLogger](Name) under Serve, or the test's logger under
	// sdk/plugintest. Set it when the plugin made its logger already.
	Logger hclog.Logger

	// Instances, if set, keeps one value per configured agent (a client,
	// a connection, per-agent state): set it to an *[Instances] of your
	// type. Its New runs at Configure, before the Configure below; the
	// value is disposed of after Unconfigure, and at shutdown.
	Instances instanceKeeper

	// database registers the Database service: sdk/dbplugin.Plugin sets
	// it on the one plugin that is the agents' storage (the sql plugin).
	database func(*grpc.Server)

	// Init runs once per process, before any agent is configured.
	Init func(ctx context.Context, host Host) error
	// Configure runs once per agent that uses the plugin (and again after a
	// restart of the plugin process), once the agent's Required settings
	// are known to be set. Returned warnings are logged by the host; an
	// error stops the agent from starting.
	Configure func(ctx context.Context, a *Agent) (warnings []string, err error)
	// Unconfigure runs when an agent stops.
	Unconfigure func(ctx context.Context, a *Agent)
}

// Host is what Init learns about the host process.
type Host struct {
	Version string
	// ProtocolMinor is the minor of agenthost.plugin.v1 that the host and
	// this SDK both speak: the lower of the two.
	ProtocolMinor int
	// Features are what the host offers the plugin: the full gRPC name of
	// each method the plugin may call ("/agenthost.plugin.v1.Database/
	// GetCachedEmbeddings"); see [Host.Offers].
	Features []string
	// DataDir is the plugin's own folder (DATA_DIR/plugins/NAME), made by
	// the host: the one place of the daemon's data the plugin may keep files
	// in. Under confinement it is also the only one it can reach.
	DataDir string
	// Settings are host-level settings; only the first-party database
	// plugin gets any (the database URL).
	Settings map[string]string
}

// Offers reports whether the host offers a feature, e.g. the name of a
// Database method: a plugin can tell before it calls. A call the host does
// not offer fails with an error wrapping ErrUnimplemented.
func (h Host) Offers(feature string) bool {
	for _, f := range h.Features {
		if f == feature {
			return true
		}
	}
	return false
}

// Setting declares a setting the plugin reads. The host sends a plugin only
// the settings it declares (and any the character grants it), so a setting
// that is not declared is never set; `agenthost plugins list` shows them.
type Setting struct {
	Name        string
	Description string
	// Required stops an agent that does not have the setting: the SDK
	// fails its Configure with an error naming the setting and where to
	// set it, before the plugin's own Configure runs.
	Required bool
	// Secret marks a credential: a key or a token.
	Secret bool
	// Default is the value [Agent.Config] reads when the setting is not
	// set (Agent.Setting gives the raw value). It must parse as the type
	// the plugin reads the setting as.
	Default string
	// Endpoint marks an address the plugin sends its secrets to, such as a
	// base URL. When a character points an endpoint at an address the
	// operator did not configure, the host does not send the daemon's own
	// secrets for it.
	Endpoint bool
}

// ExampleMessage is one line of an example conversation.
type ExampleMessage struct {
	Name    string  `json:"name"`
	Content Content `json:"content"`
}

// Action is something the agent can do in answer to a message.
type Action struct {
	Name        string
	Description string
	Similes     []string
	Examples    [][]ExampleMessage
	// Validate decides whether the action is offered for this message. Nil
	// means always.
	Validate func(ctx context.Context, a *Agent, msg *Memory, st *State) bool
	Handler  func(ctx context.Context, a *Agent, call *ActionCall) (ActionResult, error)
}

// ActionCall is everything an action handler receives about its run.
type ActionCall struct {
	Message   *Memory
	State     *State
	Responses []Memory
	RunID     string
	// Previous holds the results of the earlier actions of this chain.
	Previous []ActionOutcome
	Options  map[string]any
}

// Provider adds text and values to the state a prompt is built from.
type Provider struct {
	Name        string
	Description string
	// Dynamic providers run only when asked for by name.
	Dynamic bool
	// Private providers are never in the default set and not advertised.
	Private bool
	// Position orders providers; lower first.
	Position int
	Get      func(ctx context.Context, a *Agent, msg *Memory, st *State) (ProviderResult, error)
}

// ProviderResult is one provider's contribution to the state.
type ProviderResult struct {
	Text   string
	Values map[string]any
	Data   map[string]any
}

// Evaluator runs after the agent has responded (or chosen not to).
type Evaluator struct {
	Name        string
	Description string
	Similes     []string
	// AlwaysRun evaluators run even when the agent did not respond.
	AlwaysRun bool
	Validate  func(ctx context.Context, a *Agent, msg *Memory, st *State) bool
	Handler   func(ctx context.Context, a *Agent, call *EvaluatorCall) error
}

// EvaluatorCall is everything an evaluator handler receives.
type EvaluatorCall struct {
	Message    *Memory
	State      *State
	DidRespond bool
	Responses  []Memory
	RunID      string
}

// Model serves one model type.
type Model struct {
	Type string
	// Priority decides between plugins serving the same type; higher wins.
	Priority int
	Handler  func(ctx context.Context, a *Agent, req *ModelRequest) (*ModelResponse, error)
	// Stream, if set, answers streamed calls: it calls emit with each piece
	// of text as it is made and returns the whole response at the end.
	// Without it a streamed call gets Handler's answer in one piece.
	Stream func(ctx context.Context, a *Agent, req *ModelRequest, emit func(text string) error) (*ModelResponse, error)
}

// EventHandler handles one event type.
type EventHandler struct {
	Type   string
	Handle func(ctx context.Context, a *Agent, ev *Event) error
}

// Source is a platform the plugin can send messages to, e.g. "telegram".
type Source struct {
	Name string
	// Send delivers content and returns the platform's message ids.
	Send func(ctx context.Context, a *Agent, target Target, content Content) ([]string, error)
}
