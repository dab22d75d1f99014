package sdk

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/memtrim"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Serve runs p as a plugin process and returns when the host is done with
// it. It is the one call in a plugin's main. A plugin started by hand (not
// by agenthost) prints a short explanation and exits with status 1.
func Serve(p Plugin) {
	log := p.Logger
	if log == nil {
		log = NewLogger(p.Name)
	}
	if err := p.validate(); err != nil {
		log.Error("invalid plugin definition", "error", err)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A plugin process gives the garbage of a burst of calls back once
	// they stop, rather than holding it until the runtime's next
	// collection, minutes later.
	memtrim.Start()
	srv := newPluginServer(&p, log)
	cfg := &goplugin.ServeConfig{
		HandshakeConfig: contract.Handshake(),
		VersionedPlugins: map[int]goplugin.PluginSet{
			contract.ProtocolVersion: {contract.PluginSetName: &grpcPlugin{srv: srv}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, serverOptions(srv)...)...)
		},
		Logger: log.Named("go-plugin").ResetNamed("go-plugin"),
	}
	if os.Getenv(contract.DebugEnv) == "1" {
		os.Exit(serveDebug(p.Name, cfg))
	}
	// Serve with the certificate the host made for this process, rather
	// than have go-plugin make a P-521 one (see contract.HostTLSFDEnv).
	// Without it, go-plugin's AutoMTLS still works with any host.
	switch tlsCfg, err := contract.PluginTLS(); {
	case err != nil:
		log.Warn("the host's TLS certificate is unusable; making one", "error", err)
	case tlsCfg != nil:
		cfg.TLSProvider = func() (*tls.Config, error) { return tlsCfg, nil }
	}
	go watchParent(log)
	goplugin.Serve(cfg)
}

// serveDebug serves a plugin its author started by hand (under a debugger,
// say) for one daemon that attaches to it: go-plugin's test mode serves
// without the handshake, the reattach line on stderr says where, and the
// plugin exits when that daemon is done with it or on Ctrl-C.
func serveDebug(name string, cfg *goplugin.ServeConfig) int {
	// The socket goes in a folder of this user's alone.
	dir, err := os.MkdirTemp("", "agenthost-debug-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agenthost plugin debug mode:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Setenv("PLUGIN_UNIX_SOCKET_DIR", dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	attach := make(chan *goplugin.ReattachConfig, 1)
	closed := make(chan struct{})
	cfg.Test = &goplugin.ServeTestConfig{Context: ctx, ReattachConfigCh: attach, CloseCh: closed}
	go goplugin.Serve(cfg)
	select {
	case rc := <-attach:
		line := contract.AttachLine(name, contract.Reattach{Network: rc.Addr.Network(), Address: rc.Addr.String(), Pid: rc.Pid, Protocol: rc.ProtocolVersion})
		fmt.Fprintf(os.Stderr, "agenthost plugin %s serves in debug mode (pid %d); have a daemon use it with\n\n"+
			"  agenthost start --attach '%s'\n\nor %s='%s' in its environment. The plugin exits when that daemon is done with it.\n",
			name, rc.Pid, line, contract.AttachEnv, line)
	case <-closed:
		return 1
	}
	<-closed
	return 0
}

// newGRPCServer returns a gRPC server with p's services registered and the
// SDK's limits and panic recovery in place. Serve uses it through go-plugin;
// package plugintest uses it directly (through sdk/internal/wire).
func newGRPCServer(p Plugin, log hclog.Logger, opts ...grpc.ServerOption) (*grpc.Server, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	srv := newPluginServer(&p, log)
	s := grpc.NewServer(append(opts, serverOptions(srv)...)...)
	srv.register(s)
	return s, nil
}

// NewLogger returns the logger a plugin should use: JSON lines on stderr,
// which the host parses and re-emits under the plugin's name. The level
// comes from AGENTHOST_LOG_LEVEL (trace, debug, info, warn, error).
func NewLogger(name string) hclog.Logger {
	level := hclog.LevelFromString(os.Getenv("AGENTHOST_LOG_LEVEL"))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	// The output is fixed now: go-plugin swaps os.Stderr for a pipe once
	// Serve starts, and the host reads the real stderr.
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: os.Stderr, JSONFormat: true, Level: level})
}

func serverOptions(srv *pluginServer) []grpc.ServerOption {
	return append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(contract.MaxMessageSize),
		grpc.MaxSendMsgSize(contract.MaxMessageSize),
		grpc.ChainUnaryInterceptor(srv.stoppable, recoverUnary(srv.log)),
		grpc.NumStreamWorkers(contract.StreamWorkers()),
	}, contract.ServerWindow()...)
}

// stoppable cancels a call when the host asks the plugin to shut down, so
// that no handler outlives the process's purpose.
func (s *pluginServer) stoppable(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !strings.HasSuffix(info.FullMethod, "/Check") {
		memtrim.Wake()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// AfterFunc costs no goroutine until the plugin is stopped.
	stop := context.AfterFunc(s.stopCtx, cancel)
	defer stop()
	return h(ctx, req)
}

func (s *pluginServer) register(g *grpc.Server) {
	pb.RegisterPluginServer(g, s)
	if s.p.database != nil {
		s.p.database(g)
	}
}

// grpcPlugin adapts the shim to go-plugin. Only the server half is used in a
// plugin process; the host has its own client half.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	srv *pluginServer
}

func (g *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	g.srv.register(s)
	return nil
}

func (g *grpcPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("agenthost plugins are served, not dispensed, by the SDK")
}

// watchParent exits when the host is gone. go-plugin has no parent-death
// signal of its own, and the host may have been killed with SIGKILL.
func watchParent(log hclog.Logger) {
	start := os.Getppid()
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != start {
			log.Warn("host process is gone; exiting", "parent", start)
			os.Exit(3)
		}
	}
}

// validate catches definition mistakes at start rather than at the first
// message.
func (p *Plugin) validate() error {
	if strings.TrimSpace(p.Name) == "" {
		return fmt.Errorf("plugin definition: Name is empty")
	}
	if err := validateSettings(p); err != nil {
		return err
	}
	seen := map[string]string{}
	check := func(kind, name string) error {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("plugin %s: a %s has an empty name", p.Name, kind)
		}
		key := kind + "/" + name
		if _, dup := seen[key]; dup {
			return fmt.Errorf("plugin %s: %s %q is defined twice", p.Name, kind, name)
		}
		seen[key] = kind
		return nil
	}
	for _, a := range p.Actions {
		if err := check("action", a.Name); err != nil {
			return err
		}
		if a.Handler == nil {
			return fmt.Errorf("plugin %s: action %s has no Handler", p.Name, a.Name)
		}
	}
	for _, pr := range p.Providers {
		if err := check("provider", pr.Name); err != nil {
			return err
		}
		if pr.Get == nil {
			return fmt.Errorf("plugin %s: provider %s has no Get", p.Name, pr.Name)
		}
	}
	for _, e := range p.Evaluators {
		if err := check("evaluator", e.Name); err != nil {
			return err
		}
		if e.Handler == nil {
			return fmt.Errorf("plugin %s: evaluator %s has no Handler", p.Name, e.Name)
		}
	}
	for _, m := range p.Models {
		if err := check("model", m.Type); err != nil {
			return err
		}
		if m.Handler == nil && m.Stream == nil {
			return fmt.Errorf("plugin %s: model %s has neither Handler nor Stream", p.Name, m.Type)
		}
	}
	for _, e := range p.Events {
		if strings.TrimSpace(e.Type) == "" || e.Handle == nil {
			return fmt.Errorf("plugin %s: an event handler needs a Type and a Handle func", p.Name)
		}
	}
	for _, s := range p.Sources {
		if err := check("source", s.Name); err != nil {
			return err
		}
		if s.Send == nil {
			return fmt.Errorf("plugin %s: source %s has no Send", p.Name, s.Name)
		}
	}
	return nil
}
