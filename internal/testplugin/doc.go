// Package testplugin holds plugins that exist only for agenthost's own
// tests: a model that answers from a script and doubles as a chat
// platform (scripted), an image model (imagegen), and a plugin built for
// another protocol version (oldproto). They are real executables, started
// by the real host.
package testplugin
