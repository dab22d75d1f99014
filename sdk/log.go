package sdk

import (
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Field names of the context logger. The host renames a plugin's fields
// called "agent", "plugin" or "pid" (those say whom a host line is about,
// and a plugin must not forge them), so these names are distinct.
const (
	logAgentID   = "agent_id"
	logAgentName = "agent_name"
	logRunID     = "run_id"
)

type runIDKey struct{}

// WithRunID returns ctx carrying a run id for [Agent.Logger]. The SDK sets
// it for every call the host makes for a run (actions, evaluators, events,
// providers, model calls); a plugin that starts a run of its own sets it
// for the run's work.
func WithRunID(ctx context.Context, runID string) context.Context {
	if runID == "" {
		return ctx
	}
	return context.WithValue(ctx, runIDKey{}, runID)
}

func runIDFrom(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(runIDKey{}).(string)
	return id
}

// Logger returns the plugin's logger with the agent's id and name, and the
// run id ctx carries, as fields (agent_id, agent_name, run_id): a line
// logged through it says which agent and which run it is about. Its output
// is the plugin's log, JSON on stderr as [NewLogger] writes it, which the
// host re-emits under the plugin's name. ctx may be context.Background() in
// work that belongs to no run, such as a connection loop.
//
// An Agent made outside the SDK (a unit test's &sdk.Agent{...}) logs to
// stderr.
func (a *Agent) Logger(ctx context.Context) hclog.Logger {
	var log hclog.Logger
	if a.plugin != nil && a.plugin.pluginLog != nil {
		log = a.plugin.pluginLog
	} else {
		log = fallbackLogger()
	}
	args := []any{logAgentID, a.ID}
	if n := a.Name(); n != "" {
		args = append(args, logAgentName, n)
	}
	if id := runIDFrom(ctx); id != "" {
		args = append(args, logRunID, id)
	}
	return log.With(args...)
}

// fallbackLogger is for agents the SDK did not make: nothing they log is
// lost, and no test has to set a logger up.
var fallbackLogger = sync.OnceValue(func() hclog.Logger { return NewLogger("plugin") })
