// Package contract holds the rules of the plugin protocol that more than
// one side applies, written once: the host, the SDK, sdk/plugintest and the
// first-party plugins all use them, so a plugin tested with plugintest
// meets the same rules in the daemon.
//
//   - errors.go: what kind of failure an error is, and the one mapping of
//     kinds to and from gRPC codes;
//   - ids.go: elizaOS's deterministic ids, and the agent's ids of an
//     incoming message;
//   - registry.go: one agent's plugins merged from their manifests, and how
//     an action name the model wrote is resolved;
//   - state.go, actions.go: how providers make a state and how the actions
//     of a response run, in order;
//   - storage.go: which Database methods plugins may call, which agents a
//     request names, and the generic service that forwards them;
//   - metadata.go: how stored metadata is merged with what a plugin
//     brings;
//   - features.go: what a host offers a plugin (InitRequest.features);
//   - grpc.go: how the gRPC servers of both sides take calls, and the
//     connections' flow-control window.
package contract
