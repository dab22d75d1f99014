// Package plugincheck holds a plugin executable, in any language, to the
// plugin contract of sdk/proto/README.md: `agenthost plugins check PATH`.
//
// The plugin runs alone, started as the daemon starts it (confined, in
// folders of its own, through the daemon's own go-plugin client with its
// mutual TLS; see host.Manager.StartProbe), against a Runtime of the check's
// own that answers as a host with one agent and an empty database would.
// The checks run in order, each timed, each passing or failing with a
// reason (a check that cannot run after an earlier failure is skipped):
//
//	cookie          without the magic cookie it exits non-zero, says why on
//	                stderr and writes nothing on stdout
//	handshake       its handshake line is well formed and picks the app
//	                protocol the host offered
//	mtls            it requires TLS with the host's certificate
//	                (PLUGIN_CLIENT_CERT) and serves with the certificate the
//	                host made for it (AGENTHOST_PLUGIN_TLS_FD) or with one of
//	                its own that its handshake names and the host can check
//	health          grpc.health.v1.Health answers SERVING
//	describe        its manifest is valid and named after its file
//	init            Init is answered
//	configure       Configure is answered for a sample agent
//	providers       each provider answers sample input within the deadline
//	actions         ValidateActions, and each action, likewise
//	evaluators      each evaluator, likewise
//	cancellation    a call the host cancels stops its Runtime calls
//	large-request   a 5 MiB request is accepted
//	invalid-input   invalid requests are answered with errors, not crashes
//	unconfigure     Unconfigure is answered
//	runtime         every Runtime call carried its runtime token
//	shutdown        Plugin.Shutdown and GRPCController.Shutdown end the
//	                process with status 0, and its socket is removed
//	stdout          nothing but the handshake line was written on stdout
//	stderr          every stderr line is an hclog-shaped JSON object
//
// Cancellation can be seen only through the Runtime: the check holds the
// first Runtime call a provider, action or evaluator makes, cancels that
// handler's call, and expects the held call to be cancelled in turn. A
// handler that makes no Runtime call has nothing to cancel, and says so.
package plugincheck
