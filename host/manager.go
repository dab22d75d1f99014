package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agenthost/agenthost/host/confine"
	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/sysmon"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// minPluginMinor is the oldest protocol minor the host accepts: an older
// plugin is refused at start with a clear reason rather than at its first
// Runtime call.
const minPluginMinor = contract.MinPluginMinor

// Manager owns every plugin process of a daemon.
type Manager struct {
	cfg ManagerConfig
	log hclog.Logger

	mu sync.Mutex
	// pmu guards plugins and order: the plugin folders are watched, and a
	// plugin may come or go while the daemon runs (watch.go).
	pmu     sync.RWMutex
	plugins map[string]*PluginProcess
	order   []string
	// rtDir is this daemon's runtime folder: the Runtime socket and each
	// plugin's socket and temporary folder.
	rtDir  string
	rtAddr string
	rtSrv  *grpc.Server
	// tokens maps the runtime token of each live plugin process to its
	// plugin: the only thing that says who makes a Runtime call.
	tokens sync.Map
	// onRestart is called after a plugin came back, e.g. to re-run
	// migrations.
	onRestart func(*PluginProcess)
	// landlockABI is the kernel's Landlock ABI, 0 without Landlock.
	landlockABI int
	cgroups     *cgroups
	// watch follows the plugin folders (watch.go); takeUp is the daemon's
	// part of an upgrade (upgrade.go).
	watch  *watcher
	takeUp func(ctx context.Context, p *PluginProcess, c *pluginConn) (commit func(), warnings []string, err error)
	// refusals are the new binaries refused, by plugin name.
	refusals map[string]RefusedBinary
}

// ManagerConfig configures plugin processes.
type ManagerConfig struct {
	Version string
	// Self is the agenthost executable: bundled plugins are its children,
	// and it confines every plugin (`agenthost __confine`).
	Self string
	// Env is the daemon's environment (with .env): the plugins' limits and
	// confinement settings are read from it.
	Env map[string]string
	// DataDir is the daemon's data folder; each plugin gets its own folder
	// DataDir/plugins/NAME and nothing else of it.
	DataDir      string
	WorkDir      string
	HostSettings map[string]string
	StartTimeout time.Duration
	// EnvAllow lists the environment variables a plugin process inherits;
	// nothing else of the host's environment reaches it.
	EnvAllow []string
	// Runtime is the Runtime service served to every plugin; it learns the
	// calling plugin from the context ([callerPlugin]).
	Runtime pb.RuntimeServer
	// Storage answers the Database calls plugins make on the same
	// connection (see contract.StorageService).
	Storage contract.StorageHandler
	// RuntimeConcurrency bounds the Runtime calls one plugin process may
	// have in flight; more wait their turn. Zero means the default.
	RuntimeConcurrency int
	// DescribeOnly starts plugins only to read their manifests.
	DescribeOnly bool
	// DialOptions adds options to the connection to a plugin, e.g. the
	// interceptors that measure its calls.
	DialOptions func(plugin string) []grpc.DialOption
	// OnRuntimeCall hears every authenticated Runtime or storage call a
	// plugin makes, by the caller's name and the method's short name
	// ("Runtime.UseModel", "Database.CreateMemory").
	OnRuntimeCall func(plugin, method string)
	// NoLock starts binaries whatever plugins.lock says: `agenthost
	// plugins lock` reads the plugins it is about to pin.
	NoLock bool
}

// defaultRuntimeConcurrency is how many Runtime calls of one plugin run at
// once. bootstrap handling ten conversations at a time needs about that
// many; a plugin that floods the host waits instead of crowding out the
// other agents' plugins.
const defaultRuntimeConcurrency = 16

func (m *Manager) dialOptions(plugin string) []grpc.DialOption {
	if m.cfg.DialOptions == nil {
		return nil
	}
	return m.cfg.DialOptions(plugin)
}

// DefaultEnvAllow is what a plugin inherits from the host's environment.
// API keys are not on it: a plugin gets the settings it declares, per
// agent, through Configure.
var DefaultEnvAllow = []string{
	"PATH", "HOME", "USER", "LOGNAME", "TZ", "LANG", "LC_ALL", "LC_CTYPE",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"http_proxy", "https_proxy", "no_proxy", "AGENTHOST_LOG_LEVEL", "AGENTHOST_PROTO_DIR",
	"NODE_OPTIONS", "NODE_PATH", "GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS",
}

// pluginProcs is how many threads a Go plugin runs Go code on at once
// (GOMAXPROCS) when the operator has not set GOMAXPROCS: half the host's,
// rounded up. A message keeps three plugin processes and the daemon busy
// by turns, each waking the next over a socket, and a Go process woken
// with threads to spare starts another looking for work that is rarely
// there: on 2 cores, one thread per plugin took 14-27% less CPU per
// message, answered messages sent one at a time 7-23% sooner and took 15%
// more messages a second from 10 senders. A plugin still gets several
// threads on a larger machine.
func pluginProcs() int { return (runtime.GOMAXPROCS(0) + 1) / 2 }

// NewManager makes a manager for the given plugin specs.
func NewManager(cfg ManagerConfig, specs []PluginSpec, log hclog.Logger) *Manager {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.EnvAllow == nil {
		cfg.EnvAllow = DefaultEnvAllow
	}
	if cfg.RuntimeConcurrency <= 0 {
		cfg.RuntimeConcurrency = defaultRuntimeConcurrency
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m := &Manager{cfg: cfg, log: log, plugins: map[string]*PluginProcess{},
		landlockABI: confine.LandlockABI(), cgroups: &cgroups{log: log}}
	for _, s := range specs {
		p := m.newPluginProcess(s)
		m.plugins[s.Name] = p
		m.order = append(m.order, s.Name)
	}
	return m
}

func (m *Manager) newPluginProcess(s PluginSpec) *PluginProcess {
	limits, warnings := limitsFor(m.cfg.Env, s.Name, s.Bundled)
	for _, w := range warnings {
		m.log.Warn(w)
	}
	p := &PluginProcess{spec: s, mgr: m, state: StateStopped, configured: map[string]*agentConfig{},
		log: m.log.Named("plugin").Named(s.Name), calls: make(chan struct{}, m.cfg.RuntimeConcurrency), limits: limits,
		rate: newCallRate(limits.Calls), throttleSlot: make(chan struct{}, 1)}
	if !s.Bundled && s.Attach == nil {
		p.bin.seen, _ = statFile(s.Path)
	}
	return p
}

// Plugins returns every known plugin: the bundled ones, then the others by
// name.
func (m *Manager) Plugins() []*PluginProcess {
	m.pmu.RLock()
	defer m.pmu.RUnlock()
	out := make([]*PluginProcess, 0, len(m.order))
	for _, name := range m.order {
		out = append(out, m.plugins[name])
	}
	return out
}

// Plugin returns a plugin by its short name.
func (m *Manager) Plugin(name string) *PluginProcess {
	m.pmu.RLock()
	defer m.pmu.RUnlock()
	return m.plugins[name]
}

// pluginEnv is the environment of a plugin process: the allow-list, and
// the plugin's own temporary folder, which is also where go-plugin makes
// the plugin's socket.
func (m *Manager) pluginEnv(tmp string) []string {
	var env []string
	procs := false
	for _, k := range m.cfg.EnvAllow {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
			procs = procs || (k == "GOMAXPROCS" && v != "")
		}
	}
	if !procs {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(pluginProcs()))
	}
	if tmp != "" {
		env = append(env, "TMPDIR="+tmp, "PLUGIN_UNIX_SOCKET_DIR="+tmp)
	}
	// A Go plugin's runtime monitor stays out of its deep sleep, as the
	// daemon's does (internal/sysmon); other languages ignore GODEBUG.
	return sysmon.With(env)
}

// pluginDataDir is a plugin's own folder, DATA_DIR/plugins/NAME: the one
// place of the data dir it may read and write.
func (m *Manager) pluginDataDir(name string) string {
	if m.cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(m.cfg.DataDir, "plugins", name)
}

// pluginDirs makes a plugin's data folder and its temporary folder (emptied:
// a process killed earlier may have left its socket there). slot tells
// apart the temporary folders of processes of one plugin that live side by
// side: the old and the new during an upgrade, a binary being probed.
func (m *Manager) pluginDirs(name, slot string) (data, tmp string, err error) {
	if data = m.pluginDataDir(name); data != "" && !m.cfg.DescribeOnly && slot != probeSlot {
		if err := os.MkdirAll(data, 0o700); err != nil {
			return "", "", fmt.Errorf("make plugin %s's folder: %w", name, err)
		}
		// The folder may exist from before with looser permissions.
		if err := os.Chmod(data, 0o700); err != nil {
			return "", "", fmt.Errorf("make plugin %s's folder private: %w", name, err)
		}
	}
	dir, err := m.runtimeDir()
	if err != nil {
		return "", "", err
	}
	tmp = tmpPath(dir, name, slot)
	if err := os.RemoveAll(tmp); err != nil {
		return "", "", fmt.Errorf("clear plugin %s's temporary folder: %w", name, err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", "", fmt.Errorf("make plugin %s's temporary folder: %w", name, err)
	}
	if m.cfg.DescribeOnly || slot == probeSlot {
		// Reading a manifest creates nothing in the data dir.
		data = ""
	}
	return data, tmp, nil
}

// tmpPath is the temporary folder of a process of plugin name in slot.
func tmpPath(runtimeDir, name, slot string) string {
	return filepath.Join(runtimeDir, "p", name+slot)
}

// add makes a plugin found while the daemon runs known.
func (m *Manager) add(p *PluginProcess) {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	spec := p.spec
	if m.plugins[spec.Name] != nil {
		return
	}
	m.plugins[spec.Name] = p
	// The bundled plugins first, then the others by name, as discovered.
	i := sort.Search(len(m.order), func(i int) bool {
		q := m.plugins[m.order[i]]
		return !q.spec.Bundled && q.spec.Name > spec.Name
	})
	m.order = slices.Insert(m.order, i, spec.Name)
}

// dropRemoved forgets a plugin whose binary was removed once no agent uses
// it, and stops its process.
func (m *Manager) dropRemoved(p *PluginProcess) {
	p.mu.Lock()
	unused := p.bin.removed && len(p.configured) == 0
	p.mu.Unlock()
	if !unused {
		return
	}
	m.pmu.Lock()
	if m.plugins[p.spec.Name] == p {
		delete(m.plugins, p.spec.Name)
		m.order = slices.DeleteFunc(m.order, func(n string) bool { return n == p.spec.Name })
	}
	m.pmu.Unlock()
	if st, _ := p.State(); st != StateStopped {
		p.log.Info("plugin stopped: its binary was removed and no agent uses it any more")
	}
	p.Stop()
}

// runtimeDirPrefix names the runtime folders of daemons in the system's
// temporary folder: agenthost-PID-RANDOM.
const runtimeDirPrefix = "agenthost-"

// runtimeDir makes this daemon's runtime folder on first use, after
// removing those that daemons killed with SIGKILL left behind.
func (m *Manager) runtimeDir() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rtDir != "" {
		return m.rtDir, nil
	}
	removeStaleRuntimeDirs(os.TempDir(), m.log)
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", runtimeDirPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("make runtime folder: %w", err)
	}
	// Only this user may reach the sockets.
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("make runtime folder private: %w", err)
	}
	m.rtDir = dir
	return dir, nil
}

// removeStaleRuntimeDirs removes the runtime folders of daemons that are no
// longer alive (a daemon stopped normally removes its own).
func removeStaleRuntimeDirs(tmp string, log hclog.Logger) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), runtimeDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		path := filepath.Join(tmp, e.Name())
		if info, err := os.Stat(path); err != nil || !ownedByMe(info) {
			continue
		}
		if err := os.RemoveAll(path); err == nil {
			log.Debug("removed the runtime folder of a daemon that is gone", "path", path, "pid", pid)
		}
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func ownedByMe(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

// runtimeAddress serves the Runtime service on the daemon's one Runtime
// socket, on first use, and returns its address. Every plugin dials the
// same socket: who calls is told by the token each call carries.
func (m *Manager) runtimeAddress() (string, error) {
	dir, err := m.runtimeDir()
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rtAddr != "" || m.cfg.Runtime == nil {
		return m.rtAddr, nil
	}
	path := filepath.Join(dir, "runtime.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		return "", fmt.Errorf("listen for the plugins' Runtime calls: %w", err)
	}
	// The codec passes the database plugin's answers to storage calls
	// through as bytes; everything else it encodes as gRPC always does.
	s := grpc.NewServer(append([]grpc.ServerOption{grpc.MaxRecvMsgSize(contract.MaxMessageSize), grpc.MaxSendMsgSize(contract.MaxMessageSize),
		grpc.ChainUnaryInterceptor(m.authUnary, m.checkRequestJSON, recoverUnary(m.log)),
		grpc.ChainStreamInterceptor(m.authStream), grpc.ForceServerCodecV2(contract.Codec{}),
		grpc.NumStreamWorkers(contract.StreamWorkers())}, contract.ServerWindow()...)...)
	pb.RegisterRuntimeServer(s, m.cfg.Runtime)
	if m.cfg.Storage != nil {
		s.RegisterService(contract.StorageService(m.cfg.Storage), nil)
	}
	// Plugins in any language can check that the host is there.
	healthpb.RegisterHealthServer(s, health.NewServer())
	m.rtSrv = s
	m.rtAddr = "unix://" + path
	go func() { _ = s.Serve(lis) }()
	return m.rtAddr, nil
}

// newRuntimeToken makes the credential of one plugin process: 26 random
// base32 characters, 130 bits.
func newRuntimeToken() string { return rand.Text() }

// revoke forgets a plugin process's token once the process is gone.
func (m *Manager) revoke(token string) {
	if token != "" {
		m.tokens.Delete(token)
	}
}

func (m *Manager) restarted(p *PluginProcess) {
	if m.onRestart != nil {
		m.onRestart(p)
	}
}

// Stop shuts every plugin down, in parallel, and removes the sockets.
func (m *Manager) Stop() {
	if w := m.watcher(); w != nil {
		w.stop()
	}
	var wg sync.WaitGroup
	for _, p := range m.Plugins() {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rtSrv != nil {
		m.rtSrv.Stop()
	}
	if m.rtDir != "" {
		_ = os.RemoveAll(m.rtDir)
	}
	m.cgroups.remove()
}
