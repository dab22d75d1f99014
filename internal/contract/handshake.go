package contract

import (
	"time"

	goplugin "github.com/hashicorp/go-plugin"
)

// The wire contract shared by the host and every plugin. Plugins in other
// languages repeat these values; see sdk/proto/README.md.
const (
	// ProtocolVersion is go-plugin's application protocol version: the major
	// version of agenthost.plugin.v1. It changes only on breaking changes.
	ProtocolVersion = 1
	// ProtocolMinor is the minor of agenthost.plugin.v1 this host and the Go
	// SDK speak.
	// Minors add fields and RPCs. Minor 1 added the runtime token, which
	// the host requires: it refuses plugins built for minor 0. Minor 2
	// added the events a handler hands back with its answer
	// (HandleEventResponse.emitted), minor 3 the last reply of a run
	// (RespondRequest.last), which lets the host answer before the
	// handler returns.
	ProtocolMinor = 3

	// MagicCookieKey and MagicCookieValue tell a plugin it was started by
	// the host. They are a courtesy to people who run a plugin by hand, not
	// a security control.
	MagicCookieKey   = "AGENTHOST_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue = "d7c1e0a4f2b94f1f8a3c6e5b0a9d2c71"

	// PluginSetName is the name the plugin is served under in go-plugin's
	// plugin set.
	PluginSetName = "agenthost"

	// MaxMessageSize bounds every gRPC message in both directions, on both
	// sides. A size error is easier to act on than an out-of-memory kill.
	MaxMessageSize = 64 << 20

	// RuntimeTokenMetadata is the gRPC metadata key under which a plugin
	// presents its runtime token ("Bearer " + InitRequest.runtime_token) on
	// every Runtime call.
	RuntimeTokenMetadata = "authorization"
)

// Default deadlines, used when the caller's context has none.
const (
	// DefaultCallTimeout bounds an ordinary call (providers, storage).
	DefaultCallTimeout = 30 * time.Second
	// DefaultRunTimeout bounds the handling of one message, model calls
	// included.
	DefaultRunTimeout = 5 * time.Minute
)

// Handshake is the go-plugin handshake shared by host and plugins.
func Handshake() goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}

// MaxEmitted is how many events one HandleEvent answer may hand back
// (HandleEventResponse.emitted); the host drops the rest.
const MaxEmitted = 64
