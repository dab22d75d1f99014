// Package host is the agenthost daemon: it launches plugins as separate
// processes, keeps them running, builds each agent's registry from its
// plugins' manifests, routes every call between plugins (the Runtime
// service), and serves the HTTP API.
//
// Nothing here calls plugin code in-process. The bundled first-party plugins
// run as child processes of the agenthost executable itself, through the
// same go-plugin gRPC path as a third-party binary.
package host
