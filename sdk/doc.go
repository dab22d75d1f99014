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
// (models, memories, entities, events, sending messages) through that value.
//
// Protobuf types never appear in this package's API; the wire contract lives
// in sdk/proto and is converted at the edge. Package sdk/plugintest runs a
// plugin over the real gRPC path inside a test, without building a binary.
package sdk
