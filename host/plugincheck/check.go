package plugincheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/syncbuf"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Options configure a check.
type Options struct {
	// Self is the agenthost executable, which confines plugins as in the
	// daemon (`agenthost __confine`); empty runs the plugin unconfined.
	Self string
	// Env is the environment the daemon would read: the plugins' limits
	// and confinement settings (AGENTHOST_PLUGIN_*).
	Env map[string]string
	// Timeout bounds each call made to the plugin; 10 seconds when zero.
	Timeout time.Duration
	// Settings are given to the plugin in Configure, over the defaults its
	// manifest declares (an API key to try it with, say).
	Settings map[string]string
	// Version is the host version told to the plugin.
	Version string
	// Log gets the host's log lines about the plugin (its stderr,
	// re-emitted as the daemon would); nil discards them.
	Log hclog.Logger
}

// DefaultTimeout bounds each call made to the plugin when Options.Timeout
// is zero.
const DefaultTimeout = 10 * time.Second

// How long the check waits for a process to act on its own.
const (
	// exitWait: for a plugin started without the cookie to exit, and for
	// one told to shut down.
	exitWait = 10 * time.Second
	// cancelGrace: for a held Runtime call to be cancelled after the
	// handler's call was.
	cancelGrace = 2 * time.Second
	// probeTimeout: for a connection the plugin should refuse.
	probeTimeout = 3 * time.Second
)

// Run checks the plugin executable at path and reports every check. The
// error is for what keeps the check from starting (no such file, a file
// not named agenthost-plugin-NAME); a plugin that fails checks is a report
// that did not pass.
func Run(ctx context.Context, path string, o Options) (*Report, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(abs)
	switch {
	case err != nil:
		return nil, fmt.Errorf("check plugin %s: %w", path, err)
	case info.IsDir():
		return nil, fmt.Errorf("check plugin %s: it is a folder; give the executable agenthost-plugin-NAME in it", path)
	case info.Mode()&0o111 == 0:
		return nil, fmt.Errorf("check plugin %s: it is not executable (chmod +x it)", path)
	}
	name, ok := host.PluginName(abs)
	if !ok || name == "" {
		return nil, fmt.Errorf("check plugin %s: a plugin executable is named %sNAME (the daemon finds it by that name)", path, host.ExecPrefix)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	// Unix socket paths are short: the check's own folder is in the
	// system's temporary folder, whatever the caller's TMPDIR.
	dir, err := os.MkdirTemp("", "agenthost-check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rt, err := startRuntime(dir)
	if err != nil {
		return nil, err
	}
	defer rt.stop()
	mgr := host.NewManager(host.ManagerConfig{Version: o.Version, Self: o.Self, Env: o.Env, DataDir: filepath.Join(dir, "data")},
		[]host.PluginSpec{{Name: name, Path: abs}}, o.Log)
	defer mgr.Stop()
	c := &checker{o: o, ctx: ctx, name: name, mgr: mgr, rt: rt, stderr: &lines{},
		report: &Report{Path: abs, Plugin: name, Confinement: mgr.Plugin(name).Confinement()}}
	c.run()
	c.report.Passed = len(c.report.Failed()) == 0
	return c.report, nil
}

// checker runs the checks of one plugin, in order.
type checker struct {
	o    Options
	ctx  context.Context
	name string
	mgr  *host.Manager
	rt   *runtime

	probe  *host.Probe
	pc     pb.PluginClient
	stdout capped
	stderr *lines
	// manifest is what Describe answered.
	manifest *pb.Manifest
	// broken says why the checks that talk to the plugin cannot run any
	// more ("" while they can).
	broken string
	// stopping: the shutdown check ended the process on purpose.
	stopping bool
	// handlers are the plugin's providers, actions and evaluators, each
	// with the call that runs it on sample input.
	handlers []handler
	report   *Report
}

// handler is one provider, action or evaluator and how to call it.
type handler struct {
	kind, name string
	call       func(ctx context.Context) error
}

func (h handler) phase() string { return h.kind + " " + h.name }

func (c *checker) run() {
	defer func() {
		if c.probe != nil {
			c.probe.Kill()
		}
	}()
	c.step("cookie", false, c.checkCookie)
	c.step("handshake", false, c.checkHandshake)
	c.step("mtls", true, c.checkMTLS)
	c.step("health", true, c.checkHealth)
	c.step("describe", true, c.checkDescribe)
	c.step("init", true, c.checkInit)
	c.step("configure", true, c.checkConfigure)
	c.step("providers", true, func() (Status, string, []string) { return c.checkHandlers("provider") })
	c.step("actions", true, c.checkActions)
	c.step("evaluators", true, func() (Status, string, []string) { return c.checkHandlers("evaluator") })
	c.step("cancellation", true, c.checkCancellation)
	c.step("large-request", true, c.checkLargeRequest)
	c.step("invalid-input", true, c.checkInvalidInput)
	c.step("unconfigure", true, c.checkUnconfigure)
	c.step("runtime", true, c.checkRuntime)
	c.step("shutdown", true, c.checkShutdown)
	if c.probe != nil {
		// What it wrote is complete once it is gone.
		c.probe.Kill()
		<-c.probe.Exited()
	}
	c.step("stdout", false, c.checkStdout)
	c.step("stderr", false, c.checkStderr)
}

// step runs one check and records it. A check that needs the plugin's
// conversation is skipped once it is broken, and fails when the plugin
// died during it.
func (c *checker) step(name string, needsPlugin bool, f func() (Status, string, []string)) {
	if needsPlugin && c.broken != "" {
		c.report.Checks = append(c.report.Checks, Result{Name: name, Status: Skip, Reason: "not run: " + c.broken})
		return
	}
	start := time.Now()
	st, reason, details := f()
	if needsPlugin && !c.stopping {
		if err := c.alive(); err != nil {
			st, reason = Fail, err.Error()
			c.broken = "the plugin exited"
		}
	}
	c.report.Checks = append(c.report.Checks, Result{Name: name, Status: st, DurationMS: float64(time.Since(start).Microseconds()) / 1000,
		Reason: reason, Details: details})
}

// alive says how the plugin died, if it did.
func (c *checker) alive() error {
	if c.probe == nil {
		return nil
	}
	code, exited := c.probe.ExitCode()
	if !exited {
		return nil
	}
	msg := fmt.Sprintf("the plugin exited (status %d) during this check", code)
	if last := c.stderr.last(3); len(last) > 0 {
		msg += "; its stderr ends with: " + strings.Join(last, " | ")
	}
	return errors.New(msg)
}

// callCtx bounds one call to the plugin.
func (c *checker) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.o.Timeout)
}

// callErr says how a call to the plugin failed, in words for the report.
func (c *checker) callErr(err error) string {
	if err == nil {
		return ""
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Sprintf("no answer within %s", c.o.Timeout)
	case codes.Unavailable:
		if c.alive() != nil {
			return "the plugin crashed"
		}
	}
	return fmt.Sprintf("%s: %s", st.Code(), st.Message())
}

// checkCookie starts the plugin as the daemon would but without the magic
// cookie, as someone running it by hand would.
func (c *checker) checkCookie() (Status, string, []string) {
	cmd, err := c.mgr.ProbeCommand(c.name)
	if err != nil {
		return Fail, err.Error(), nil
	}
	var out, errOut syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return Fail, "it could not be started: " + err.Error(), nil
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(exitWait):
		killGroup(cmd.Process.Pid)
		<-done
		return Fail, fmt.Sprintf("started without the magic cookie, it was still running after %s: check %s and exit with status 1, saying why on stderr", exitWait, contract.MagicCookieKey), nil
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return Fail, "it could not be run: " + err.Error(), nil
	}
	code := cmd.ProcessState.ExitCode()
	said := firstLine(errOut.String())
	switch {
	case out.String() != "":
		return Fail, fmt.Sprintf("started without the magic cookie, it wrote on stdout: %q; write nothing there, exit with status 1", clip(out.String(), 100)), nil
	case code == 0:
		return Fail, "started without the magic cookie, it exited with status 0: exit with status 1, saying why on stderr", nil
	case code < 0:
		return Fail, fmt.Sprintf("started without the magic cookie, it died of a signal (%s)", cmd.ProcessState), nil
	case said == "":
		return Fail, fmt.Sprintf("started without the magic cookie, it exited with status %d but said nothing on stderr: say that it is a plugin, started by agenthost", code), nil
	}
	return Pass, fmt.Sprintf("started without the magic cookie, it exited with status %d, saying %q", code, clip(said, 100)), nil
}

// checkHandshake starts the plugin with the cookie, through the daemon's
// go-plugin client, and reads its handshake line.
func (c *checker) checkHandshake() (Status, string, []string) {
	probe, err := c.mgr.StartProbe(c.name, host.ProbeOptions{Stdout: &c.stdout, Stderr: c.stderr})
	line := firstLine(c.stdout.String())
	socketDir := ""
	if probe != nil {
		socketDir = probe.SocketDir
	}
	problem := handshakeProblem(line, socketDir)
	if err != nil {
		c.broken = "there was no handshake"
		if problem != "" && line != "" {
			return Fail, problem, []string{"the daemon's error: " + err.Error()}
		}
		return Fail, err.Error(), nil
	}
	c.probe, c.pc = probe, pb.NewPluginClient(probe.Conn)
	if problem != "" {
		return Fail, problem, []string{"line: " + clip(line, 200)}
	}
	return Pass, fmt.Sprintf("app protocol %d as offered, a unix socket in PLUGIN_UNIX_SOCKET_DIR, gRPC", probe.Negotiated),
		[]string{"line: " + clip(line, 120)}
}

// offered is what the daemon offers in PLUGIN_PROTOCOL_VERSIONS.
var offered = fmt.Sprint(contract.ProtocolVersion)

// handshakeProblem says what is wrong with a handshake line, or "".
func handshakeProblem(line, socketDir string) string {
	if line == "" {
		return "it wrote no handshake line on stdout"
	}
	parts := strings.Split(line, "|")
	switch {
	case len(parts) < 6:
		return fmt.Sprintf("the handshake line %q has %d fields; it needs 6: 1|%s|unix|SOCKET|grpc|CERTIFICATE", clip(line, 80), len(parts), offered)
	case parts[0] != "1":
		return fmt.Sprintf("the handshake line starts with core protocol %q; it must be 1", parts[0])
	case parts[1] != offered:
		return fmt.Sprintf("the plugin chose app protocol %s, but the host offered %s (PLUGIN_PROTOCOL_VERSIONS)", parts[1], offered)
	case parts[2] != "unix":
		return fmt.Sprintf("the plugin listens on %q; on this system it must listen on a unix socket", parts[2])
	case parts[4] != "grpc":
		return fmt.Sprintf("the handshake line names protocol %q; it must be grpc", parts[4])
	case len(parts) > 6:
		return fmt.Sprintf("the handshake line has %d fields: the seventh (broker multiplexing) is only for a host that sets PLUGIN_MULTIPLEX_GRPC, which agenthost does not", len(parts))
	case socketDir != "" && filepath.Dir(parts[3]) != filepath.Clean(socketDir):
		return fmt.Sprintf("its socket %s is not in PLUGIN_UNIX_SOCKET_DIR (%s), the folder the host gives it and cleans", parts[3], socketDir)
	}
	return ""
}

// handshakeField returns field i of the handshake line, or "".
func (c *checker) handshakeField(i int) string {
	parts := strings.Split(firstLine(c.stdout.String()), "|")
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// A plugin under check is not trusted: what it writes is kept up to a
// bound, and what is over it only counted.
const (
	maxStdout    = 64 << 10
	maxLines     = 10000
	maxLineBytes = 64 << 10
)

// capped keeps the first maxStdout bytes written to it.
type capped struct {
	mu      sync.Mutex
	b       []byte
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := min(len(p), maxStdout-len(c.b))
	c.b = append(c.b, p[:keep]...)
	c.dropped += len(p) - keep
	return len(p), nil
}

// Dropped counts the bytes over the bound.
func (c *capped) Dropped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}

// lines collects what the plugin writes on stderr, line by line: the
// first maxLines lines, each cut at maxLineBytes.
type lines struct {
	mu      sync.Mutex
	partial []byte
	all     []string
	dropped int
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p[:min(len(p), maxLineBytes-len(l.partial))]...)
			break
		}
		line := append(l.partial, p[:min(i, maxLineBytes-len(l.partial))]...)
		if len(l.all) < maxLines {
			l.all = append(l.all, string(line))
		} else {
			l.dropped++
		}
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (l *lines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.all...)
	if len(l.partial) > 0 {
		out = append(out, string(l.partial))
	}
	return out
}

// last returns the last n non-empty lines.
func (l *lines) last(n int) []string {
	var out []string
	all := l.lines()
	for i := len(all) - 1; i >= 0 && len(out) < n; i-- {
		if t := strings.TrimSpace(all[i]); t != "" {
			out = append([]string{clip(t, 200)}, out...)
		}
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
