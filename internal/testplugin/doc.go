// Package testplugin holds plugins that exist only for agenthost's own
// tests: a model that answers from a script and doubles as a chat
// platform (scripted), an image model (imagegen), a plugin built for
// another protocol version (oldproto), an HTTP hook that answers as a
// hostile plugin would (hookprobe), hostile plugins that attack the host
// (hostile, rawhostile), a message handler that works on after its last
// reply (lastreply), and plugins broken on purpose for `agenthost
// plugins check` (broken). They are real executables, started by the real
// host. ServeRaw serves the ones written against the protocol alone.
package testplugin
