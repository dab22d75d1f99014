package plugintest

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// StartExecutable runs the plugin executable at path as the daemon does —
// through go-plugin's client, with the magic cookie, the protocol version
// and the daemon's mutual TLS — and then does what [Start] does: serves a
// [Runtime] for it, hands over its address in Init and returns a Client.
// It tests a plugin written in any language, or a Go plugin as the binary
// it ships as. The plugin's log lines go to t.Log (and to [WithLog]'s
// writer); the process is stopped when the test ends, as the daemon stops
// it.
func StartExecutable(t testing.TB, path string, opts ...Option) *Client {
	t.Helper()
	cfg := newConfig(t, opts)
	logs := &testLog{t: t, also: cfg.log}
	t.Cleanup(logs.close)
	name := strings.TrimPrefix(filepath.Base(path), "agenthost-plugin-")
	cmd := exec.Command(path)
	cmd.Env = append(cmd.Environ(), cfg.env...)
	pcfg := &goplugin.ClientConfig{
		HandshakeConfig:  contract.Handshake(),
		Plugins:          goplugin.PluginSet{contract.PluginSetName: connPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		StartTimeout:     time.Minute,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(contract.MaxMessageSize), grpc.MaxCallSendMsgSize(contract.MaxMessageSize))},
		Logger: hclog.New(&hclog.LoggerOptions{Name: "host", Output: logs, Level: hclog.Debug}),
	}
	_, release, err := contract.HostTLS(pcfg, cmd)
	if err != nil {
		t.Fatalf("plugintest: start %s: %v", path, err)
	}
	pc := goplugin.NewClient(pcfg)
	t.Cleanup(pc.Kill)
	rpc, err := pc.Client()
	release()
	if err != nil {
		t.Fatalf("plugintest: start %s: %v", path, err)
	}
	raw, err := rpc.Dispense(contract.PluginSetName)
	if err != nil {
		t.Fatalf("plugintest: dispense %s: %v", path, err)
	}
	c := attach(t, cfg, raw.(*grpc.ClientConn), name, logs, filepath.Join(socketDir(t), "r.sock"))
	// Runs before attach's cleanup, which closes the connection: the
	// daemon's order, Plugin.Shutdown and then the controller's.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Shutdown(ctx)
		pc.Kill()
	})
	c.proc = &Process{client: pc, rpc: rpc}
	if rc := pc.ReattachConfig(); rc != nil {
		c.proc.Pid, c.proc.Addr = rc.Pid, rc.Addr
	}
	return c
}

// WithLog also writes the host's log of the plugin (the plugin's own log
// lines among them) to w.
func WithLog(w io.Writer) Option { return func(c *config) { c.log = w } }

// WithEnv adds variables ("KEY=value") to the environment StartExecutable
// starts the plugin with.
func WithEnv(kv ...string) Option { return func(c *config) { c.env = append(c.env, kv...) } }

// Process is a plugin process [StartExecutable] started.
type Process struct {
	// Pid is the plugin's process id.
	Pid int
	// Addr is where the plugin serves, from its handshake line.
	Addr net.Addr

	client *goplugin.Client
	rpc    goplugin.ClientProtocol
}

// Process returns the plugin process of a Client from [StartExecutable],
// or nil for one from [Start].
func (c *Client) Process() *Process { return c.proc }

// Ping asks the plugin's health service, as the daemon's supervision does.
func (p *Process) Ping() error { return p.rpc.Ping() }

// Kill stops the plugin as the daemon does — the controller's Shutdown,
// then SIGKILL if it has not exited two seconds later — and returns once
// it is gone.
func (p *Process) Kill() { p.client.Kill() }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool { return p.client.Exited() }

// connPlugin hands the test the raw connection to the plugin.
type connPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (connPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("plugintest: the host side only")
}

func (connPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}
