// Package sdk is what an agenthost plugin imports.
//
// A plugin is a [Plugin] value: the actions, providers, evaluators, model
// handlers, event handlers and message sources it offers, as plain Go
// functions. Its main function is one call:
//
//	func main() { sdk.Serve(myplugin.New()) }
//
// The host starts the plugin as its own process and talks to it over gRPC
// (through hashicorp/go-plugin). One process serves every agent that uses the
// plugin: each handler receives the [Agent] it runs for, and reaches the host
// (models, events, sending messages) through that value; the agent's storage
// (memories, entities, rooms, tasks, logs, the cache) is package sdk/storage's
// storage.For(a).
//
// Three helpers spare a plugin the usual plumbing:
//
//   - [Instances] keeps one value per agent (a client, a connection): made
//     by its New when the agent is configured, found by handlers with Get,
//     disposed of when the agent stops or the process shuts down. Set it as
//     [Plugin.Instances].
//   - [Agent.Config] reads the settings the plugin declares as typed values
//     (String, Int, Bool, Duration, List, ...), with each [Setting]'s
//     Default applied and bad values reported by name. A Required setting
//     an agent lacks stops the agent before the plugin's Configure runs.
//   - [Agent.Logger] is the plugin's logger with the agent's id and name
//     and the call's run id as fields (agent_id, agent_name, run_id).
//
// Failures keep their kind across the wire: wrap [ErrNotFound], [ErrInvalid],
// [ErrUnavailable], [ErrUnimplemented], [ErrPermissionDenied] or
// [ErrUnauthenticated] in a handler's error and the host learns it; an
// error from the host wraps the same ones, so errors.Is tells what went
// wrong (an ErrUnimplemented from a call the host or the database plugin
// does not offer; [Host.Offers] tells before the call).
//
// Protobuf types never appear in this package's API; the wire contract lives
// in sdk/proto and is converted at the edge. Package sdk/plugintest runs a
// plugin over the real gRPC path inside a test, without building a binary.
package sdk
