package plugincheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// checkMTLS looks at the certificate the plugin serves with, then knocks
// on the plugin's socket as a stranger would: without TLS, with TLS but no
// client certificate, and with a certificate that is not the host's. Each
// must be turned away. The certificate is the one the handshake names, or,
// when it names none, the one the host made for the plugin (the Go SDK
// serves with that one; see contract.HostTLSFDEnv).
func (c *checker) checkMTLS() (Status, string, []string) {
	var cert *x509.Certificate
	served := "a certificate of its own for localhost"
	if field := c.handshakeField(5); field == "" {
		if why := c.hostCertProblem(); why != "" {
			c.broken = "the plugin does not speak TLS with the host"
			return Fail, "the handshake carries no certificate: " + why + ", so the host's calls fail (serve TLS with the certificate and key the host writes on the file descriptor numbered in " +
				contract.HostTLSFDEnv + ", or with a certificate of your own that you put in the sixth field; either way require a client certificate signed by " + contract.ClientCertEnv + "'s)", nil
		}
		cert, served = c.probe.ServerCert, "the certificate the host made for it"
	} else {
		var problem string
		if cert, problem = handshakeCert(field); problem != "" {
			return Fail, problem, nil
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	// A certificate like the host's, subject and all, so that a plugin's
	// TLS stack that names the host's as the one acceptable issuer still
	// gets it, and must refuse it for its key.
	stranger, _, _, err := contract.NewCertificate()
	if err != nil {
		return Fail, err.Error(), nil
	}
	addr := c.handshakeField(3)
	var details []string
	for _, k := range []struct {
		who   string
		creds credentials.TransportCredentials
	}{
		{"without TLS", insecure.NewCredentials()},
		{"with TLS but no client certificate", credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})},
		{"with a client certificate that is not the host's", credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12,
			Certificates: []tls.Certificate{stranger}})},
	} {
		if err := knock(c.ctx, addr, k.creds); err != nil {
			return Fail, fmt.Sprintf("the plugin answers a client %s (%s): require a client certificate and trust only PLUGIN_CLIENT_CERT", k.who, err), nil
		}
		details = append(details, "a client "+k.who+" is turned away")
	}
	return Pass, "the plugin serves with " + served + " and answers only the host's", details
}

// hostCertProblem says why the plugin, whose handshake names no
// certificate, is not serving TLS with the one the host made for it, or
// "" when it is: the host's own connection, which trusts only that one,
// gets an answer.
func (c *checker) hostCertProblem() string {
	if knock(c.ctx, c.handshakeField(3), insecure.NewCredentials()) != nil {
		return "the plugin serves without TLS although the host set " + contract.ClientCertEnv
	}
	ctx, cancel := context.WithTimeout(c.ctx, probeTimeout)
	defer cancel()
	_, err := healthpb.NewHealthClient(c.probe.Conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
	if code := status.Code(err); code == codes.Unavailable || code == codes.DeadlineExceeded {
		return "the plugin does not serve with the certificate the host made for it (" + c.callErr(err) + ")"
	}
	return ""
}

// handshakeCert reads the certificate in the handshake's sixth field and
// holds it to what the host checks, or says what is wrong with it.
func handshakeCert(field string) (*x509.Certificate, string) {
	if strings.HasSuffix(field, "=") {
		return nil, "the certificate in the handshake is base64 with '=' padding: go-plugin reads it without padding"
	}
	der, err := base64.RawStdEncoding.DecodeString(field)
	if err != nil {
		return nil, "the certificate in the handshake is not base64 (standard alphabet, no padding): " + err.Error()
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "the certificate in the handshake is not an X.509 certificate (DER): " + err.Error()
	}
	now := time.Now()
	switch {
	case !slices.Contains(cert.DNSNames, "localhost"):
		return nil, fmt.Sprintf("the plugin's certificate names %v in its subjectAltName, not localhost, the name the host checks", cert.DNSNames)
	case len(cert.ExtKeyUsage) > 0 && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny):
		return nil, "the plugin's certificate does not allow server authentication (extended key usage)"
	case now.Before(cert.NotBefore) || now.After(cert.NotAfter):
		return nil, fmt.Sprintf("the plugin's certificate is valid from %s to %s, not now", cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	return cert, ""
}

// knock makes a health check on the socket with creds, and returns an
// error when the plugin answered at all (any answer but a failed
// connection means the connection was accepted).
func knock(ctx context.Context, addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient("unix://"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return nil
	case codes.OK:
		return errors.New("it answered a health check")
	}
	return fmt.Errorf("it answered a health check with %s", status.Code(err))
}

// checkHealth asks the health service about "plugin", as the host's ping
// does, and about the server as a whole.
func (c *checker) checkHealth() (Status, string, []string) {
	h := healthpb.NewHealthClient(c.probe.Conn)
	for _, svc := range []string{"plugin", ""} {
		ctx, cancel := context.WithTimeout(c.ctx, probeTimeout)
		res, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		cancel()
		of := ""
		if svc == "" {
			of = ` for service ""`
		}
		switch {
		case status.Code(err) == codes.Unimplemented:
			return Fail, "grpc.health.v1.Health is not served (UNIMPLEMENTED): the host pings every plugin with it, and restarts one that does not answer", nil
		case err != nil:
			return Fail, fmt.Sprintf("Check%s failed: %s", of, c.callErr(err)), nil
		case res.GetStatus() != healthpb.HealthCheckResponse_SERVING:
			return Fail, fmt.Sprintf("answered %s%s", res.GetStatus(), of), nil
		}
	}
	return Pass, `SERVING for "plugin" and ""`, nil
}

// checkDescribe reads the manifest and holds it to the rules.
func (c *checker) checkDescribe() (Status, string, []string) {
	ctx, cancel := c.callCtx()
	defer cancel()
	m, err := c.pc.Describe(ctx, &pb.DescribeRequest{HostProtocolMinor: contract.ProtocolMinor, HostVersion: c.o.Version})
	if err != nil {
		c.broken = "Describe failed"
		return Fail, "Describe failed: " + c.callErr(err), nil
	}
	c.manifest = m
	c.rt.mu.Lock()
	c.rt.manifest = m
	c.rt.mu.Unlock()
	problems := contract.ManifestProblems(m)
	if err := contract.CheckManifestName(c.name, m); err != nil {
		problems = append([]string{"the host refuses the plugin: " + err.Error()}, problems...)
	}
	if len(problems) > 0 {
		return Fail, fmt.Sprintf("the manifest is not valid: %s", problems[0]), problems
	}
	return Pass, fmt.Sprintf("%s %s (protocol 1.%d): %s", m.GetName(), m.GetVersion(), m.GetProtocolMinor(), offers(m)), nil
}

// offers sums up a manifest.
func offers(m *pb.Manifest) string {
	var parts []string
	for _, k := range []struct {
		n    int
		what string
	}{{len(m.GetProviders()), "provider"}, {len(m.GetActions()), "action"}, {len(m.GetEvaluators()), "evaluator"},
		{len(m.GetModels()), "model type"}, {len(m.GetEvents()), "event"}, {len(m.GetSettings()), "setting"}} {
		if k.n > 0 {
			parts = append(parts, count(k.n, k.what))
		}
	}
	if len(parts) == 0 {
		return "it offers nothing"
	}
	return strings.Join(parts, ", ")
}

func (c *checker) checkInit() (Status, string, []string) {
	ctx, cancel := c.callCtx()
	defer cancel()
	_, err := c.pc.Init(ctx, &pb.InitRequest{RuntimeAddress: c.rt.addr, ProtocolMinor: contract.ProtocolMinor, HostVersion: c.o.Version,
		DataDir: c.probe.DataDir, RuntimeToken: c.rt.token, Features: contract.Features()})
	if err != nil {
		c.broken = "Init failed"
		return Fail, "Init failed: " + c.callErr(err), nil
	}
	return Pass, "answered; the plugin has the Runtime's address and its token", nil
}

// settings are what Configure gives the sample agent: the declared
// defaults and the caller's; a required setting nobody gave gets a
// placeholder, said in the details.
func (c *checker) settings() (map[string]string, []string) {
	out := map[string]string{}
	var notes []string
	for _, s := range c.manifest.GetSettings() {
		switch v, ok := c.o.Settings[s.GetName()]; {
		case ok:
			out[s.GetName()] = v
		case s.GetDefaultValue() != "":
			out[s.GetName()] = s.GetDefaultValue()
		case s.GetRequired():
			out[s.GetName()] = "plugins-check-placeholder"
			notes = append(notes, fmt.Sprintf("the required setting %s was given a placeholder; --setting %s=VALUE gives a real one", s.GetName(), s.GetName()))
		}
	}
	for k, v := range c.o.Settings {
		if _, ok := out[k]; !ok {
			notes = append(notes, fmt.Sprintf("the setting %s is not declared in the manifest: the daemon would not send it", k))
			_ = v
		}
	}
	return out, notes
}

func (c *checker) configure(ctx context.Context, agentID string, character []byte) ([]string, error) {
	settings, _ := c.settings()
	// The agent is the plugin's from Configure on, as in the daemon.
	c.rt.configured(agentID, settings)
	res, err := c.pc.Configure(ctx, &pb.ConfigureRequest{AgentId: agentID, CharacterJson: character, Settings: settings, PluginSet: "plugins-check"})
	return res.GetWarnings(), err
}

func (c *checker) checkConfigure() (Status, string, []string) {
	ctx, cancel := c.callCtx()
	defer cancel()
	c.rt.setPhase("configure")
	defer c.rt.setPhase("")
	_, notes := c.settings()
	warnings, err := c.configure(ctx, sampleAgent, characterJSON(sampleAgentName, c.name, 0))
	if err != nil {
		c.broken = "Configure failed"
		return Fail, fmt.Sprintf("Configure of the sample agent %s failed: %s", sampleAgentName, c.callErr(err)), notes
	}
	for _, w := range warnings {
		notes = append(notes, "warning: "+w)
	}
	c.collectHandlers()
	return Pass, fmt.Sprintf("the sample agent %s is configured (%d warnings)", sampleAgentName, len(warnings)), notes
}

// maxHandlers bounds the handlers of each kind that are called: a
// manifest is the plugin's to write, and may declare thousands.
const maxHandlers = 50

// collectHandlers lists the providers, actions and evaluators of the
// manifest (maxHandlers of each kind) with a call that runs each on
// sample input.
func (c *checker) collectHandlers() {
	for _, p := range first(c.manifest.GetProviders()) {
		name := p.GetName()
		c.handlers = append(c.handlers, handler{kind: "provider", name: name, call: func(ctx context.Context) error {
			res, err := c.pc.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: sampleAgent, Names: []string{name},
				Message: sampleMessage(), State: sampleState(), RunId: newID()})
			if err != nil {
				return err
			}
			return providerProblem(name, res)
		}})
	}
	for _, a := range first(c.manifest.GetActions()) {
		name := a.GetName()
		c.handlers = append(c.handlers, handler{kind: "action", name: name, call: func(ctx context.Context) error {
			msg := sampleMessage()
			res, err := c.pc.RunAction(ctx, &pb.RunActionRequest{AgentId: sampleAgent, Name: name, Message: msg, State: sampleState(),
				Responses: []*pb.Memory{sampleReply(msg)}, RunId: newID(), OptionsJson: []byte(`{}`)})
			if err != nil {
				return err
			}
			if bad := contract.CheckJSONFields(res, false); len(bad) > 0 {
				return problem("its result's %s (the host drops it)", bad[0])
			}
			return nil
		}})
	}
	for _, e := range first(c.manifest.GetEvaluators()) {
		name := e.GetName()
		c.handlers = append(c.handlers, handler{kind: "evaluator", name: name, call: func(ctx context.Context) error {
			msg := sampleMessage()
			res, err := c.pc.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: sampleAgent, Names: []string{name}, Message: msg,
				State: sampleState(), DidRespond: true, Responses: []*pb.Memory{sampleReply(msg)}, RunId: newID()})
			if err != nil {
				return err
			}
			if o := res.GetOutcomes(); len(o) != 1 || o[0].GetName() != name {
				return problem("it answered for %d evaluators, not for %s alone", len(o), name)
			}
			return nil
		}})
	}
}

func first[T any](list []T) []T { return list[:min(len(list), maxHandlers)] }

// answerProblem is an answer that came but is wrong: a failure of the
// check, not of the call.
type answerProblem struct{ msg string }

func (p answerProblem) Error() string { return p.msg }

func problem(format string, args ...any) error { return answerProblem{fmt.Sprintf(format, args...)} }

// maxAnswer is the most a provider, action or evaluator may answer.
const maxAnswer = 1 << 20

func providerProblem(name string, res *pb.GetProvidersResponse) error {
	rs := res.GetResults()
	if len(rs) != 1 || rs[0].GetName() != name {
		var got []string
		for _, r := range rs {
			got = append(got, r.GetName())
		}
		return problem("it answered for %v, not for %s", got, name)
	}
	if n := len(rs[0].GetText()) + len(rs[0].GetValuesJson()) + len(rs[0].GetDataJson()); n > maxAnswer {
		return problem("its answer is %d bytes; the host cuts answers over 1 MiB", n)
	}
	if bad := contract.CheckJSONFields(rs[0], false); len(bad) > 0 {
		return problem("its %s (the host drops it)", bad[0])
	}
	return nil
}

// checkHandlers calls each provider or evaluator once with sample input.
func (c *checker) checkHandlers(kind string) (Status, string, []string) {
	var details, failed []string
	n := 0
	for _, h := range c.handlers {
		if h.kind != kind {
			continue
		}
		n++
		ok, line := c.callHandler(h)
		details = append(details, line)
		if !ok {
			failed = append(failed, line)
		}
	}
	if n == 0 {
		return Pass, fmt.Sprintf("the plugin declares no %ss", kind), nil
	}
	if len(failed) > 0 {
		return Fail, failed[0], details
	}
	return Pass, fmt.Sprintf("%s answered the sample input, each within %s", count(n, kind), c.o.Timeout), details
}

// callHandler calls one handler, recording its Runtime calls under its
// name, and says how it went.
func (c *checker) callHandler(h handler) (bool, string) {
	ctx, cancel := c.callCtx()
	defer cancel()
	c.rt.setPhase(h.phase())
	defer c.rt.setPhase("")
	start := time.Now()
	err := h.call(ctx)
	took := time.Since(start).Round(time.Millisecond)
	var p answerProblem
	switch {
	case errors.As(err, &p):
		return false, fmt.Sprintf("%s %s answered, but %s", h.kind, h.name, p.msg)
	case status.Code(err) == codes.DeadlineExceeded:
		return false, fmt.Sprintf("%s %s did not answer within %s", h.kind, h.name, c.o.Timeout)
	case err != nil:
		return false, fmt.Sprintf("%s %s failed with %s: a %s that fails says so in its result, not with a gRPC error", h.kind, h.name, c.callErr(err), h.kind)
	}
	calls := ""
	if n := len(c.rt.callsIn(h.phase())); n > 0 {
		calls = ", " + count(n, "Runtime call")
	}
	return true, fmt.Sprintf("%s %s: %s%s", h.kind, h.name, took, calls)
}

// checkActions asks which actions may be offered, then runs each.
func (c *checker) checkActions() (Status, string, []string) {
	var names []string
	for _, a := range first(c.manifest.GetActions()) {
		names = append(names, a.GetName())
	}
	if len(names) == 0 {
		return Pass, "the plugin declares no actions", nil
	}
	ctx, cancel := c.callCtx()
	c.rt.setPhase("ValidateActions")
	res, err := c.pc.ValidateActions(ctx, &pb.ValidateActionsRequest{AgentId: sampleAgent, Names: names, Message: sampleMessage(), State: sampleState()})
	c.rt.setPhase("")
	cancel()
	if err != nil {
		return Fail, "ValidateActions failed: " + c.callErr(err), nil
	}
	for _, v := range res.GetValid() {
		if !slices.Contains(names, v) {
			return Fail, fmt.Sprintf("ValidateActions answered %q, which was not asked about", v), nil
		}
	}
	details := []string{fmt.Sprintf("ValidateActions: %d of %d may be offered for the sample message", len(res.GetValid()), len(names))}
	st, reason, more := c.checkHandlers("action")
	return st, reason, append(details, more...)
}

// checkCancellation cancels each handler that calls the Runtime while its
// Runtime call is held, and expects that call to be cancelled in turn.
func (c *checker) checkCancellation() (Status, string, []string) {
	var details []string
	tried := 0
	for _, h := range c.handlers {
		if len(c.rt.callsIn(h.phase())) == 0 {
			continue
		}
		tried++
		ok, line := c.cancelHandler(h)
		details = append(details, line)
		if !ok {
			return Fail, line, details
		}
	}
	if tried == 0 {
		return Pass, "no provider, action or evaluator called the Runtime, so none was left waiting to be cancelled", nil
	}
	return Pass, fmt.Sprintf("the Runtime calls of %s ended when the host cancelled it", count(tried, "handler")), details
}

func (c *checker) cancelHandler(h handler) (bool, string) {
	hold := c.rt.holdNextCall()
	defer c.rt.stopHolding(hold)
	c.rt.setPhase("cancellation of " + h.phase())
	defer c.rt.setPhase("")
	ctx, cancel := c.callCtx()
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.call(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case method := <-hold.arrived:
		cancelled := time.Now()
		cancel()
		select {
		case <-hold.cancelled:
			return true, fmt.Sprintf("%s: its Runtime call %s was cancelled %s after the host cancelled the %s", h.phase(), shortMethod(method),
				time.Since(cancelled).Round(time.Millisecond), h.kind)
		case <-time.After(cancelGrace):
			return false, fmt.Sprintf("%s went on after the host cancelled it: its Runtime call %s was still waiting %s later (pass the call's context, with its deadline, to the calls the handler makes)",
				h.phase(), shortMethod(method), cancelGrace)
		}
	case err := <-done:
		done <- err
		return true, fmt.Sprintf("%s made no Runtime call this time: nothing to cancel", h.phase())
	case <-ctx.Done():
		return false, fmt.Sprintf("%s made no Runtime call and gave no answer within %s", h.phase(), c.o.Timeout)
	}
}

func shortMethod(full string) string {
	full = strings.TrimPrefix(full, "/")
	svc, name, _ := strings.Cut(full, "/")
	return svc[strings.LastIndexByte(svc, '.')+1:] + "." + name
}

// largeRequest is the size of the large request: a long character.
const largeRequest = 5 << 20

func (c *checker) checkLargeRequest() (Status, string, []string) {
	ctx, cancel := c.callCtx()
	defer cancel()
	ch := characterJSON(sampleAgentName+" Large", c.name, largeRequest)
	_, err := c.configure(ctx, largeAgent, ch)
	defer func() {
		uctx, cancel := c.callCtx()
		defer cancel()
		_, _ = c.pc.Unconfigure(uctx, &pb.UnconfigureRequest{AgentId: largeAgent})
		c.rt.unconfigured(largeAgent)
	}()
	size := fmt.Sprintf("%.1f MiB", float64(len(ch))/(1<<20))
	switch status.Code(err) {
	case codes.OK:
		return Pass, fmt.Sprintf("a Configure of %s (a long character) was accepted", size), nil
	case codes.ResourceExhausted:
		return Fail, fmt.Sprintf("a Configure of %s was refused as too large (%s): set the server's receive and send limits to 64 MiB", size, c.callErr(err)), nil
	case codes.Unavailable, codes.DeadlineExceeded:
		return Fail, fmt.Sprintf("a Configure of %s failed: %s", size, c.callErr(err)), nil
	}
	return Pass, fmt.Sprintf("a Configure of %s reached the plugin, which answered %s", size, c.callErr(err)), nil
}

// checkInvalidInput sends what the host never should, and expects errors.
func (c *checker) checkInvalidInput() (Status, string, []string) {
	garbage := contract.NewFrame([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	calls := []struct {
		what      string
		wantError bool
		call      func(ctx context.Context) error
	}{
		{"Configure without an agent_id", true, func(ctx context.Context) error {
			_, err := c.pc.Configure(ctx, &pb.ConfigureRequest{CharacterJson: characterJSON(sampleAgentName, c.name, 0)})
			return err
		}},
		{"Configure with a character that is not JSON", false, func(ctx context.Context) error {
			_, err := c.configure(ctx, otherAgent, []byte("{not json"))
			_, _ = c.pc.Unconfigure(ctx, &pb.UnconfigureRequest{AgentId: otherAgent})
			c.rt.unconfigured(otherAgent)
			return err
		}},
		{"GetProviders for an agent that was never configured", true, func(ctx context.Context) error {
			_, err := c.pc.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: strangerAgent, Names: []string{"NO_SUCH_PROVIDER"}, Message: sampleMessage()})
			return err
		}},
		{"RunAction of an action it does not have", true, func(ctx context.Context) error {
			_, err := c.pc.RunAction(ctx, &pb.RunActionRequest{AgentId: sampleAgent, Name: "NO_SUCH_ACTION_FROM_PLUGINS_CHECK", Message: sampleMessage()})
			return err
		}},
		{"bytes that are not a protobuf message", true, func(ctx context.Context) error {
			return c.probe.Conn.Invoke(ctx, pb.Plugin_GetProviders_FullMethodName, garbage, &contract.Frame{}, grpc.ForceCodecV2(contract.Codec{}))
		}},
	}
	var details []string
	for _, k := range calls {
		ctx, cancel := c.callCtx()
		err := k.call(ctx)
		cancel()
		if dead := c.alive(); dead != nil {
			return Fail, fmt.Sprintf("%s crashed the plugin: %s", k.what, dead), details
		}
		switch {
		case status.Code(err) == codes.DeadlineExceeded:
			return Fail, fmt.Sprintf("%s was not answered within %s", k.what, c.o.Timeout), details
		case err == nil && k.wantError:
			return Fail, fmt.Sprintf("%s was answered as if it were valid: answer it with an error (INVALID_ARGUMENT, FAILED_PRECONDITION or NOT_FOUND)", k.what), details
		case err == nil:
			details = append(details, k.what+": accepted")
		default:
			details = append(details, fmt.Sprintf("%s: %s", k.what, c.callErr(err)))
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, probeTimeout)
	defer cancel()
	res, err := healthpb.NewHealthClient(c.probe.Conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
	if err == nil && res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return Fail, fmt.Sprintf("after the invalid requests its health is %s", res.GetStatus()), details
	}
	return Pass, fmt.Sprintf("%s answered with errors or accepted; the plugin lives on", count(len(calls), "invalid request")), details
}

func (c *checker) checkUnconfigure() (Status, string, []string) {
	ctx, cancel := c.callCtx()
	defer cancel()
	c.rt.setPhase("unconfigure")
	defer c.rt.setPhase("")
	if _, err := c.pc.Unconfigure(ctx, &pb.UnconfigureRequest{AgentId: sampleAgent}); err != nil {
		return Fail, "Unconfigure failed: " + c.callErr(err), nil
	}
	c.rt.unconfigured(sampleAgent)
	return Pass, "the sample agent is unconfigured", nil
}

// checkRuntime looks at every Runtime call the plugin made.
func (c *checker) checkRuntime() (Status, string, []string) {
	calls := c.rt.allCalls()
	if len(calls) == 0 {
		return Pass, "the plugin made no Runtime call: nothing to check", nil
	}
	perMethod := map[string]int{}
	for _, call := range calls {
		if !call.Token {
			where := call.Phase
			if where == "" {
				where = "between calls"
			}
			return Fail, fmt.Sprintf("%s came without the runtime token (during %s): present InitRequest.runtime_token as \"authorization: Bearer <token>\" on every call",
				shortMethod(call.Method), where), nil
		}
		perMethod[shortMethod(call.Method)]++
	}
	var details []string
	for m, n := range perMethod {
		details = append(details, fmt.Sprintf("%s × %d", m, n))
	}
	sort.Strings(details)
	return Pass, fmt.Sprintf("%s, each with the plugin's runtime token", count(len(calls), "Runtime call")), details
}

// checkShutdown stops the plugin as the host does: Plugin.Shutdown, then
// go-plugin's controller.
func (c *checker) checkShutdown() (Status, string, []string) {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	if _, err := c.pc.Shutdown(ctx, &pb.ShutdownRequest{}); err != nil {
		return Fail, "Plugin.Shutdown failed: " + c.callErr(err), nil
	}
	c.stopping = true
	start := time.Now()
	err := c.probe.Conn.Invoke(ctx, "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{})
	if status.Code(err) == codes.Unimplemented {
		return Fail, "plugin.GRPCController/Shutdown is not served: the host then waits two seconds at every stop and kills the plugin", nil
	}
	select {
	case <-c.probe.Exited():
	case <-time.After(exitWait):
		return Fail, fmt.Sprintf("the plugin was still running %s after GRPCController.Shutdown: stop the server and exit", exitWait), nil
	}
	took := time.Since(start).Round(time.Millisecond)
	if code, _ := c.probe.ExitCode(); code != 0 {
		return Fail, fmt.Sprintf("the plugin exited with status %d after Shutdown; exit with 0", code), nil
	}
	if addr := c.handshakeField(3); addr != "" {
		if _, err := os.Stat(addr); err == nil {
			return Fail, fmt.Sprintf("the plugin exited but left its socket %s: remove it when you exit", addr), nil
		}
	}
	return Pass, fmt.Sprintf("the plugin exited with status 0, %s after GRPCController.Shutdown, and removed its socket", took), nil
}

// checkStdout: after the handshake line, nothing.
func (c *checker) checkStdout() (Status, string, []string) {
	out := c.stdout.String()
	if out == "" && c.probe == nil && c.broken != "" {
		return Skip, "not run: " + c.broken, nil
	}
	if out == "" {
		return Fail, "the plugin wrote nothing on stdout, not even a handshake line", nil
	}
	_, rest, _ := strings.Cut(out, "\n")
	if strings.TrimSpace(rest) != "" || c.stdout.Dropped() > 0 {
		return Fail, fmt.Sprintf("after its handshake the plugin wrote %d bytes on stdout, starting %q: print to stderr once the handshake is written",
			len(rest)+c.stdout.Dropped(), clip(strings.TrimSpace(rest), 80)), nil
	}
	return Pass, "only the handshake line", nil
}

// hclogTime is the layout of @timestamp.
const hclogTime = "2006-01-02T15:04:05.000000Z07:00"

// refusedHandshake is the line gRPC's C core (Python's grpcio, among
// others) writes when it turns a TLS handshake away: the mtls check's
// knocks provoke it, the daemon never does.
var refusedHandshake = regexp.MustCompile(`^[EWI]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w./-]+:\d+\] +Handshake failed`)

// knocks is how many connections the mtls check makes that the plugin
// must turn away.
const knocks = 3

// checkStderr: every line an hclog-shaped JSON object, but for the lines
// the gRPC library writes about the handshakes the mtls check provoked.
func (c *checker) checkStderr() (Status, string, []string) {
	all := c.stderr.lines()
	var bad, notes []string
	n, provoked := 0, 0
	for i, line := range all {
		if strings.TrimSpace(line) == "" {
			continue
		}
		n++
		p := logLineProblem(line)
		switch {
		case p == "":
		case refusedHandshake.MatchString(line) && provoked < knocks:
			provoked++
		default:
			bad = append(bad, fmt.Sprintf("line %d: %s: %s", i+1, p, clip(line, 120)))
		}
	}
	if provoked > 0 {
		notes = append(notes, fmt.Sprintf("%s of the gRPC library about the TLS handshakes the mtls check made it refuse: not JSON, and not written in the daemon", count(provoked, "line")))
	}
	switch {
	case n == 0:
		return Pass, "the plugin wrote nothing on stderr", nil
	case len(bad) > 0:
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("… and %d more", len(bad)-5))
		}
		return Fail, fmt.Sprintf("%s (the host logs such lines as plain text at debug level)", bad[0]), append(bad, notes...)
	}
	return Pass, count(n-provoked, "line") + ", each an hclog JSON object", notes
}

func logLineProblem(line string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return "not a JSON object"
	}
	level, ok := m["@level"].(string)
	switch level {
	case "trace", "debug", "info", "warn", "error":
	default:
		if !ok {
			return "@level is not a string"
		}
		return fmt.Sprintf("@level %q is not trace, debug, info, warn or error", level)
	}
	if _, ok := m["@message"].(string); !ok {
		return "@message is not a string"
	}
	ts, ok := m["@timestamp"].(string)
	if !ok {
		return "@timestamp is not a string"
	}
	if _, err := time.Parse(hclogTime, ts); err != nil || len(ts) < len("2006-01-02T15:04:05.000000Z") {
		return fmt.Sprintf("@timestamp %q is not in the layout %s", ts, hclogTime)
	}
	return ""
}
