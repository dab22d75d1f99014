package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/agenthost/agenthost/host/cluster"
	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
)

// The daemon's side of a cluster (package cluster says how one works).
// Without AGENTHOST_NATS_URL d.cl is nil and none of this runs.

// clusterState is what the daemon keeps for its cluster node.
type clusterState struct {
	mu sync.Mutex
	// wanted: the stored agents that are enabled, which run somewhere.
	wanted map[string]bool
	// resync coalesces re-reads of the stored agents.
	resyncing, again bool
	// done is closed when the daemon stops.
	done chan struct{}
	// inHand are the stream's messages being handled here, by agent and
	// message id.
	inHand map[[2]string]chan struct{}
}

// begin marks a message in hand; first is false when it is in hand
// already, and done is closed when that one ends.
func (c *clusterState) begin(agentID, msgID string) (done chan struct{}, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{agentID, msgID}
	if ch, ok := c.inHand[k]; ok {
		return ch, false
	}
	if c.inHand == nil {
		c.inHand = map[[2]string]chan struct{}{}
	}
	ch := make(chan struct{})
	c.inHand[k] = ch
	return ch, true
}

func (c *clusterState) end(agentID, msgID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{agentID, msgID}
	if ch, ok := c.inHand[k]; ok {
		close(ch)
		delete(c.inHand, k)
	}
}

// clusterHost is the daemon as its cluster node sees it (cluster.Host).
type clusterHost struct{ d *Daemon }

func (h clusterHost) Wanted() []string                         { return h.d.clusterWanted() }
func (h clusterHost) Run(ctx context.Context, id string) error { return h.d.clusterRun(ctx, id) }
func (h clusterHost) Halt(id string)                           { h.d.clusterHalt(id) }
func (h clusterHost) Resync()                                  { h.d.clusterResync() }
func (h clusterHost) Forwarded(m *nats.Msg) *nats.Msg          { return h.d.clusterForwarded(m) }
func (h clusterHost) Event(data []byte)                        { h.d.clusterEvent(data) }
func (h clusterHost) Failed() []string                         { return h.d.clusterFailed() }
func (h clusterHost) HandleMessage(ctx context.Context, id string, data []byte, redelivered bool) ([]byte, error) {
	return h.d.clusterMessage(ctx, id, data, redelivered)
}

// forwardedHeader names the node that forwarded a request, for the log.
const forwardedHeader = "Agenthost-Forwarded"

// forwardedKey marks the context of a request another node forwarded: it
// is served here or refused as moved, never forwarded again. (A context
// value, not a header: a client cannot set it.)
type forwardedKey struct{}

// movedStatus answers a forwarded request for an agent this node no
// longer holds: the forwarding node looks for the new holder.
const movedStatus = http.StatusMisdirectedRequest

// clusterWanted lists the agents that should run somewhere.
func (d *Daemon) clusterWanted() []string {
	d.clu.mu.Lock()
	defer d.clu.mu.Unlock()
	out := make([]string, 0, len(d.clu.wanted))
	for id, ok := range d.clu.wanted {
		if ok {
			out = append(out, id)
		}
	}
	return out
}

func (d *Daemon) setWanted(id string, on bool) {
	d.clu.mu.Lock()
	if on {
		d.clu.wanted[id] = true
	} else {
		delete(d.clu.wanted, id)
	}
	d.clu.mu.Unlock()
}

func (d *Daemon) isWanted(id string) bool {
	d.clu.mu.Lock()
	defer d.clu.mu.Unlock()
	return d.clu.wanted[id]
}

// clusterRun starts an agent whose lease this node took, from its stored record.
func (d *Daemon) clusterRun(ctx context.Context, id string) error {
	_, c, err := d.storeConn(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, contract.DefaultCallTimeout)
	res, err := c.db.GetAgent(cctx, &pb.GetAgentRequest{Id: id})
	cancel()
	if err != nil {
		return fmt.Errorf("read the stored agent %s: %w", id, err)
	}
	rec := res.GetAgent()
	if rec == nil || !rec.GetEnabled() {
		return fmt.Errorf("agent %s is not stored enabled", id)
	}
	ch, err := d.storedCharacter(rec)
	if err != nil {
		return err
	}
	if old := d.agentByID(id); old == nil {
		if idle, err := d.newIdleAgent(ch); err == nil {
			d.addAgent(idle)
		}
	}
	_, err = d.startCharacter(ctx, ch, rec)
	if err != nil {
		return err
	}
	d.api.agentChanged(d.agentByID(id))
	return nil
}

// clusterFailed lists the agents held here that failed to start.
func (d *Daemon) clusterFailed() []string {
	var out []string
	for _, a := range d.Agents() {
		if st, _ := a.Status(); st == AgentFailed && d.cl.Holds(a.ID) {
			out = append(out, a.ID)
		}
	}
	return out
}

// clusterHalt stops an agent here at once: its lease is lost or handed over.
func (d *Daemon) clusterHalt(id string) {
	a := d.agentByID(id)
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.stopAgent(ctx, a)
}

// clusterResync re-reads the stored agents after a change on another node:
// agents created there are listed here, removed ones go, changed
// characters are taken, and the enabled ones are wanted.
func (d *Daemon) clusterResync() {
	d.clu.mu.Lock()
	if d.clu.resyncing {
		d.clu.again = true
		d.clu.mu.Unlock()
		return
	}
	d.clu.resyncing = true
	d.clu.mu.Unlock()
	for {
		if err := d.resyncOnce(context.Background()); err != nil {
			d.log.Warn("could not re-read the stored agents", "error", err)
		}
		d.clu.mu.Lock()
		if !d.clu.again {
			d.clu.resyncing = false
			d.clu.mu.Unlock()
			return
		}
		d.clu.again = false
		d.clu.mu.Unlock()
	}
}

func (d *Daemon) resyncOnce(ctx context.Context) error {
	// An agent created here while the stored ones are read may be missing
	// from what is read: it is not forgotten.
	d.mu.RLock()
	before := d.listings
	d.mu.RUnlock()
	stored, err := d.storedAgents(ctx)
	if err != nil {
		return err
	}
	if d.resyncRead != nil {
		d.resyncRead()
	}
	wanted := map[string]bool{}
	keep := map[string]bool{}
	for _, rec := range stored {
		keep[rec.GetId()] = true
		if rec.GetEnabled() {
			wanted[rec.GetId()] = true
		}
		cur := d.agentByID(rec.GetId())
		if cur != nil && (!cur.idle() || bytes.Equal(cur.charJSON, rec.GetCharacterJson())) {
			continue
		}
		ch, err := d.storedCharacter(rec)
		if err != nil {
			continue
		}
		if idle, err := d.newIdleAgent(ch); err == nil {
			if cur != nil {
				idle.status, idle.err = cur.Status()
			}
			d.addAgent(idle)
		}
	}
	d.clu.mu.Lock()
	d.clu.wanted = wanted
	d.clu.mu.Unlock()
	for _, a := range d.Agents() {
		if !keep[a.ID] && a.idle() && !d.cl.Holds(a.ID) && d.listedBy(a, before) {
			d.forget(a)
		}
	}
	return nil
}

// listedBy reports whether a was listed among the first n agents listed.
func (d *Daemon) listedBy(a *AgentRuntime, n uint64) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return a.listing <= n
}

// forget drops an agent from the list (removed on another node).
func (d *Daemon) forget(a *AgentRuntime) {
	d.unlist(a)
	d.api.agentRemoved(a)
}

// agentsChanged tells the other nodes to re-read the stored agents.
func (d *Daemon) agentsChanged() {
	if d.cl != nil {
		d.cl.AgentsChanged()
	}
}

// wireMessage is a message in the cluster's stream.
type wireMessage struct {
	// Kind is "api" (the API or the WebSocket, someone waits) or
	// "connector" (a connector handed it over).
	Kind string `json:"kind"`
	// Request is the connector's ReceiveMessageRequest (protojson).
	Request json.RawMessage `json:"request,omitempty"`
	// In is an API message as the daemon mapped it.
	In        *wireIncoming `json:"in,omitempty"`
	MessageID string        `json:"messageId"`
}

type wireIncoming struct {
	Source, MessageID, EntityID, RoomID, WorldID string
	ChannelID, ServerID, ThreadID                string
	Names                                        []string
	EntityMeta                                   []byte
	RoomName, WorldName, ChannelType             string
	CreatedAt                                    int64
	Content                                      json.RawMessage
	AuthorIsBot                                  bool
}

func toWire(in *incoming) *wireIncoming {
	content, _ := protojson.Marshal(in.content)
	return &wireIncoming{Source: in.source, MessageID: in.messageID, EntityID: in.entityID, RoomID: in.roomID, WorldID: in.worldID,
		ChannelID: in.channelID, ServerID: in.serverID, ThreadID: in.threadID, Names: in.names, EntityMeta: in.entityMeta,
		RoomName: in.roomName, WorldName: in.worldName, ChannelType: in.channelType, CreatedAt: in.createdAt, Content: content,
		AuthorIsBot: in.authorIsBot}
}

func (w *wireIncoming) incoming() (*incoming, error) {
	c := &pb.Content{}
	if len(w.Content) > 0 {
		if err := protojson.Unmarshal(w.Content, c); err != nil {
			return nil, err
		}
	}
	return &incoming{source: w.Source, messageID: w.MessageID, entityID: w.EntityID, roomID: w.RoomID, worldID: w.WorldID,
		channelID: w.ChannelID, serverID: w.ServerID, threadID: w.ThreadID, names: w.Names, entityMeta: w.EntityMeta,
		roomName: w.RoomName, worldName: w.WorldName, channelType: w.ChannelType, createdAt: w.CreatedAt, content: c,
		authorIsBot: w.AuthorIsBot}, nil
}

// wireAnswer is what the holder answers the node that waits.
type wireAnswer struct {
	Result *messageResult `json:"result,omitempty"`
	Status int            `json:"status,omitempty"`
	Code   string         `json:"code,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// remoteFailure is a message that failed on the node that handled it, or
// that no node could take: the API answers with its status and code.
type remoteFailure struct {
	status     int
	code, msg  string
	retryAfter int
}

func (e *remoteFailure) Error() string { return e.msg }

// clusterMessage handles a message of the cluster's stream for an agent
// held here.
func (d *Daemon) clusterMessage(ctx context.Context, id string, data []byte, redelivered bool) ([]byte, error) {
	a := d.agentByID(id)
	if a == nil {
		return nil, cluster.ErrNotHere
	}
	st, stErr := a.Status()
	if st != AgentRunning && st != AgentFailed {
		return nil, cluster.ErrNotHere
	}
	var m wireMessage
	if err := json.Unmarshal(data, &m); err != nil {
		d.log.Error("dropping an unreadable message from the cluster's stream", "agent", a.Name, "error", err)
		return mustJSON(wireAnswer{Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Error: "unreadable message"}), nil
	}
	if st == AgentFailed {
		// It failed to start here: whoever waits hears so at once; a
		// connector's message waits for a start that works.
		if m.Kind == "connector" {
			return nil, cluster.ErrNotNow
		}
		return mustJSON(wireAnswer{Status: http.StatusServiceUnavailable, Code: "AGENT_NOT_RUNNING",
			Error: fmt.Sprintf("agent %s failed to start on node %s: %v", a.Name, d.cl.ID(), stErr)}), nil
	}
	switch m.Kind {
	case "connector":
		req := &pb.ReceiveMessageRequest{}
		if err := protojson.Unmarshal(m.Request, req); err != nil {
			d.log.Error("dropping an unreadable connector message from the cluster's stream", "agent", a.Name, "error", err)
			return nil, nil
		}
		in := a.mapIncoming(req)
		in.messageID = m.MessageID
		if _, _, err := a.receive(ctx, in); err != nil {
			if st, _ := a.Status(); st != AgentRunning {
				return nil, cluster.ErrNotHere
			}
			a.log.Error("message failed", "source", in.source, "message", in.messageID, "error", err)
		}
		return nil, nil
	}
	if m.In == nil {
		return mustJSON(wireAnswer{Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Error: "message without content"}), nil
	}
	in, err := m.In.incoming()
	if err != nil {
		return mustJSON(wireAnswer{Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Error: err.Error()}), nil
	}
	// One message is handled once at a time here; a copy that comes while
	// it is in hand (sent again through another node) waits for it.
	done, first := d.clu.begin(a.ID, in.messageID)
	if !first {
		select {
		case <-done:
		case <-ctx.Done():
		}
	} else {
		defer d.clu.end(a.ID, in.messageID)
	}
	res, err := d.deliverLocal(ctx, a, in)
	if err != nil {
		if st, _ := a.Status(); st != AgentRunning {
			return nil, cluster.ErrNotHere
		}
		code, errCode, msg := messageFailure(a, err)
		return mustJSON(wireAnswer{Status: code, Code: errCode, Error: msg}), nil
	}
	if res.Duplicate {
		// Handled before (by a node that died before it acknowledged, or
		// sent again): the replies it got then are the answer.
		var recorded bool
		res.Replies, recorded = d.storedAnswer(ctx, a, in.roomID, in.messageID)
		res.Duplicate = len(res.Replies) == 0
		res.Restored = !res.Duplicate
		if !recorded && first {
			// Stored, but neither answered nor ignored: the node that
			// stored it died (or stopped the agent) in the middle. It
			// is not in hand anywhere now (this node holds the lease
			// and has no other copy in hand), so it is answered now,
			// once.
			a.log.Info("answering a message that a failed node stored but did not answer", "message", in.messageID, "redelivered", redelivered)
			if err := d.forgetUnanswered(ctx, a, in.messageID); err != nil {
				a.log.Warn("could not clear the unanswered message; it stays unanswered", "message", in.messageID, "error", err)
			} else if again, err := d.deliverLocal(ctx, a, in); err == nil {
				res = again
			}
		}
	}
	return mustJSON(wireAnswer{Result: res}), nil
}

// clusterDeliver hands an API message to the cluster's stream and waits
// for the answer of the agent's node.
func (d *Daemon) clusterDeliver(ctx context.Context, a *AgentRuntime, in *incoming) (*messageResult, error) {
	if _, ok := d.cl.Holder(a.ID); !ok {
		if !d.isWanted(a.ID) {
			return nil, &remoteFailure{status: http.StatusServiceUnavailable, code: "AGENT_NOT_RUNNING",
				msg: fmt.Sprintf("agent %s is stopped; start it with POST /api/agents/%s/start", a.Name, a.ID)}
		}
		if _, ok := d.cl.WaitHolder(ctx, a.ID, "", func() bool { return d.isWanted(a.ID) }); !ok {
			if !d.isWanted(a.ID) {
				return nil, &remoteFailure{status: http.StatusServiceUnavailable, code: "AGENT_NOT_RUNNING",
					msg: fmt.Sprintf("agent %s was stopped; start it with POST /api/agents/%s/start", a.Name, a.ID)}
			}
			return nil, d.moving(a)
		}
	}
	// An agent that failed to start on its node is answered so by that
	// node, which knows best.
	b := mustJSON(wireMessage{Kind: "api", In: toWire(in), MessageID: in.messageID})
	start := time.Now()
	ans, _, err := d.cl.Deliver(ctx, a.ID, in.messageID, b, true)
	d.api.metrics.forwarded("message", time.Since(start))
	if err != nil {
		if errors.Is(err, cluster.ErrNoAnswer) {
			return nil, &remoteFailure{status: http.StatusGatewayTimeout, code: "TIMEOUT", retryAfter: 5,
				msg: "the message is accepted and will be handled, but its answer did not come in time; send it again with the same Idempotency-Key to read it"}
		}
		return nil, &remoteFailure{status: http.StatusServiceUnavailable, code: "CLUSTER_UNAVAILABLE", retryAfter: 2, msg: err.Error()}
	}
	var w wireAnswer
	if err := json.Unmarshal(ans, &w); err != nil {
		return nil, fmt.Errorf("the agent's node answered something unreadable: %w", err)
	}
	if w.Result == nil {
		return nil, &remoteFailure{status: w.Status, code: w.Code, msg: w.Error}
	}
	return w.Result, nil
}

func (d *Daemon) moving(a *AgentRuntime) *remoteFailure {
	return &remoteFailure{status: http.StatusServiceUnavailable, code: "AGENT_MOVING", retryAfter: 2,
		msg: fmt.Sprintf("agent %s is moving between nodes and was not running anywhere within %s; send it again in a moment", a.Name, d.cl.MoveWait())}
}

// clusterHold puts a connector's message in the cluster's stream: it is
// durable there before the connector hears "accepted".
func (d *Daemon) clusterHold(ctx context.Context, a *AgentRuntime, req *pb.ReceiveMessageRequest, id string) (dup bool, err error) {
	raw, err := protojson.Marshal(req)
	if err != nil {
		return false, err
	}
	_, dup, err = d.cl.Deliver(ctx, a.ID, id, mustJSON(wireMessage{Kind: "connector", Request: raw, MessageID: id}), false)
	return dup, err
}

// forward serves a request for an agent held by another node through
// that node. It reports whether it answered; false: serve it here.
func (d *Daemon) forward(w http.ResponseWriter, r *http.Request, a *AgentRuntime) bool {
	if d.cl.Holds(a.ID) {
		return false
	}
	if r.Context().Value(forwardedKey{}) != nil {
		writeError(w, movedStatus, "AGENT_MOVED", fmt.Sprintf("agent %s does not run on node %s", a.Name, d.cl.ID()))
		return true
	}
	holder, ok := d.cl.Holder(a.ID)
	if !ok && !d.isWanted(a.ID) {
		return false // stopped: its stopped self here answers
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, d.api.cfg.maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf("the request body is larger than %d bytes", d.api.cfg.maxBody))
		return true
	}
	start := time.Now()
	defer func() { d.api.metrics.forwarded("api", time.Since(start)) }()
	deadline := time.Now().Add(d.cl.MoveWait())
	tried := ""
	for {
		if !ok {
			holder, ok = d.cl.WaitHolder(r.Context(), a.ID, tried, func() bool { return d.isWanted(a.ID) })
			if !ok && !d.isWanted(a.ID) {
				return false // stopped meanwhile: its stopped self here answers
			}
			if !ok || time.Now().After(deadline) {
				f := d.moving(a)
				w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
				writeError(w, f.status, f.code, f.msg)
				return true
			}
		}
		if holder == d.cl.ID() {
			return false
		}
		m := &nats.Msg{Header: nats.Header{}, Data: body}
		for k, v := range r.Header {
			m.Header[k] = v
		}
		m.Header.Set("Agenthost-Method", r.Method)
		m.Header.Set("Agenthost-Uri", r.URL.RequestURI())
		m.Header.Set(forwardedHeader, d.cl.ID())
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		res, err := d.cl.Forward(ctx, holder, m)
		cancel()
		if errors.Is(err, nats.ErrMaxPayload) {
			writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf(
				"the request is too large to forward to node %s, which runs agent %s (NATS carries at most %d bytes); send it to that node", holder, a.Name, d.cl.MaxPayload()))
			return true
		}
		if err == nil && res.Header.Get("Agenthost-Status") != strconv.Itoa(movedStatus) {
			for k, v := range res.Header {
				if k != "Agenthost-Status" {
					w.Header()[k] = v
				}
			}
			code, _ := strconv.Atoi(res.Header.Get("Agenthost-Status"))
			if code == 0 {
				code = http.StatusBadGateway
			}
			w.WriteHeader(code)
			_, _ = w.Write(res.Data)
			return true
		}
		if r.Context().Err() != nil {
			return true
		}
		// The holder died or let the agent go meanwhile: look again.
		d.log.Debug("forwarding failed; waiting for the agent's new node", "agent", a.Name, "node", holder, "error", err)
		tried, ok = holder, false
	}
}

// clusterForwarded serves a request forwarded by another node, without its
// guard: that node checked the key, the rate and the host.
func (d *Daemon) clusterForwarded(m *nats.Msg) *nats.Msg {
	out := &nats.Msg{Header: nats.Header{}}
	ctx := context.WithValue(context.Background(), forwardedKey{}, m.Header.Get(forwardedHeader))
	req, err := http.NewRequestWithContext(ctx, m.Header.Get("Agenthost-Method"), m.Header.Get("Agenthost-Uri"), bytes.NewReader(m.Data))
	if err != nil {
		out.Header.Set("Agenthost-Status", strconv.Itoa(http.StatusBadRequest))
		out.Data = mustJSON(envelope{Error: &errorBody{Code: "INVALID_REQUEST", Message: err.Error()}})
		return out
	}
	for k, v := range m.Header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	d.inner.ServeHTTP(rec, req)
	for k, v := range rec.Header() {
		out.Header[k] = v
	}
	out.Header.Set("Agenthost-Status", strconv.Itoa(rec.Code))
	out.Data = rec.Body.Bytes()
	if len(out.Data)+4096 > d.cl.MaxPayload() {
		// Too large for NATS: say so rather than leave the other node
		// waiting for an answer that cannot come.
		out = &nats.Msg{Header: nats.Header{}}
		out.Header.Set("Agenthost-Status", strconv.Itoa(http.StatusBadGateway))
		out.Header.Set("Content-Type", "application/json")
		out.Data = mustJSON(envelope{Error: &errorBody{Code: "ANSWER_TOO_LARGE", Message: fmt.Sprintf(
			"the answer is %d bytes, more than NATS carries between nodes; ask node %s (%s) directly, or ask for less (count, limit)", rec.Body.Len(), d.cl.ID(), d.Addr())}})
	}
	return out
}

// clusterEvent delivers a room event published by another node to the
// WebSocket clients here.
func (d *Daemon) clusterEvent(data []byte) {
	var ev struct {
		AgentID string         `json:"agentId"`
		RoomID  string         `json:"roomId"`
		Event   map[string]any `json:"event"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.Event == nil {
		return
	}
	d.api.hub.localRoomEvent(ev.AgentID, ev.RoomID, ev.Event)
}

// agentNode is the node that runs an agent, "" when none does.
func (d *Daemon) agentNode(a *AgentRuntime) string {
	if d.cl == nil {
		return ""
	}
	if h, ok := d.cl.Holder(a.ID); ok {
		return h
	}
	return ""
}

// clusterStatus is the status of an agent as the cluster sees it: that
// of the agent here when this node holds it, "running" on another node,
// "starting" while it is wanted and nowhere yet.
func (d *Daemon) clusterStatus(a *AgentRuntime, st AgentStatus) (AgentStatus, string) {
	node := d.agentNode(a)
	switch {
	case node == "" && d.isWanted(a.ID) && st != AgentFailed:
		return AgentStarting, ""
	case node != "" && node != d.cl.ID() && d.cl.HolderFailed(a.ID):
		return AgentFailed, node
	case node != "" && node != d.cl.ID():
		return AgentRunning, node
	case node != "" && st == AgentStopped && d.isWanted(a.ID):
		return AgentStarting, node // taken here, not started yet
	}
	return st, node
}

// handleCluster is GET /api/cluster: the live nodes and where each agent
// runs.
func (d *Daemon) handleCluster(w http.ResponseWriter, r *http.Request) {
	if d.cl == nil {
		writeError(w, http.StatusNotFound, "NOT_A_CLUSTER", "this daemon runs alone: set AGENTHOST_NATS_URL (and POSTGRES_URL) to make it a cluster node")
		return
	}
	type nodeJSON struct {
		ID       string    `json:"id"`
		Address  string    `json:"address"`
		Agents   int       `json:"agents"`
		LastSeen time.Time `json:"lastSeen"`
	}
	type agentJSON struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Node string `json:"node"`
	}
	nodes := []nodeJSON{}
	for _, n := range d.cl.Members() {
		nodes = append(nodes, nodeJSON{ID: n.ID, Address: n.Address, Agents: n.Agents, LastSeen: n.LastSeen})
	}
	agents := []agentJSON{}
	for _, a := range d.Agents() {
		agents = append(agents, agentJSON{ID: a.ID, Name: a.Name, Node: d.agentNode(a)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes, "agents": agents})
}

// openCluster connects the node; the daemon listens already.
func (d *Daemon) openCluster(ctx context.Context) error {
	cfg := *d.cfg.Cluster
	cfg.Address = d.Addr()
	n, err := cluster.Open(ctx, cfg, clusterHost{d}, d.log)
	if err != nil {
		return err
	}
	d.cl = n
	return nil
}

// clusterStart lists the stored and configured agents (the configured
// ones stored enabled) and joins the cluster, which places them.
func (d *Daemon) clusterStart(ctx context.Context, chars []*sdk.Character, stored []*pb.Agent) error {
	wanted := map[string]bool{}
	for _, ch := range chars {
		a, err := d.newIdleAgent(ch)
		if err != nil {
			return err
		}
		if err := d.checkPlugins(ch); err != nil {
			return err
		}
		if err := d.storeAgent(ctx, a, true); err != nil {
			return fmt.Errorf("store agent %s: %w", ch.Name, err)
		}
		d.addAgent(a)
		wanted[a.ID] = true
	}
	for _, ps := range d.storedToStart(stored, chars) {
		a, err := d.newIdleAgent(ps.ch)
		if err != nil {
			continue
		}
		d.addAgent(a)
		if !ps.idle {
			wanted[a.ID] = true
		}
	}
	d.clu.mu.Lock()
	d.clu.wanted = wanted
	d.clu.mu.Unlock()
	if err := d.cl.Join(); err != nil {
		return err
	}
	d.agentsChanged()
	go d.resyncEvery()
	return nil
}

// resyncEvery re-reads the stored agents now and then: a change whose
// notice a node missed (NATS was away) is seen all the same.
func (d *Daemon) resyncEvery() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-d.clu.done:
			return
		case <-t.C:
			d.clusterResync()
		}
	}
}

// placeWanted makes a stored enabled agent wanted, tells the cluster and
// waits for it to be placed. The caller holds the lifecycle lock, which
// the wait lets go: this node may be the one that starts it.
func (d *Daemon) placeWanted(ctx context.Context, a *AgentRuntime) *AgentRuntime {
	d.setWanted(a.ID, true)
	d.agentsChanged()
	d.cl.Poke()
	d.api.life.Unlock()
	defer d.api.life.Lock()
	return d.waitPlaced(ctx, a)
}

// waitPlaced waits, MoveWait at most, until the agent runs on some node,
// and returns it as it then is.
func (d *Daemon) waitPlaced(ctx context.Context, a *AgentRuntime) *AgentRuntime {
	d.cl.WaitHolder(ctx, a.ID, "", nil)
	// The holder may be this node, starting it.
	if now := d.agentByID(a.ID); now != nil {
		if now.placeholder() {
			select {
			case <-now.started:
			case <-ctx.Done():
			}
		}
		if b := d.agentByID(a.ID); b != nil {
			return b
		}
	}
	return a
}

// forgetUnanswered deletes a stored message that has no reply.
func (d *Daemon) forgetUnanswered(ctx context.Context, a *AgentRuntime, id string) error {
	p, c, err := a.db(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, contract.DefaultCallTimeout)
	defer cancel()
	if _, err := c.db.DeleteMemory(cctx, &pb.DeleteMemoryRequest{AgentId: a.ID, Id: id}); err != nil {
		return p.callErr(c, "DeleteMemory", err)
	}
	return nil
}
