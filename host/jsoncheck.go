package host

import (
	"context"
	"strings"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// A plugin's _json fields (values_json, metadata_json, payload_json, …)
// must hold a JSON object or nothing (contract.CheckJSONFields). What the
// host does with one that does not:
//
//   - in a plugin's answer to the host (a provider's values, an action's
//     result), the field is dropped, as if the plugin had not set it, and
//     the host logs a warning naming the plugin, the call and the field;
//   - in a plugin's request to the host (Runtime.Respond's content, a
//     storage call's metadata, EmitEvent's payload), the call is refused
//     with INVALID_ARGUMENT naming the field, and the host logs it too:
//     nothing is stored that a later read would choke on.
//
// Each plugin's first bad field of each call is logged at warn level; the
// same again at debug, so that a plugin sending garbage on every call does
// not flood the log.

// pluginService is the prefix of the Plugin service's methods: the answers
// the client interceptor checks. The Database answers of the database
// plugin are passed through as bytes to plugins, or read by the host's own
// code from its own plugin, and are not walked.
var pluginService = "/" + pb.Plugin_ServiceDesc.ServiceName + "/"

// checkAnswerJSON drops the bad _json fields of a plugin's answer.
func (p *PluginProcess) checkAnswerJSON(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil || !strings.HasPrefix(method, pluginService) {
		return err
	}
	if m, ok := reply.(proto.Message); ok {
		if bad := contract.CheckJSONFields(m, true); len(bad) > 0 {
			p.badJSON(method, bad, "its answer's field was dropped")
		}
	}
	return nil
}

// checkRequestJSON refuses a Runtime or storage call whose request has a
// bad _json field. It runs after authentication, which names the caller.
func (m *Manager) checkRequestJSON(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := requestJSON(ctx, info.FullMethod, req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func requestJSON(ctx context.Context, method string, req any) error {
	msg, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	bad := contract.CheckJSONFields(msg, false)
	if len(bad) == 0 {
		return nil
	}
	if p := callerPlugin(ctx); p != nil {
		p.badJSON(method, bad, "the call was refused")
	}
	return status.Errorf(codes.InvalidArgument, "%s: %s must hold a JSON object or nothing: it is %s",
		shortMethod(method), bad[0].Field, bad[0].Problem)
}

func (p *PluginProcess) badJSON(method string, bad []contract.BadJSON, what string) {
	for _, b := range bad {
		key := method + " " + b.Field
		level := p.log.Debug
		if _, seen := p.jsonSeen.LoadOrStore(key, true); !seen {
			level = p.log.Warn
		}
		level("plugin sent a _json field that does not hold a JSON object; "+what,
			"call", shortMethod(method), "field", b.Field, "problem", b.Problem)
	}
}

// shortMethod is "Runtime.Respond" for "/agenthost.plugin.v1.Runtime/Respond".
func shortMethod(full string) string {
	full = strings.TrimPrefix(full, "/")
	svc, name, ok := strings.Cut(full, "/")
	if !ok {
		return full
	}
	return svc[strings.LastIndexByte(svc, '.')+1:] + "." + name
}
