package contract

import (
	"encoding/json"
	"fmt"
	"strings"
)

// DebugEnv puts a plugin in debug mode when set to 1: started by hand (under
// a debugger, say) instead of by the daemon, it serves on a socket of its
// own and prints its reattach line, which `agenthost start --attach` (or
// AGENTHOST_PLUGIN_ATTACH) gives the daemon so that it uses this process
// instead of starting one.
const DebugEnv = "AGENTHOST_PLUGIN_DEBUG"

// AttachEnv is the daemon's variable for reattach lines, as --attach takes
// them: NAME=LINE, several separated by spaces or ";".
const AttachEnv = "AGENTHOST_PLUGIN_ATTACH"

// Reattach is where a plugin in debug mode serves, as its reattach line
// says it: the JSON after "NAME=".
type Reattach struct {
	// Network is "unix" (Address is the socket's path) or "tcp" (Address
	// is host:port).
	Network string `json:"network"`
	Address string `json:"address"`
	// Pid is the plugin's process: the daemon notices when it is gone.
	Pid int `json:"pid"`
	// Protocol is the plugin protocol's major version, ProtocolVersion.
	Protocol int `json:"protocol"`
}

// AttachLine is the reattach line of plugin name: NAME=JSON.
func AttachLine(name string, r Reattach) string {
	b, _ := json.Marshal(r)
	return name + "=" + string(b)
}

// ParseAttachLines reads one or more NAME=LINE reattach lines, separated by
// white space or ";".
func ParseAttachLines(s string) (map[string]Reattach, error) {
	out := map[string]Reattach{}
	for {
		s = strings.TrimLeft(s, " \t\r\n;")
		if s == "" {
			return out, nil
		}
		name, rest, ok := strings.Cut(s, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n;{") {
			return nil, fmt.Errorf("%q is not a reattach line NAME={...} as a plugin started with %s=1 prints it", clipText(s, 60), DebugEnv)
		}
		dec := json.NewDecoder(strings.NewReader(rest))
		dec.DisallowUnknownFields()
		var r Reattach
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("reattach line of plugin %s: %v (want the JSON the plugin printed, such as {\"network\":\"unix\",\"address\":\"/tmp/plugin1\",\"pid\":1234,\"protocol\":%d})",
				name, err, ProtocolVersion)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("plugin %s has two reattach lines", name)
		}
		switch {
		case r.Network != "unix" && r.Network != "tcp":
			return nil, fmt.Errorf("reattach line of plugin %s: network %q is neither unix nor tcp", name, r.Network)
		case r.Address == "":
			return nil, fmt.Errorf("reattach line of plugin %s: no address", name)
		case r.Pid <= 0:
			return nil, fmt.Errorf("reattach line of plugin %s: no pid", name)
		case r.Protocol != ProtocolVersion:
			return nil, fmt.Errorf("reattach line of plugin %s: the plugin speaks agenthost plugin protocol %d, but this host speaks protocol %d",
				name, r.Protocol, ProtocolVersion)
		}
		out[name] = r
		s = rest[dec.InputOffset():]
	}
}

func clipText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
