package host

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sort"

	"github.com/agenthost/agenthost/internal/contract"
	goplugin "github.com/hashicorp/go-plugin"
)

// Debugging a plugin: its author starts it by hand with
// AGENTHOST_PLUGIN_DEBUG=1 (under a debugger, say); it serves on a socket
// of its own and prints its reattach line, NAME={...}. Given that line
// (`agenthost start --attach NAME=LINE`, or AGENTHOST_PLUGIN_ATTACH), the
// daemon uses that process instead of starting the plugin: go-plugin's
// reattach. The host did not start it, so it neither confines it nor
// checks it against plugins.lock, nor restarts it when it exits: it
// describes, initialises and configures it as any other, and disconnects
// when it stops, which ends the plugin's serving.

// ParseAttach reads reattach lines, from --attach (NAME=LINE) and
// AGENTHOST_PLUGIN_ATTACH (several, separated by spaces or ";").
func ParseAttach(lines ...string) (map[string]*goplugin.ReattachConfig, error) {
	out := map[string]*goplugin.ReattachConfig{}
	for _, l := range lines {
		got, err := contract.ParseAttachLines(l)
		if err != nil {
			return nil, err
		}
		for name, r := range got {
			if !contract.ValidPluginName(name) {
				return nil, fmt.Errorf("reattach line: %q is not a plugin name", name)
			}
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("plugin %s is attached twice", name)
			}
			var addr net.Addr
			if r.Network == "unix" {
				addr = &net.UnixAddr{Net: "unix", Name: r.Address}
			} else {
				// The connection is plain, and carries the plugin's runtime
				// token and its agents' settings: this machine only.
				tcp, err := net.ResolveTCPAddr("tcp", r.Address)
				if err != nil || !tcp.IP.IsLoopback() {
					return nil, fmt.Errorf("reattach line of plugin %s: address %q is not a loopback address such as 127.0.0.1:1234", name, r.Address)
				}
				addr = tcp
			}
			if !processAlive(r.Pid) {
				return nil, fmt.Errorf("reattach line of plugin %s: its process %d is not running; start the plugin again with %s=1 and use the line it prints",
					name, r.Pid, contract.DebugEnv)
			}
			out[name] = &goplugin.ReattachConfig{Protocol: goplugin.ProtocolGRPC, ProtocolVersion: r.Protocol, Addr: addr, Pid: r.Pid, Test: true}
		}
	}
	return out, nil
}

// attachSpecs has the attached plugins replace those of the same name, or
// join the others.
func attachSpecs(specs []PluginSpec, attach map[string]*goplugin.ReattachConfig) []PluginSpec {
	names := make([]string, 0, len(attach))
	for name := range attach {
		names = append(names, name)
	}
	sort.Strings(names)
next:
	for _, name := range names {
		for i := range specs {
			if specs[i].Name == name {
				specs[i].Attach = attach[name]
				continue next
			}
		}
		specs = append(specs, PluginSpec{Name: name, Attach: attach[name]})
	}
	return specs
}

// attach makes a go-plugin client reach a process it did not start. Test
// mode (the plugin's ServeTestConfig) has no handshake and no TLS:
// the socket is the plugin author's, in a folder only that user reaches.
func attach(cfg *goplugin.ClientConfig, rc *goplugin.ReattachConfig) {
	r := *rc
	cfg.Reattach = &r
	cfg.AutoMTLS = false
	// Reattached, go-plugin negotiates no version: it takes the set of
	// the one the line names.
	cfg.Plugins = cfg.VersionedPlugins[r.ProtocolVersion]
}

// secureConfig is go-plugin's check of a binary against the checksum
// plugins.lock pins it to.
func secureConfig(sum string) *goplugin.SecureConfig {
	b, _ := hex.DecodeString(sum)
	return &goplugin.SecureConfig{Checksum: b, Hash: sha256.New()}
}
