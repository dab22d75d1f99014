// Package confine runs a plugin process under the restrictions the host
// decided for it: on Linux, a Landlock ruleset (the files it may read and
// write, no signals or abstract sockets outside itself, no ptrace or
// /proc/PID/environ of other processes), resource limits (memory, open
// files, processes), no capabilities and no_new_privs.
//
// The restrictions are applied by a small trampoline: the host starts its
// own executable as `agenthost __confine PLUGIN [ARGS...]` with the [Policy]
// in the environment; the trampoline applies it to its own thread and
// execs the plugin, which inherits it and can never shed it. A Policy is
// plain data, so the host can also show it (`agenthost plugins list`).
package confine

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// EnvVar carries the Policy, as JSON, from the host to the trampoline. The
// trampoline removes it before the plugin starts.
const EnvVar = "AGENTHOST_CONFINE"

// Policy is what one plugin process may do.
type Policy struct {
	// Landlock turns the file rules below on; without it only the limits
	// apply.
	Landlock bool `json:"landlock"`
	// Read are files and folders (with everything below) the plugin may
	// read and execute.
	Read []string `json:"read,omitempty"`
	// Write are files and folders it may also write, create and remove in.
	Write []string `json:"write,omitempty"`

	// Memory bounds the plugin's data segment in bytes (RLIMIT_DATA: the
	// heap of any language); 0 is no limit. Over it, allocation fails and
	// the plugin dies of it.
	Memory uint64 `json:"memory,omitempty"`
	// Files bounds its open files (RLIMIT_NOFILE); 0 is no limit.
	Files uint64 `json:"files,omitempty"`
	// Processes bounds its processes and threads: through PidsFile when set
	// (a cgroup's pids.max holds for root too), else RLIMIT_NPROC, which
	// counts every process of the user and does not hold for root.
	Processes uint64 `json:"processes,omitempty"`
	// Cgroups are cgroup.procs files the plugin joins before anything else,
	// so that the cgroup's limits hold for it and its children.
	Cgroups []string `json:"cgroups,omitempty"`
	// SHA256, when set, is the hex checksum the plugin's file must have
	// (plugins.lock): the trampoline refuses any other.
	SHA256 string `json:"sha256,omitempty"`
}

// Encode is the Policy as the trampoline reads it.
func (p Policy) Encode() string {
	b, _ := json.Marshal(p)
	return string(b)
}

// decode reads a Policy from EnvVar's value.
func decode(s string) (Policy, error) {
	var p Policy
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return Policy{}, fmt.Errorf("read the confinement policy in %s: %w", EnvVar, err)
	}
	return p, nil
}

// Main is the trampoline: `agenthost __confine PLUGIN [ARGS...]`. It never
// returns when it works; on failure it says why on stderr (which the host
// logs as the plugin's) and exits with status 1, since a plugin that was
// to be confined must not run unconfined.
func Main(args []string) {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "agenthost __confine: no plugin to run")
		os.Exit(1)
	}
	p, err := decode(os.Getenv(EnvVar))
	if err == nil {
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, EnvVar+"=") {
				env = append(env, kv)
			}
		}
		path := args[0]
		if p.SHA256 != "" {
			path, err = openPinned(path, p.SHA256)
		}
		if err == nil {
			err = execConfined(p, path, args, env)
		}
	}
	fmt.Fprintf(os.Stderr, "agenthost: confine plugin %s: %v\n", args[0], err)
	os.Exit(1)
}
