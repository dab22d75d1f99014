package host

import (
	"context"
	"net/http"
	"strings"
	"time"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// metrics are the daemon's Prometheus series. Each daemon has its own
// registry, so that several daemons in one process (tests) do not collide.
type metrics struct {
	reg *prometheus.Registry

	messages    *prometheus.CounterVec
	replies     *prometheus.CounterVec
	runs        *prometheus.HistogramVec
	modelCalls  *prometheus.CounterVec
	modelTokens *prometheus.CounterVec
	modelTime   *prometheus.HistogramVec
	rpc         *prometheus.HistogramVec
	runtime     *prometheus.CounterVec
	db          *prometheus.HistogramVec
	httpReqs    *prometheus.CounterVec
	httpTime    *prometheus.HistogramVec
	wsConns     prometheus.Gauge
	rateLimited prometheus.Counter
	forwards    *prometheus.HistogramVec
}

// rpcBuckets span a local gRPC hop (~100µs) to a slow model call (minutes).
var rpcBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

func newMetrics(d *Daemon) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{reg: reg}
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agenthost_messages_handled_total",
		Help: "Messages handled by agents (one run each), by agent, source and outcome (completed, error).",
	}, []string{"agent", "source", "status"})
	m.replies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agenthost_replies_total",
		Help: "Replies sent by agents, by agent and source.",
	}, []string{"agent", "source"})
	m.runs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agenthost_run_duration_seconds",
		Help:    "Time from a message's arrival to the end of its run, by agent and outcome.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	}, []string{"agent", "status"})
	m.modelCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agenthost_model_calls_total",
		Help: "Model calls, by the plugin that served them, model type and outcome (ok, error).",
	}, []string{"plugin", "type", "status"})
	m.modelTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agenthost_model_tokens_total",
		Help: "Tokens used by model calls as the model plugin reported them, by plugin, model type and kind (prompt, completion).",
	}, []string{"plugin", "type", "kind"})
	m.modelTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agenthost_model_call_duration_seconds",
		Help:    "Duration of model calls, by plugin and model type.",
		Buckets: rpcBuckets,
	}, []string{"plugin", "type"})
	m.rpc = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agenthost_plugin_rpc_duration_seconds",
		Help:    "Latency of the host's gRPC calls to plugin processes, by plugin, method and gRPC status code.",
		Buckets: rpcBuckets,
	}, []string{"plugin", "method", "code"})
	m.runtime = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agenthost_runtime_calls_total",
		Help: "Calls plugin processes made to the host (Runtime and storage calls), by calling plugin and method.",
	}, []string{"plugin", "method"})
	m.db = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agenthost_database_call_duration_seconds",
		Help:    "Latency of calls to the database plugin, by plugin, method and gRPC status code.",
		Buckets: rpcBuckets,
	}, []string{"plugin", "method", "code"})
	m.httpReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agenthost_http_requests_total",
		Help: "HTTP requests served, by route pattern and status code.",
	}, []string{"route", "code"})
	m.httpTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agenthost_http_request_duration_seconds",
		Help:    "Duration of HTTP requests, by route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	m.wsConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "agenthost_websocket_connections",
		Help: "Open WebSocket connections.",
	})
	m.rateLimited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agenthost_http_rate_limited_total",
		Help: "Requests refused by the per-client rate limit.",
	})
	m.forwards = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agenthost_cluster_forwarded_duration_seconds",
		Help:    "Requests this node sent to the node that runs their agent, and how long the answer took, by kind (message: through the stream; api: any other request). Its _count is the number of forwarded requests.",
		Buckets: rpcBuckets,
	}, []string{"kind"})
	reg.MustRegister(m.messages, m.replies, m.runs, m.modelCalls, m.modelTokens, m.modelTime, m.rpc, m.runtime, m.db,
		m.httpReqs, m.httpTime, m.wsConns, m.rateLimited, m.forwards,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "agenthost_cluster_leases_held",
			Help: "Agent leases this cluster node holds (0 outside a cluster)."}, func() float64 {
			if d.cl == nil {
				return 0
			}
			return float64(d.cl.LeasesHeld())
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "agenthost_cluster_handovers_total",
			Help: "Agents this node handed over to another (a node joined, or this one stopped)."}, func() float64 {
			if d.cl == nil {
				return 0
			}
			return float64(d.cl.Stats.Handovers.Load())
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "agenthost_cluster_fenced_total",
			Help: "Agents this node stopped because it could not renew their leases in time (NATS unreachable)."}, func() float64 {
			if d.cl == nil {
				return 0
			}
			return float64(d.cl.Stats.Fenced.Load())
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "agenthost_cluster_leases_acquired_total",
			Help: "Agent leases this node took (an agent started here)."}, func() float64 {
			if d.cl == nil {
				return 0
			}
			return float64(d.cl.Stats.Acquired.Load())
		}),
		&pluginCollector{d: d},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// pluginDialOptions are the interceptors on the host's connection to one
// plugin: every call is timed by plugin and method, and the database
// plugin's calls are also counted as database calls.
func (m *metrics) pluginDialOptions(plugin string) []grpc.DialOption {
	if m == nil {
		return nil
	}
	observe := func(method string, start time.Time, err error) {
		took := time.Since(start).Seconds()
		code := status.Code(err).String()
		service, name := splitMethod(method)
		m.rpc.WithLabelValues(plugin, name, code).Observe(took)
		if service == "Database" {
			m.db.WithLabelValues(plugin, name, code).Observe(took)
		}
	}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		observe(method, start, err)
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		// A stream is timed to its opening; what follows is the plugin's
		// work, which the model metrics measure.
		start := time.Now()
		s, err := streamer(ctx, desc, cc, method, opts...)
		observe(method, start, err)
		return s, err
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}
}

// runtimeCall counts one call a plugin made to the host.
func (m *metrics) runtimeCall(plugin, method string) {
	if m != nil {
		m.runtime.WithLabelValues(plugin, method).Inc()
	}
}

// splitMethod turns /agenthost.plugin.v1.Database/GetMemories into
// (Database, GetMemories).
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	svc, method, ok := strings.Cut(full, "/")
	if !ok {
		return "", full
	}
	if i := strings.LastIndexByte(svc, '.'); i >= 0 {
		svc = svc[i+1:]
	}
	return svc, method
}

func (m *metrics) modelCall(plugin, typ string, res *pb.ModelResponse, err error, took time.Duration) {
	if m == nil {
		return
	}
	st := "ok"
	if err != nil {
		st = "error"
	}
	m.modelCalls.WithLabelValues(plugin, typ, st).Inc()
	m.modelTime.WithLabelValues(plugin, typ).Observe(took.Seconds())
	if u := res.GetUsage(); u != nil {
		if n := u.GetPromptTokens(); n > 0 {
			m.modelTokens.WithLabelValues(plugin, typ, "prompt").Add(float64(n))
		}
		if n := u.GetCompletionTokens(); n > 0 {
			m.modelTokens.WithLabelValues(plugin, typ, "completion").Add(float64(n))
		}
	}
}

func (m *metrics) runFinished(agent, source string, err error, took time.Duration) {
	if m == nil {
		return
	}
	st := "completed"
	if err != nil {
		st = "error"
	}
	if source == "" {
		source = "unknown"
	}
	m.messages.WithLabelValues(agent, source, st).Inc()
	m.runs.WithLabelValues(agent, st).Observe(took.Seconds())
}

func (m *metrics) reply(agent, source string) {
	if m == nil {
		return
	}
	if source == "" {
		source = "unknown"
	}
	m.replies.WithLabelValues(agent, source).Inc()
}

// pluginCollector reads the plugins' restarts and states when scraped, so
// that supervision needs no hook.
type pluginCollector struct{ d *Daemon }

var (
	pluginRestartsDesc = prometheus.NewDesc("agenthost_plugin_restarts_total",
		"Restarts of a plugin process by the host's supervision since the host started.", []string{"plugin"}, nil)
	pluginStateDesc = prometheus.NewDesc("agenthost_plugin_state",
		"1 for the state each plugin is in (stopped, starting, running, restarting, failed), 0 for the others.", []string{"plugin", "state"}, nil)
	agentsDesc = prometheus.NewDesc("agenthost_agents",
		"Agents by status.", []string{"status"}, nil)
)

func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pluginRestartsDesc
	ch <- pluginStateDesc
	ch <- agentsDesc
}

func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	if c.d.mgr == nil {
		return
	}
	states := []PluginState{StateStopped, StateStarting, StateRunning, StateRestarting, StateFailed}
	for _, p := range c.d.mgr.Plugins() {
		ch <- prometheus.MustNewConstMetric(pluginRestartsDesc, prometheus.CounterValue, float64(p.Restarts()), p.Name())
		cur, _ := p.State()
		for _, s := range states {
			v := 0.0
			if s == cur {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(pluginStateDesc, prometheus.GaugeValue, v, p.Name(), string(s))
		}
	}
	counts := map[AgentStatus]int{AgentStarting: 0, AgentRunning: 0, AgentStopped: 0, AgentFailed: 0}
	for _, a := range c.d.Agents() {
		st, _ := a.Status()
		counts[st]++
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(n), string(st))
	}
}

// forwarded records a request served by the agent's node for this one.
func (m *metrics) forwarded(kind string, took time.Duration) {
	if m == nil {
		return
	}
	m.forwards.WithLabelValues(kind).Observe(took.Seconds())
}
