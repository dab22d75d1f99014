package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// Plugin hooks: the daemon forwards the HTTP requests it receives at
// /hooks/{plugin}/{agentId}[/{path}] to that plugin's HandleHTTP, for
// plugins whose manifest says they serve HTTP (a Telegram webhook, for
// one). No API key is asked there: the platform calling cannot send it, so
// the plugin authenticates the request itself.
//
// A plugin is untrusted code answering on the API's own origin, where the
// web page keeps the API key in localStorage. So the daemon passes on
// neither the caller's credentials for the daemon (X-API-KEY,
// Authorization, Cookie) nor, from the answer, anything that acts on the
// origin: only the headers in hookResponseHeaders go through (no
// Set-Cookie, no Access-Control-*, no Clear-Site-Data…), every answer is
// sandboxed by its Content-Security-Policy, and a content type a browser
// would run or render as a document (HTML, SVG, XML, JavaScript, PDF…)
// is served as text/plain.

// maxHookBody bounds a forwarded request body.
const maxHookBody = 8 << 20

// hopHeaders are not forwarded in either direction.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
}

// hookCredentials are the caller's credentials for the daemon itself: a
// plugin has no use for them (a platform authenticates with its own
// header, such as X-Telegram-Bot-Api-Secret-Token) and must not see them.
var hookCredentials = map[string]bool{"X-Api-Key": true, "Authorization": true, "Cookie": true}

// hookResponseHeaders are the headers of a plugin's answer that reach the
// caller; the daemon's own security headers stay as the guard set them.
var hookResponseHeaders = map[string]bool{
	"Content-Type": true, "Content-Language": true, "Content-Disposition": true, "Content-Encoding": true,
	"Cache-Control": true, "Etag": true, "Expires": true, "Last-Modified": true, "Location": true,
	"Retry-After": true, "Vary": true, "Www-Authenticate": true,
}

// hookSandbox is the Content-Security-Policy of every hook answer: what a
// browser shows from there runs no script, loads nothing and has an opaque
// origin, so it cannot reach the API key or the API.
const hookSandbox = "sandbox; default-src 'none'; frame-ancestors 'none'"

// inertContentType keeps a plugin's content type when no browser runs it
// or renders it as a document, and says text/plain otherwise.
func inertContentType(ct string) string {
	const plain = "text/plain; charset=utf-8"
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return plain
	}
	switch {
	case mt == "application/json", strings.HasSuffix(mt, "+json") && mt != "application/manifest+json",
		mt == "text/plain", mt == "text/csv", mt == "application/octet-stream", mt == "application/x-www-form-urlencoded",
		mt == "image/png", mt == "image/jpeg", mt == "image/gif", mt == "image/webp", mt == "image/avif",
		strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"):
		return ct
	}
	return plain
}

func (d *Daemon) hookRoutes(m *http.ServeMux) {
	m.HandleFunc("/hooks/{plugin}/{agentId}", d.handleHook)
	m.HandleFunc("/hooks/{plugin}/{agentId}/{path...}", d.handleHook)
}

func (d *Daemon) handleHook(w http.ResponseWriter, r *http.Request) {
	name, agentID := r.PathValue("plugin"), r.PathValue("agentId")
	a := d.agentByID(agentID)
	if a == nil || a.registry() == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no agent with id %q runs here", safeText(agentID, 60)))
		return
	}
	if st, _ := a.Status(); st != AgentRunning {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "AGENT_NOT_RUNNING", fmt.Sprintf("agent %s is %s", a.Name, st))
		return
	}
	var p *PluginProcess
	for _, x := range a.registry().Plugins {
		if x.Name() == name && x.Manifest().GetHttp() {
			p = x
			break
		}
	}
	if p == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no plugin %q of agent %s serves HTTP requests", safeText(name, 60), a.Name))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("the request body is over %d bytes or could not be read", maxHookBody))
		return
	}
	req := &pb.HandleHTTPRequest{AgentId: a.ID, Method: r.Method, Path: "/" + r.PathValue("path"), RawQuery: r.URL.RawQuery,
		Headers: map[string]string{}, Body: body, RemoteAddr: r.RemoteAddr}
	for k, v := range r.Header {
		if !hopHeaders[k] && !hookCredentials[k] {
			req.Headers[k] = strings.Join(v, ", ")
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), contract.DefaultCallTimeout)
	defer cancel()
	c, err := p.conn(ctx)
	var res *pb.HandleHTTPResponse
	if err == nil {
		res, err = c.plugin.HandleHTTP(ctx, req)
		if err != nil {
			err = p.callErr(c, "HandleHTTP", err)
		}
	}
	if err != nil {
		// The caller (a platform) retries on a 5xx: nothing is lost while
		// the plugin restarts.
		a.log.Warn("hook request failed", "plugin", p.Name(), "path", req.Path, "error", err)
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, "PLUGIN_UNAVAILABLE", fmt.Sprintf("plugin %s could not answer: %v", p.Name(), err))
		return
	}
	h := w.Header()
	for k, v := range res.GetHeaders() {
		if k = http.CanonicalHeaderKey(k); hookResponseHeaders[k] {
			h.Set(k, v)
		}
	}
	// Unset, Go would sniff the type from the body: HTML included.
	h.Set("Content-Type", inertContentType(h.Get("Content-Type")))
	h.Set("Content-Security-Policy", hookSandbox)
	code := int(res.GetStatus())
	if code == 0 {
		code = http.StatusOK
	}
	if code < 100 || code > 599 {
		code = http.StatusBadGateway
	}
	w.WriteHeader(code)
	_, _ = w.Write(res.GetBody())
}

// sendOnce delivers content through a plugin's SendMessage. When the plugin
// dies with the message in hand, the delivery goes again, with the same
// delivery id, to its restarted process: the plugin tells a repeat from a
// new message by that id, so the message is neither lost nor sent twice.
func (p *PluginProcess) sendOnce(ctx context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	for tries := 0; ; tries++ {
		res, err := c.plugin.SendMessage(ctx, req)
		if err == nil {
			return res, nil
		}
		err = p.callErr(c, "SendMessage", err)
		if !errors.Is(err, ErrPluginCrashed) || tries == 2 {
			return nil, err
		}
		next, cerr := p.replacement(ctx, c)
		if cerr != nil {
			return nil, fmt.Errorf("%w; it did not come back in time: %v", err, cerr)
		}
		p.log.Info("sending again through the restarted plugin", "delivery", req.GetDeliveryId())
		c = next
	}
}

// replacement waits for a process of the plugin other than dead.
func (p *PluginProcess) replacement(ctx context.Context, dead *pluginConn) (*pluginConn, error) {
	for {
		c, err := p.conn(ctx)
		if err != nil {
			return nil, err
		}
		if c != dead {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
