// Package host is the agenthost daemon: it launches plugins as separate
// processes, keeps them running, builds each agent's registry from its
// plugins' manifests, routes every call between plugins (the Runtime
// service, and the plugins' storage calls of the Database service, which it
// checks and forwards to the database plugin without knowing them one by
// one), and serves the HTTP API. The rules it shares with the SDK and
// sdk/plugintest (action resolution, state composition, errors, which
// storage calls plugins may make) are internal/contract's.
//
// The plugin folders are watched while the daemon runs (watch.go): a
// binary dropped in becomes known, one replaced is upgraded in place beside
// the running process (upgrade.go), and plugins.lock pins what may run
// (lock.go).
//
// Nothing here calls plugin code in-process. The bundled first-party plugins
// run as child processes of the agenthost executable itself, through the
// same go-plugin gRPC path as a third-party binary.
package host
