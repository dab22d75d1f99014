package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/agenthost/agenthost/host/confine"
)

// What a plugin process may touch. Every plugin reads the system's files
// (libraries, certificates, time zones, the interpreters on PATH) and its
// own executable's folder, and reads and writes its own folder
// DATA_DIR/plugins/NAME and its temporary folder — nothing else of the
// daemon's: not the data dir, not the database files, not other plugins'
// folders, not the daemon's .env, not other processes' /proc entries.

// systemReadPaths are the files every plugin may read: what programs in
// any language need to run, resolve names and speak TLS. /etc is listed
// file by file: it also holds secrets (/etc/shadow).
var systemReadPaths = []string{
	"/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/opt",
	"/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/crypto-policies",
	"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
	"/etc/services", "/etc/protocols", "/etc/localtime", "/etc/timezone", "/etc/passwd", "/etc/group",
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/mime.types",
	"/etc/os-release", "/etc/debian_version", "/etc/nodejs", "/etc/ssl/openssl.cnf",
	// /proc shows only what ptrace rules allow: other processes' environ,
	// memory and file descriptors stay closed to a confined plugin.
	"/proc", "/sys",
	"/dev/random", "/dev/urandom",
}

// systemWritePaths are the devices every program may write.
var systemWritePaths = []string{"/dev/null", "/dev/zero", "/dev/full"}

// Limits are the resource limits of a plugin process.
type Limits struct {
	// Memory bounds the data segment (the heap), in bytes.
	Memory uint64
	// Files bounds open files.
	Files uint64
	// Processes bounds processes and threads.
	Processes uint64
	// Calls bounds the plugin's Runtime calls a second (a token bucket with
	// a second's worth of burst); 0 is no limit.
	Calls uint64
}

// DefaultLimits fit every first-party plugin many times over: each uses a
// few tens of MiB, a few dozen files, a few dozen threads. A third-party
// plugin may make callsPerCPU Runtime calls a second per CPU the daemon
// may use. The first-party plugins are the host's own code and are not
// rate-limited.
var DefaultLimits = Limits{Memory: 1 << 30, Files: 1024, Processes: 256, Calls: callsPerCPU * uint64(runtime.GOMAXPROCS(0))}

// callsPerCPU is a third-party plugin's default Runtime calls a second for
// each CPU. A storage call costs about a millisecond of CPU in all (the
// host, the database plugin and the caller: BenchmarkRuntimeFlood's
// flood-only figures), so a plugin flooding the host at its limit takes
// about an eighth of the machine, and more only of CPU nobody else wants
// (throttle.go); a provider making a few calls per message keeps up with
// a hundred messages a second on two CPUs.
const callsPerCPU = 125

// limitsFor reads AGENTHOST_PLUGIN_LIMITS, then AGENTHOST_PLUGIN_LIMITS_NAME
// for the plugin (NAME upper-cased, other characters as _), each a comma
// list such as "memory=2g,files=4096,processes=512"; "0" removes a limit.
func limitsFor(env map[string]string, plugin string, bundled bool) (Limits, []string) {
	l := DefaultLimits
	if bundled {
		l.Calls = 0
	}
	var warnings []string
	for _, key := range []string{"AGENTHOST_PLUGIN_LIMITS", "AGENTHOST_PLUGIN_LIMITS_" + envName(plugin)} {
		for _, item := range strings.Split(env[key], ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			k, v, _ := strings.Cut(item, "=")
			n, err := parseLimit(v)
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("%s: %q is not a limit such as memory=512m, files=1024, processes=64 or calls=500; ignored", key, item))
				continue
			}
			switch strings.TrimSpace(k) {
			case "memory":
				l.Memory = n
			case "files":
				l.Files = n
			case "processes":
				l.Processes = n
			case "calls":
				l.Calls = n
			default:
				warnings = append(warnings, fmt.Sprintf("%s: no limit named %q (memory, files, processes, calls); ignored", key, k))
			}
		}
	}
	return l, warnings
}

func parseLimit(s string) (uint64, error) {
	n, err := parseSize(s)
	if err != nil {
		if g, ok := strings.CutSuffix(strings.ToLower(strings.TrimSpace(s)), "g"); ok {
			n, err = parseSize(g + "k")
			n <<= 20
		}
	}
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad limit %q", s)
	}
	return uint64(n), nil
}

// envName is a plugin name as it appears in an environment variable.
func envName(plugin string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, plugin)
}

// confinementOff reports whether the operator turned confinement off, for
// every plugin (AGENTHOST_PLUGIN_CONFINE=off) or one
// (AGENTHOST_PLUGIN_CONFINE_NAME=off).
func confinementOff(env map[string]string, plugin string) bool {
	for _, key := range []string{"AGENTHOST_PLUGIN_CONFINE_" + envName(plugin), "AGENTHOST_PLUGIN_CONFINE"} {
		switch strings.ToLower(strings.TrimSpace(env[key])) {
		case "off", "false", "0", "no":
			return true
		case "on", "true", "1", "yes":
			return false
		}
	}
	return false
}

// extraPaths reads AGENTHOST_PLUGIN_ALLOW_NAME: more paths one plugin may
// read ("/srv/models") or write ("/var/cache/weather:rw"), comma separated.
func extraPaths(env map[string]string, plugin string) (read, write []string) {
	for _, item := range strings.Split(env["AGENTHOST_PLUGIN_ALLOW_"+envName(plugin)], ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, ok := strings.CutSuffix(item, ":rw"); ok {
			write = append(write, p)
			continue
		}
		read = append(read, strings.TrimSuffix(item, ":ro"))
	}
	return read, write
}

// policy is what one process of p may do. data and tmp are its folders
// (data is empty when the plugin is only described).
func (m *Manager) policy(p *PluginProcess, spec PluginSpec, data, tmp string) confine.Policy {
	env := m.cfg.Env
	l := p.limits
	pol := confine.Policy{Landlock: m.landlockABI > 0, Memory: l.Memory, Files: l.Files, Processes: l.Processes}
	pol.Read = append(pol.Read, systemReadPaths...)
	// The interpreters a script's #! line finds through PATH.
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.IsAbs(dir) && !m.holdsDaemonState(dir) {
			pol.Read = append(pol.Read, dir)
		}
	}
	pol.Read = append(pol.Read, m.executableGrant(spec)...)
	if p.spec.Bundled && p.spec.Name == "sql" {
		// lib/pq's client certificates, for PostgreSQL over TLS.
		if home, err := os.UserHomeDir(); err == nil {
			pol.Read = append(pol.Read, filepath.Join(home, ".postgresql"))
		}
	}
	if dir := os.Getenv("AGENTHOST_PROTO_DIR"); filepath.IsAbs(dir) {
		// Where non-Go plugins load the protocol from, when the operator
		// says.
		pol.Read = append(pol.Read, dir)
	}
	read, write := extraPaths(env, p.spec.Name)
	pol.Read = append(pol.Read, read...)
	pol.Write = append(pol.Write, systemWritePaths...)
	pol.Write = append(pol.Write, write...)
	for _, dir := range []string{data, tmp} {
		if dir != "" {
			pol.Write = append(pol.Write, dir)
		}
	}
	switch procs := m.cgroups.join(p.spec.Name, l.Processes); {
	case procs != "":
		pol.Cgroups = []string{procs}
	case os.Getuid() == 0 || l.Processes == 0:
		// Linux does not apply RLIMIT_NPROC to root.
		pol.Processes = 0
	default:
		// RLIMIT_NPROC counts every task of the user: leave the plugin
		// room for its own on top of what runs already.
		pol.Processes = userTasks() + l.Processes
	}
	return pol
}

// command is how a plugin process is started: through the confinement
// trampoline (`agenthost __confine`) with its policy, unless the operator
// turned confinement off. sum is the checksum plugins.lock pins the file
// to, which the trampoline checks on the file it executes.
func (m *Manager) command(ctx context.Context, p *PluginProcess, spec PluginSpec, data, tmp, sum string) *exec.Cmd {
	var cmd *exec.Cmd
	env := m.pluginEnv(tmp)
	if confinementOff(m.cfg.Env, p.spec.Name) || m.cfg.Self == "" {
		cmd = exec.CommandContext(ctx, spec.Path, spec.Args...)
	} else {
		cmd = exec.CommandContext(ctx, m.cfg.Self, append([]string{ConfineSubcommand, spec.Path}, spec.Args...)...)
		pol := m.policy(p, spec, data, tmp)
		pol.SHA256 = sum
		env = append(env, confine.EnvVar+"="+pol.Encode())
	}
	cmd.Env = env
	// A plugin's working folder is its own; the daemon's may hold a .env.
	cmd.Dir = data
	if cmd.Dir == "" {
		cmd.Dir = tmp
	}
	setProcAttrs(cmd)
	// ctx ends only for a process abandoned before its handshake: it goes
	// with what it started.
	cmd.Cancel = func() error {
		killGroup(cmd.Process.Pid)
		return cmd.Process.Kill()
	}
	return cmd
}

// ConfineSubcommand is the hidden agenthost subcommand that confines a
// plugin and execs it: `agenthost __confine PATH [ARGS...]`.
const ConfineSubcommand = "__confine"

// executableGrant is what of the plugin's executable it may read: its
// folder (a script's modules, a Node plugin's node_modules), unless that
// folder holds the daemon's state or working folder, in which case only the
// file itself. A bundled plugin is the agenthost executable: the file.
func (m *Manager) executableGrant(spec PluginSpec) []string {
	exe, err := filepath.EvalSymlinks(spec.Path)
	if err != nil {
		exe = spec.Path
	}
	if spec.Bundled {
		return []string{exe}
	}
	dir := filepath.Dir(exe)
	if m.holdsDaemonState(dir) {
		m.log.Warn("a plugin's folder also holds the daemon's data or working folder: the plugin may read only its executable",
			"plugin", spec.Name, "folder", dir)
		return []string{exe}
	}
	return []string{dir}
}

// holdsDaemonState reports whether dir is, or contains, the data dir or the
// daemon's working folder (where .env is read from).
func (m *Manager) holdsDaemonState(dir string) bool {
	dir = filepath.Clean(dir)
	for _, state := range []string{m.cfg.DataDir, m.cfg.WorkDir} {
		if state == "" {
			continue
		}
		state = filepath.Clean(state)
		if state == dir || strings.HasPrefix(state, dir+string(filepath.Separator)) || dir == "/" {
			return true
		}
	}
	return false
}

// ConfinementSummary says in a line what holds plugin processes, for the
// daemon's start log.
func (m *Manager) ConfinementSummary() string {
	switch {
	case confinementOff(m.cfg.Env, ""):
		return "none: turned off by AGENTHOST_PLUGIN_CONFINE"
	case m.landlockABI > 0:
		return fmt.Sprintf("landlock abi %d, no capabilities, resource limits (see GET /api/plugins/NAME)", m.landlockABI)
	}
	return "none: the kernel has no Landlock; no capabilities, resource limits (see GET /api/plugins/NAME)"
}

// Confinement says in words what holds a plugin's processes, e.g.
// "landlock abi 7; memory 1 GiB, open files 1024, processes 256 (cgroup)".
func (p *PluginProcess) Confinement() string {
	m := p.mgr
	var parts []string
	if a := p.Spec().Attach; a != nil {
		return fmt.Sprintf("none: an attached process (pid %d) its author started", a.Pid)
	}
	switch {
	case confinementOff(m.cfg.Env, p.spec.Name):
		return "none: turned off by AGENTHOST_PLUGIN_CONFINE"
	case m.landlockABI > 0:
		parts = append(parts, "landlock abi "+strconv.Itoa(m.landlockABI))
	default:
		parts = append(parts, "none: the kernel has no Landlock")
	}
	l := p.limits
	lim := []string{"memory " + sizeText(l.Memory), "open files " + countText(l.Files), "runtime calls " + countText(l.Calls) + "/s"}
	switch {
	case l.Processes == 0:
		lim = append(lim, "processes unlimited")
	case m.cgroups.available():
		lim = append(lim, "processes "+countText(l.Processes)+" (cgroup)")
	case os.Getuid() == 0:
		lim = append(lim, "processes not limited: the daemon runs as root and has no pids cgroup")
	default:
		lim = append(lim, "processes "+countText(l.Processes)+" (per user)")
	}
	return strings.Join(parts, "; ") + "; " + strings.Join(lim, ", ")
}

func sizeText(n uint64) string {
	switch {
	case n == 0:
		return "unlimited"
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func countText(n uint64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatUint(n, 10)
}
