// Package bootstrap is agenthost's core message handling, after elizaOS's
// plugin-bootstrap: on MESSAGE_RECEIVED it stores the message, composes
// state from every provider of the agent, asks the TEXT_LARGE model for a
// response, parses it (a plain-text answer is still a reply), runs the
// chosen actions, sends the reply back through the message's source, stores
// it, and runs the evaluators.
//
// It runs as its own process and reaches everything through the host's
// Runtime service, like any third-party plugin.
package bootstrap
