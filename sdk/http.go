package sdk

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// HTTPRequest is a request the daemon received for the plugin at
// /hooks/{plugin}/{agentId}[/{path}].
type HTTPRequest struct {
	Method string
	// Path is what follows /hooks/{plugin}/{agentId}, starting with "/".
	Path string
	// RawQuery is the query string, without "?".
	RawQuery string
	// Header holds the request's headers; several values of one header
	// arrive joined with ", ".
	Header     http.Header
	Body       []byte
	RemoteAddr string
}

// HTTPResponse is the plugin's answer; Status 0 means 200.
type HTTPResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// deliveryKey carries a SendMessage call's delivery id in its context.
type deliveryKey struct{}

// DeliveryID returns the id the host gave the delivery a Source.Send call
// makes, or "" if it gave none. The host sends a delivery again, with the
// same id, when the plugin died with it in hand: a Send that remembers the
// ids it delivered sends each message once.
func DeliveryID(ctx context.Context) string {
	id, _ := ctx.Value(deliveryKey{}).(string)
	return id
}

func (s *pluginServer) HandleHTTP(ctx context.Context, req *pb.HandleHTTPRequest) (_ *pb.HandleHTTPResponse, err error) {
	defer s.recoverAs(&err, "http handler", req.GetPath())
	if s.p.HTTP == nil {
		return nil, contract.Status(fmt.Errorf("plugin %s serves no HTTP requests: %w", s.p.Name, ErrNotFound))
	}
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	in := &HTTPRequest{Method: req.GetMethod(), Path: req.GetPath(), RawQuery: req.GetRawQuery(),
		Header: http.Header{}, Body: req.GetBody(), RemoteAddr: req.GetRemoteAddr()}
	for k, v := range req.GetHeaders() {
		in.Header.Set(k, v)
	}
	if in.Path == "" {
		in.Path = "/"
	}
	res, err := s.p.HTTP(ctx, a, in)
	if err != nil {
		return nil, contract.Status(fmt.Errorf("http %s %s: %w", in.Method, in.Path, err))
	}
	out := &pb.HandleHTTPResponse{}
	if res == nil {
		return out, nil
	}
	out.Status = int32(res.Status)
	out.Body = res.Body
	if len(res.Header) > 0 {
		out.Headers = make(map[string]string, len(res.Header))
		for k, v := range res.Header {
			out.Headers[k] = validUTF8(strings.Join(v, ", "))
		}
	}
	return out, nil
}
