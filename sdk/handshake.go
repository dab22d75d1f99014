package sdk

import (
	"context"

	"github.com/agenthost/agenthost/internal/contract"
)

// runtimeToken presents the plugin process's runtime token on every
// Runtime call. The Runtime socket is the host's private unix socket, so
// the token travels without TLS; it is what tells the host which plugin
// calls, whatever socket path was dialed.
type runtimeToken string

func (t runtimeToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if t == "" {
		return nil, nil
	}
	return map[string]string{contract.RuntimeTokenMetadata: "Bearer " + string(t)}, nil
}

func (runtimeToken) RequireTransportSecurity() bool { return false }
