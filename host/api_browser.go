package host

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The daemon is reached by browsers: the operator's, on which any web page
// may run script. These rules keep a foreign page from driving the API,
// with or without an API key:
//
//   - Host: a request must name the daemon by localhost, a loopback
//     address, the address it listens on (any address of the machine when
//     it listens on all of them) or a name in AGENTHOST_ALLOWED_HOSTS. A
//     DNS-rebinding page reaches the daemon under its own host name, which
//     is none of these. The port is not checked: proxies change it, and
//     the name is what a rebinding page cannot fake.
//   - Origin: a request that carries one (browsers send it on every
//     cross-origin request and on every POST, PATCH and DELETE) must come
//     from the daemon's own origin (Origin's host is the request's Host)
//     or one in AGENTHOST_CORS_ORIGINS. The WebSocket upgrade is checked
//     the same way.
//   - Content-Type: a POST, PUT, PATCH or DELETE must say
//     application/json, which a page can only send cross-origin after a
//     CORS preflight. The one exception is a request with no body, no
//     Content-Type and no Origin (`curl -X POST …/start`): no browser
//     sends that, and it has nothing to smuggle.
//
// /hooks/* are for platforms, not browsers: they keep the Host rule only,
// and what they answer is made inert instead (hooks.go).

// browserSafe applies the rules; it returns false when it has answered.
func (s *apiState) browserSafe(w http.ResponseWriter, r *http.Request) bool {
	if !s.hostAllowed(r.Host) {
		writeError(w, http.StatusForbidden, "HOST_NOT_ALLOWED", fmt.Sprintf(
			"Host %q does not name this daemon, so the request is refused (a web page on another name must not reach it); "+
				"to reach the daemon by that name, e.g. behind a reverse proxy, add it to AGENTHOST_ALLOWED_HOSTS", safeText(r.Host, 100)))
		return false
	}
	if strings.HasPrefix(r.URL.Path, "/hooks/") {
		return true
	}
	return s.cors(w, r) && contentTypeOK(w, r)
}

// cors answers cross-origin requests: those from the configured origins
// get the CORS headers (and their preflight), those from any other origin
// are refused. It returns false when it has answered.
func (s *apiState) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin == "" {
		return true
	}
	same, listed := s.originAllowed(origin, r.Host)
	if !same && !listed {
		writeError(w, http.StatusForbidden, "ORIGIN_FORBIDDEN", fmt.Sprintf(
			"origin %q may not call this daemon; allow it with AGENTHOST_CORS_ORIGINS", safeText(origin, 100)))
		return false
	}
	if listed {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, X-API-KEY, Authorization, Idempotency-Key")
		h.Set("Access-Control-Max-Age", "600")
	}
	if preflight {
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}

// originAllowed says whether an Origin is the daemon's own (its host is
// the request's Host) or one the operator listed.
func (s *apiState) originAllowed(origin, host string) (same, listed bool) {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
		return false, false
	}
	strip := func(h string) string {
		h = strings.ToLower(h)
		if u.Scheme == "http" {
			return strings.TrimSuffix(h, ":80")
		}
		return strings.TrimSuffix(h, ":443")
	}
	if strip(u.Host) == strip(host) {
		return true, false
	}
	if s.cfg.corsAny {
		return false, true
	}
	for _, o := range s.cfg.corsOrigins {
		if strings.EqualFold(o, origin) {
			return false, true
		}
	}
	return false, false
}

// contentTypeOK holds state-changing requests to application/json; it
// returns false when it has answered.
func contentTypeOK(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 && r.Header.Get("Origin") == "" {
		return true
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return true
	}
	got := "none"
	if ct != "" {
		got = fmt.Sprintf("%q", safeText(ct, 80))
	}
	writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", fmt.Sprintf(
		"%s requests must send Content-Type: application/json (got %s)", r.Method, got))
	return false
}

// listenAddr is where the daemon listens, for the Host rule: set once by
// Start, before it serves.
type listenAddr struct {
	ip   netip.Addr // invalid for a name
	name string     // lowercase, when the address is a name

	mu      sync.Mutex
	ifAddrs []netip.Addr
	read    time.Time
}

// set records the configured address (which may be a name) and the
// address actually listened on.
func (l *listenAddr) set(configured, actual string) {
	if h := hostOnly(configured); h != "" {
		if _, err := netip.ParseAddr(h); err != nil {
			l.name = h
		}
	}
	if ap, err := netip.ParseAddrPort(actual); err == nil {
		l.ip = ap.Addr().Unmap()
	}
}

// machineHas reports whether a is an address of one of the machine's
// interfaces; they are read again at most every 30 seconds.
func (l *listenAddr) machineHas(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.read) > 30*time.Second {
		l.read = time.Now()
		l.ifAddrs = l.ifAddrs[:0]
		addrs, _ := net.InterfaceAddrs()
		for _, x := range addrs {
			if n, ok := x.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					l.ifAddrs = append(l.ifAddrs, ip.Unmap())
				}
			}
		}
	}
	return slices.Contains(l.ifAddrs, a)
}

// hostAllowed applies the Host rule.
func (s *apiState) hostAllowed(hostport string) bool {
	if s.cfg.anyHost {
		return true
	}
	host := hostOnly(hostport)
	if host == "" {
		return false
	}
	if host == "localhost" || host == s.listen.name || slices.Contains(s.cfg.allowedHosts, host) {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return true
	case !s.listen.ip.IsValid():
		return false
	case s.listen.ip.IsUnspecified():
		return s.listen.machineHas(a)
	}
	return a == s.listen.ip
}

// hostOnly is the host of a Host header or address, lowercase, without
// port, brackets or a trailing dot.
func hostOnly(hostport string) string {
	h := strings.ToLower(strings.TrimSpace(hostport))
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end > 0 {
			h = h[1:end]
		}
	} else if strings.Count(h, ":") == 1 {
		h, _, _ = strings.Cut(h, ":")
	}
	return strings.TrimSuffix(h, ".")
}
