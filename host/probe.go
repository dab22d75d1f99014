package host

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
)

// A probe is one process of a plugin started exactly as the daemon starts
// it — confined, in its own folders, with the daemon's environment
// allow-list, through the daemon's go-plugin client with its handshake,
// mutual TLS and message limits — and then handed to the caller instead of
// being described, initialized and supervised. `agenthost plugins check`
// holds plugins to the contract with it.

// ProbeOptions say where a probe's output goes.
type ProbeOptions struct {
	// Stdout gets everything the process writes on its stdout, the
	// handshake line first, as it was written.
	Stdout io.Writer
	// Stderr gets its stderr, line by line.
	Stderr io.Writer
}

// Probe is one plugin process started by StartProbe.
type Probe struct {
	// Conn is the daemon's connection to the process (mutual TLS).
	Conn *grpc.ClientConn
	// ServerCert is the certificate the host made for the process to
	// serve with; a process that made its own names it in its handshake.
	ServerCert *x509.Certificate
	// PID is the process id.
	PID int
	// Addr is the socket the process said it listens on; SocketDir the
	// folder it was told to make it in (PLUGIN_UNIX_SOCKET_DIR).
	Addr, SocketDir string
	// DataDir is the plugin's own folder, to hand it in Init.
	DataDir string
	// Negotiated is the app protocol version the handshake settled on.
	Negotiated int

	client *goplugin.Client
	run    *probeRunner
}

// Exited is closed when the process has exited.
func (pr *Probe) Exited() <-chan struct{} { return pr.run.exited }

// ExitCode is the process's exit status once it exited (-1 when a signal
// ended it), and false before.
func (pr *Probe) ExitCode() (int, bool) {
	select {
	case <-pr.run.exited:
		return pr.run.code, true
	default:
		return 0, false
	}
}

// Kill ends the process if it still runs, and removes its socket folder.
func (pr *Probe) Kill() {
	pr.run.kill()
	pr.client.Kill()
}

// ProbeCommand is the command the daemon starts the named plugin with,
// before go-plugin adds the handshake's variables: no magic cookie, no
// protocol versions, no certificate. Its output is the caller's to set.
func (m *Manager) ProbeCommand(name string) (*exec.Cmd, error) {
	p, dataDir, tmpDir, err := m.probed(name)
	if err != nil {
		return nil, err
	}
	return m.command(context.Background(), p, p.Spec(), dataDir, tmpDir, ""), nil
}

// probed finds a plugin to probe and makes its folders afresh.
func (m *Manager) probed(name string) (p *PluginProcess, dataDir, tmpDir string, err error) {
	if p = m.plugins[name]; p == nil {
		return nil, "", "", fmt.Errorf("no plugin %s", name)
	}
	dataDir, tmpDir, err = m.pluginDirs(name, "")
	return p, dataDir, tmpDir, err
}

// StartProbe starts one process of the named plugin and completes
// go-plugin's handshake with it. A failed handshake is an error that says
// why, as the daemon would say it.
func (m *Manager) StartProbe(name string, o ProbeOptions) (*Probe, error) {
	p, dataDir, tmpDir, err := m.probed(name)
	if err != nil {
		return nil, err
	}
	cmd := m.command(context.Background(), p, p.Spec(), dataDir, tmpDir, "")
	budget := newLogBudget(p.log)
	stderr := newStderrLog(p.log, budget)
	cfg := p.clientConfig(cmd, stderr, budget, nil)
	serverCert, release, err := contract.HostTLS(cfg, cmd)
	if err != nil {
		return nil, fmt.Errorf("start plugin %s: %w", name, err)
	}
	defer release()
	cfg.Stderr = io.MultiWriter(stderr, o.Stderr)
	cfg.SyncStdout, cfg.SyncStderr = io.Discard, io.Discard
	// go-plugin makes the socket folder inside the plugin's temporary
	// folder, which the plugin may write to, and names it in
	// PLUGIN_UNIX_SOCKET_DIR.
	cfg.UnixSocketConfig = &goplugin.UnixSocketConfig{TempDir: tmpDir}
	pr := &Probe{DataDir: dataDir, Negotiated: -1, ServerCert: serverCert}
	run := &probeRunner{stdout: o.Stdout, exited: make(chan struct{}), cmd: cmd}
	// With a RunnerFunc go-plugin builds an empty command of its own and
	// puts the handshake's variables in it; they go to the real one.
	cfg.Cmd = nil
	cfg.RunnerFunc = func(_ hclog.Logger, spec *exec.Cmd, socketDir string) (runner.Runner, error) {
		cmd.Env = append(cmd.Env, spec.Env...)
		cmd.Stdin = spec.Stdin
		pr.SocketDir = socketDir
		return run, nil
	}
	pr.run = run
	client := goplugin.NewClient(cfg)
	pr.client = client
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, p.handshakeErr(err, stderr)
	}
	stderr.handshaken()
	raw, err := rpc.Dispense(contract.PluginSetName)
	if err != nil {
		pr.Kill()
		return nil, fmt.Errorf("connect to plugin %s: %w", name, err)
	}
	pr.Conn = raw.(*dispensed).conn
	pr.PID = run.pid()
	pr.Negotiated = client.NegotiatedVersion()
	if rc := client.ReattachConfig(); rc != nil && rc.Addr != nil {
		pr.Addr = rc.Addr.String()
	}
	return pr, nil
}

// probeRunner runs a probe's process for go-plugin, and copies what it
// writes on stdout to the caller as go-plugin reads it.
type probeRunner struct {
	cmd    *exec.Cmd
	stdout io.Writer
	out    io.ReadCloser
	errOut io.ReadCloser

	exited chan struct{}
	code   int
	once   sync.Once
}

var _ runner.Runner = (*probeRunner)(nil)

func (r *probeRunner) Start(context.Context) error {
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	errOut, err := r.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.out, r.errOut = out, errOut
	if r.stdout != nil {
		r.out = readCloser{io.TeeReader(out, r.stdout), out}
	}
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Wait is called once, by go-plugin, after it read stdout and stderr to
// their ends.
func (r *probeRunner) Wait(context.Context) error {
	err := r.cmd.Wait()
	r.code = 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code = -1
	}
	r.once.Do(func() { close(r.exited) })
	return err
}

func (r *probeRunner) Kill(context.Context) error {
	r.kill()
	return nil
}

func (r *probeRunner) kill() {
	if pid := r.pid(); pid > 0 {
		select {
		case <-r.exited:
		default:
			killGroup(pid)
			_ = r.cmd.Process.Kill()
		}
	}
}

func (r *probeRunner) pid() int {
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

func (r *probeRunner) Stdout() io.ReadCloser { return r.out }
func (r *probeRunner) Stderr() io.ReadCloser { return r.errOut }
func (r *probeRunner) Name() string          { return r.cmd.Path }
func (r *probeRunner) ID() string            { return strconv.Itoa(r.pid()) }

func (r *probeRunner) Diagnose(context.Context) string { return "" }

func (r *probeRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *probeRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}
