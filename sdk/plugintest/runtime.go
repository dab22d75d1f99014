package plugintest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Runtime is an in-memory stand-in for the host's Runtime service. Plugins
// started with [Start] reach it through their *sdk.Agent: memories,
// entities, rooms, worlds, logs and cache live in memory; Respond,
// SendMessage, EmitEvent and ReceiveMessage are recorded for the test to
// inspect; ComposeState, ProcessActions and Evaluate call back into the
// plugins started with this Runtime, as the host does, so a plugin such as
// bootstrap can be tested alone.
//
// The zero value is ready to use. Set the function fields before Start.
// A Runtime is safe for concurrent use.
type Runtime struct {
	pb.UnimplementedRuntimeServer

	// Model answers UseModel, and StreamModel in one piece. When it is
	// nil, the model handler with the highest priority among the plugins
	// started with this Runtime answers; when there is none, the call fails
	// with "plugintest: no model configured".
	Model func(ctx context.Context, req sdk.ModelRequest) (*sdk.ModelResponse, error)

	mu          sync.Mutex
	seq         int64
	plugins     []*boundPlugin
	settings    map[string]map[string]string
	memories    []*storedMemory
	entities    map[[2]string]sdk.Entity
	rooms       map[[2]string]sdk.Room
	roomOrder   [][2]string
	worlds      map[[2]string]sdk.World
	members     map[[2]string][]string
	partState   map[[3]string]string
	cache       map[[2]string]cacheEntry
	logs        []sdk.LogEntry
	responses   []sdk.Content
	sent        []SentMessage
	events      []sdk.Event
	received    []sdk.IncomingMessage
	modelCalls  []sdk.ModelRequest
	receivedIDs map[[2]string]bool
}

// SentMessage is one SendMessage call a plugin made to the host.
type SentMessage struct {
	Target  sdk.Target
	Content sdk.Content
}

type boundPlugin struct {
	pc   pb.PluginClient
	m    *pb.Manifest
	logf func(format string, args ...any)
}

type storedMemory struct {
	agentID string
	seq     int64
	m       sdk.Memory
}

type cacheEntry struct {
	value   []byte
	expires time.Time
}

var _ pb.RuntimeServer = (*Runtime)(nil)

// bind makes the Runtime call back into a plugin; the returned func undoes
// it.
func (r *Runtime) bind(pc pb.PluginClient, m *pb.Manifest, logf func(string, ...any)) func() {
	b := &boundPlugin{pc: pc, m: m, logf: logf}
	r.mu.Lock()
	r.plugins = append(r.plugins, b)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.plugins = slices.DeleteFunc(r.plugins, func(x *boundPlugin) bool { return x == b })
	}
}

func (r *Runtime) bound() []*boundPlugin {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.plugins)
}

func (r *Runtime) setSettings(agentID string, s map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.settings == nil {
		r.settings = map[string]map[string]string{}
	}
	r.settings[agentID] = s
}

// Memories returns every stored memory, of every agent, in the order they
// were stored.
func (r *Runtime) Memories() []sdk.Memory {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]sdk.Memory, len(r.memories))
	for i, s := range r.memories {
		out[i] = s.m
	}
	return out
}

// AddMemory stores m for an agent as CreateMemory does, to seed a test. It
// returns the memory's id.
func (r *Runtime) AddMemory(agentID string, m sdk.Memory) string {
	id, _ := r.createMemory(agentID, m, m.Table, m.Unique)
	return id
}

// Logs returns the log entries plugins added, in order.
func (r *Runtime) Logs() []sdk.LogEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.logs)
}

// Responses returns the contents plugins sent with Respond, in order.
func (r *Runtime) Responses() []sdk.Content {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.responses)
}

// Sent returns the messages plugins sent with SendMessage, in order.
func (r *Runtime) Sent() []SentMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

// Events returns the events plugins emitted, in order. They are recorded,
// not delivered.
func (r *Runtime) Events() []sdk.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Received returns the incoming messages connectors handed over with
// ReceiveMessage, in order. They are recorded, not handled.
func (r *Runtime) Received() []sdk.IncomingMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.received)
}

// ModelCalls returns every UseModel request, in order.
func (r *Runtime) ModelCalls() []sdk.ModelRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.modelCalls)
}

func (r *Runtime) next() int64 {
	r.seq++
	return r.seq
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// UseModel answers with Model, or with a plugin's model handler.
func (r *Runtime) UseModel(ctx context.Context, req *pb.ModelRequest) (*pb.ModelResponse, error) {
	mr := modelRequestFromProto(req)
	r.mu.Lock()
	r.modelCalls = append(r.modelCalls, mr)
	r.mu.Unlock()
	if r.Model != nil {
		res, err := r.Model(ctx, mr)
		if err != nil {
			return nil, status.Convert(err).Err()
		}
		return modelResponseToProto(res), nil
	}
	best := r.modelPlugin(req)
	if best == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "plugintest: no model configured for %s: set Runtime.Model", req.GetType())
	}
	res, err := best.pc.UseModel(ctx, req)
	if err != nil {
		return nil, err
	}
	res.Provider = best.m.GetName()
	return res, nil
}

// StreamModel answers like UseModel: Model's answer comes as one text
// chunk, a plugin's model streams as the plugin streams it.
func (r *Runtime) StreamModel(req *pb.ModelRequest, stream pb.Runtime_StreamModelServer) error {
	ctx := stream.Context()
	mr := modelRequestFromProto(req)
	r.mu.Lock()
	r.modelCalls = append(r.modelCalls, mr)
	r.mu.Unlock()
	if r.Model != nil {
		res, err := r.Model(ctx, mr)
		if err != nil {
			return status.Convert(err).Err()
		}
		final := modelResponseToProto(res)
		if final.GetText() != "" {
			if err := stream.Send(&pb.ModelChunk{Text: final.GetText()}); err != nil {
				return err
			}
		}
		return stream.Send(&pb.ModelChunk{Final: final})
	}
	best := r.modelPlugin(req)
	if best == nil {
		return status.Errorf(codes.FailedPrecondition, "plugintest: no model configured for %s: set Runtime.Model", req.GetType())
	}
	in, err := best.pc.StreamModel(ctx, req)
	if err != nil {
		return err
	}
	for {
		chunk, err := in.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return status.Errorf(codes.Internal, "plugintest: the model stream of %s ended without a final answer", best.m.GetName())
			}
			return err
		}
		if f := chunk.GetFinal(); f != nil {
			f.Provider = best.m.GetName()
		}
		if err := stream.Send(chunk); err != nil {
			return err
		}
		if chunk.GetFinal() != nil {
			return nil
		}
	}
}

// modelPlugin is the plugin with the highest priority for the request's
// model type, or the one the request names.
func (r *Runtime) modelPlugin(req *pb.ModelRequest) *boundPlugin {
	var best *boundPlugin
	bestPriority := int32(math.MinInt32)
	for _, b := range r.bound() {
		if req.GetProvider() != "" && req.GetProvider() != b.m.GetName() {
			continue
		}
		for _, m := range b.m.GetModels() {
			if m.GetType() == req.GetType() && (best == nil || m.GetPriority() > bestPriority) {
				best, bestPriority = b, m.GetPriority()
			}
		}
	}
	return best
}

type selectedProvider struct {
	plugin *boundPlugin
	spec   *pb.ProviderSpec
}

// ComposeState runs the providers of the plugins started with this
// Runtime, one call per plugin, and merges the results in position order,
// as the host does.
func (r *Runtime) ComposeState(ctx context.Context, req *pb.ComposeStateRequest) (*pb.State, error) {
	include := map[string]bool{}
	for _, n := range req.GetInclude() {
		include[n] = true
	}
	var selected []selectedProvider
	plugins := r.bound()
	for _, b := range plugins {
		for _, p := range b.m.GetProviders() {
			if include[p.GetName()] || (!req.GetOnlyInclude() && !p.GetDynamic() && !p.GetPrivate()) {
				selected = append(selected, selectedProvider{b, p})
			}
		}
	}
	sort.SliceStable(selected, func(i, j int) bool { return selected[i].spec.GetPosition() < selected[j].spec.GetPosition() })

	results := map[*pb.ProviderSpec]*pb.ProviderResult{}
	for _, b := range plugins {
		var names []string
		specs := map[string]*pb.ProviderSpec{}
		for _, s := range selected {
			if s.plugin == b {
				names = append(names, s.spec.GetName())
				specs[s.spec.GetName()] = s.spec
			}
		}
		if len(names) == 0 {
			continue
		}
		res, err := b.pc.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: req.GetAgentId(), Names: names,
			Message: req.GetMessage(), RunId: req.GetRunId()})
		if err != nil {
			b.logf("plugintest: ComposeState: providers %s of %s failed: %v", strings.Join(names, ","), b.m.GetName(), err)
			continue
		}
		for _, pr := range res.GetResults() {
			if pr.GetError() != "" {
				b.logf("plugintest: ComposeState: provider %s failed: %s", pr.GetName(), pr.GetError())
				continue
			}
			if spec := specs[pr.GetName()]; spec != nil {
				results[spec] = pr
			}
		}
	}

	values := map[string]any{}
	var actionNames []string
	actionsText := "# Available Actions"
	for _, b := range plugins {
		for _, a := range b.m.GetActions() {
			actionNames = append(actionNames, a.GetName())
			actionsText += fmt.Sprintf("\n- %s: %s", a.GetName(), a.GetDescription())
		}
	}
	if len(actionNames) > 0 {
		values["actionNames"] = strings.Join(actionNames, ", ")
		values["actionsText"] = actionsText
	}
	providers := map[string]any{}
	var texts []string
	for _, s := range selected {
		pr := results[s.spec]
		if pr == nil {
			continue
		}
		if strings.TrimSpace(pr.GetText()) != "" {
			texts = append(texts, pr.GetText())
		}
		entry := map[string]any{"text": pr.GetText()}
		if v := decode(pr.GetValuesJson()); v != nil {
			for k, x := range v {
				values[k] = x
			}
			entry["values"] = v
		}
		if d := decode(pr.GetDataJson()); d != nil {
			entry["data"] = d
		}
		providers[s.spec.GetName()] = entry
	}
	text := strings.Join(texts, "\n\n")
	values["providers"] = text
	return &pb.State{ValuesJson: encode(values), DataJson: encode(map[string]any{"providers": providers}), Text: text}, nil
}

// ProcessActions runs the actions the responses name, in order, each
// result handed to the next. Names match as the host matches them: case,
// spaces, dashes and underscores aside. An unknown or failing action is a
// failed outcome and the chain goes on.
func (r *Runtime) ProcessActions(ctx context.Context, req *pb.ProcessActionsRequest) (*pb.ProcessActionsResponse, error) {
	out := &pb.ProcessActionsResponse{}
	plugins := r.bound()
	for _, resp := range req.GetResponses() {
		for _, name := range resp.GetContent().GetActions() {
			b, spec := findAction(plugins, name)
			if spec == nil {
				out.Results = append(out.Results, &pb.ActionOutcome{Name: name,
					Result: &pb.ActionResult{Error: fmt.Sprintf("plugintest: no action named %q", name)}})
				continue
			}
			res, err := b.pc.RunAction(ctx, &pb.RunActionRequest{AgentId: req.GetAgentId(), Name: spec.GetName(),
				Message: req.GetMessage(), State: req.GetState(), Responses: []*pb.Memory{resp}, RunId: req.GetRunId(),
				Previous: slices.Clone(out.Results)})
			result := res.GetResult()
			if err != nil {
				result = &pb.ActionResult{Error: fmt.Sprintf("action %s: %v", spec.GetName(), err)}
			} else if result == nil {
				result = &pb.ActionResult{Success: true}
			}
			out.Results = append(out.Results, &pb.ActionOutcome{Name: spec.GetName(), Result: result})
		}
	}
	return out, nil
}

func findAction(plugins []*boundPlugin, name string) (*boundPlugin, *pb.ActionSpec) {
	for _, exact := range []bool{true, false} {
		for _, b := range plugins {
			for _, a := range b.m.GetActions() {
				if a.GetName() == name || (!exact && normalize(a.GetName()) == normalize(name)) {
					return b, a
				}
			}
		}
	}
	return nil, nil
}

func normalize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(s)))
}

// Evaluate runs the evaluators of the plugins started with this Runtime,
// one call per plugin: all of them after a response, only the AlwaysRun
// ones otherwise.
func (r *Runtime) Evaluate(ctx context.Context, req *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	out := &pb.EvaluateResponse{}
	for _, b := range r.bound() {
		var names []string
		for _, e := range b.m.GetEvaluators() {
			if req.GetDidRespond() || e.GetAlwaysRun() {
				names = append(names, e.GetName())
			}
		}
		if len(names) == 0 {
			continue
		}
		res, err := b.pc.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: req.GetAgentId(), Names: names,
			Message: req.GetMessage(), State: req.GetState(), DidRespond: req.GetDidRespond(),
			Responses: req.GetResponses(), RunId: req.GetRunId()})
		if err != nil {
			for _, n := range names {
				out.Outcomes = append(out.Outcomes, &pb.EvaluatorOutcome{Name: n, Error: err.Error()})
			}
			continue
		}
		out.Outcomes = append(out.Outcomes, res.GetOutcomes()...)
	}
	return out, nil
}

// EmitEvent records the event.
func (r *Runtime) EmitEvent(_ context.Context, req *pb.EmitEventRequest) (*pb.EmitEventResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, sdk.Event{Type: req.GetType(), RunID: req.GetRunId(), Source: req.GetSource(),
		Message: memoryFromProto(req.GetMessage()), Payload: decode(req.GetPayloadJson())})
	return &pb.EmitEventResponse{}, nil
}

// ReceiveMessage records the message and answers with the agent-scoped
// ids the host would use. A message id seen before is a duplicate.
func (r *Runtime) ReceiveMessage(_ context.Context, req *pb.ReceiveMessageRequest) (*pb.ReceiveMessageResponse, error) {
	agent := req.GetAgentId()
	in := sdk.IncomingMessage{Source: req.GetSource(), MessageID: req.GetMessageId(), ChannelID: req.GetChannelId(),
		ServerID: req.GetServerId(), UserID: req.GetUserId(), UserName: req.GetUserName(), DisplayName: req.GetDisplayName(),
		ThreadID: req.GetThreadId(), InReplyTo: req.GetInReplyTo(), Content: contentFromProto(req.GetContent()),
		ChannelType: sdk.ChannelType(req.GetChannelType()), RoomName: req.GetRoomName(), WorldName: req.GetWorldName(),
		CreatedAt: req.GetCreatedAt(), Wait: req.GetWait()}
	scoped := func(id string) string {
		if id == "" {
			return ""
		}
		return sdk.CreateUniqueUUID(agent, id)
	}
	res := &pb.ReceiveMessageResponse{MemoryId: scoped(in.MessageID), RoomId: scoped(in.ChannelID),
		WorldId: scoped(in.ServerID), EntityId: scoped(in.UserID), RunId: newID()}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received = append(r.received, in)
	if in.MessageID != "" {
		if r.receivedIDs == nil {
			r.receivedIDs = map[[2]string]bool{}
		}
		key := [2]string{agent, in.Source + "\x00" + in.MessageID}
		res.Duplicate = r.receivedIDs[key]
		r.receivedIDs[key] = true
	}
	return res, nil
}

// Respond records the content.
func (r *Runtime) Respond(_ context.Context, req *pb.RespondRequest) (*pb.RespondResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responses = append(r.responses, contentFromProto(req.GetContent()))
	return &pb.RespondResponse{MessageIds: []string{fmt.Sprintf("response-%d", len(r.responses))}}, nil
}

// SendMessage records the message; it is not routed to any plugin.
func (r *Runtime) SendMessage(_ context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, SentMessage{Target: targetFromProto(req.GetTarget()), Content: contentFromProto(req.GetContent())})
	return &pb.SendMessageResponse{MessageIds: []string{fmt.Sprintf("sent-%d", len(r.sent))}}, nil
}

// GetSettings returns the settings the agent was configured with.
func (r *Runtime) GetSettings(_ context.Context, req *pb.GetSettingsRequest) (*pb.GetSettingsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &pb.GetSettingsResponse{Settings: r.settings[req.GetAgentId()]}, nil
}

func (r *Runtime) createMemory(agentID string, m sdk.Memory, table string, unique bool) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.ID == "" {
		m.ID = newID()
	}
	for _, s := range r.memories {
		if s.agentID == agentID && s.m.ID == m.ID {
			return m.ID, false
		}
	}
	if m.AgentID == "" {
		m.AgentID = agentID
	}
	if table != "" {
		m.Table = table
	}
	if m.Table == "" {
		m.Table = sdk.TableMessages
	}
	m.Unique = m.Unique || unique
	if m.CreatedAt == 0 {
		m.CreatedAt = time.Now().UnixMilli()
	}
	m.Similarity = 0
	r.memories = append(r.memories, &storedMemory{agentID: agentID, seq: r.next(), m: m})
	return m.ID, true
}

// CreateMemory stores a memory; an id stored before is left as it is and
// reported with created=false. A memory without id gets one, without
// CreatedAt gets now, and without table goes to "messages".
func (r *Runtime) CreateMemory(_ context.Context, req *pb.CreateMemoryRequest) (*pb.CreateMemoryResponse, error) {
	if req.GetMemory() == nil {
		return nil, status.Error(codes.InvalidArgument, "plugintest: CreateMemory: memory is missing")
	}
	id, created := r.createMemory(req.GetAgentId(), *memoryFromProto(req.GetMemory()), req.GetTable(), req.GetUnique())
	return &pb.CreateMemoryResponse{Id: id, Created: created}, nil
}

// GetMemories returns an agent's memories, newest first, filtered by the
// request's table, rooms, entity, world, unique flag and time range. Count
// 0 means all of them.
func (r *Runtime) GetMemories(_ context.Context, req *pb.GetMemoriesRequest) (*pb.MemoriesResponse, error) {
	rooms := map[string]bool{}
	for _, id := range req.GetRoomIds() {
		rooms[id] = true
	}
	if req.GetRoomId() != "" {
		rooms[req.GetRoomId()] = true
	}
	r.mu.Lock()
	var found []*storedMemory
	for _, s := range r.memories {
		m := &s.m
		if s.agentID != req.GetAgentId() || (req.GetTable() != "" && m.Table != req.GetTable()) ||
			(len(rooms) > 0 && !rooms[m.RoomID]) || (req.GetEntityId() != "" && m.EntityID != req.GetEntityId()) ||
			(req.GetWorldId() != "" && m.WorldID != req.GetWorldId()) || (req.GetUnique() && !m.Unique) ||
			(req.GetStart() != 0 && m.CreatedAt < req.GetStart()) || (req.GetEnd() != 0 && m.CreatedAt > req.GetEnd()) {
			continue
		}
		found = append(found, s)
	}
	r.mu.Unlock()
	sort.Slice(found, func(i, j int) bool {
		if found[i].m.CreatedAt != found[j].m.CreatedAt {
			return found[i].m.CreatedAt > found[j].m.CreatedAt
		}
		return found[i].seq > found[j].seq
	})
	if n := int(req.GetCount()); n > 0 && len(found) > n {
		found = found[:n]
	}
	out := &pb.MemoriesResponse{}
	for _, s := range found {
		out.Memories = append(out.Memories, memoryToProto(&s.m))
	}
	return out, nil
}

// GetMemoriesByIDs returns the memories with these ids that exist, in the
// order of the ids.
func (r *Runtime) GetMemoriesByIDs(_ context.Context, req *pb.GetMemoriesByIDsRequest) (*pb.MemoriesResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.MemoriesResponse{}
	for _, id := range req.GetIds() {
		for _, s := range r.memories {
			if s.agentID == req.GetAgentId() && s.m.ID == id && (req.GetTable() == "" || s.m.Table == req.GetTable()) {
				out.Memories = append(out.Memories, memoryToProto(&s.m))
				break
			}
		}
	}
	return out, nil
}

// SearchMemories returns the memories whose embeddings are most similar
// (by cosine) to the request's, at least Threshold, most similar first.
func (r *Runtime) SearchMemories(_ context.Context, req *pb.SearchMemoriesRequest) (*pb.MemoriesResponse, error) {
	type hit struct {
		m   sdk.Memory
		sim float64
	}
	var hits []hit
	r.mu.Lock()
	for _, s := range r.memories {
		m := s.m
		if s.agentID != req.GetAgentId() || len(m.Embedding) == 0 || len(m.Embedding) != len(req.GetEmbedding()) ||
			(req.GetTable() != "" && m.Table != req.GetTable()) || (req.GetRoomId() != "" && m.RoomID != req.GetRoomId()) ||
			(req.GetWorldId() != "" && m.WorldID != req.GetWorldId()) || (req.GetEntityId() != "" && m.EntityID != req.GetEntityId()) ||
			(req.GetUnique() && !m.Unique) {
			continue
		}
		if sim := cosine(m.Embedding, req.GetEmbedding()); sim >= req.GetThreshold() {
			hits = append(hits, hit{m, sim})
		}
	}
	r.mu.Unlock()
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].sim > hits[j].sim })
	if n := int(req.GetCount()); n > 0 && len(hits) > n {
		hits = hits[:n]
	}
	out := &pb.MemoriesResponse{}
	for _, h := range hits {
		h.m.Similarity = h.sim
		out.Memories = append(out.Memories, memoryToProto(&h.m))
	}
	return out, nil
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / (math.Sqrt(na) * math.Sqrt(nb))
}

// DeleteMemory deletes one memory of the agent.
func (r *Runtime) DeleteMemory(_ context.Context, req *pb.DeleteMemoryRequest) (*pb.DeleteMemoryResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.memories)
	r.memories = slices.DeleteFunc(r.memories, func(s *storedMemory) bool {
		return s.agentID == req.GetAgentId() && s.m.ID == req.GetId()
	})
	return &pb.DeleteMemoryResponse{Deleted: int64(n - len(r.memories))}, nil
}

// CountMemories counts an agent's memories by room, table and unique flag.
func (r *Runtime) CountMemories(_ context.Context, req *pb.CountMemoriesRequest) (*pb.CountMemoriesResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, s := range r.memories {
		if s.agentID == req.GetAgentId() && (req.GetRoomId() == "" || s.m.RoomID == req.GetRoomId()) &&
			(req.GetTable() == "" || s.m.Table == req.GetTable()) && (!req.GetUnique() || s.m.Unique) {
			n++
		}
	}
	return &pb.CountMemoriesResponse{Count: n}, nil
}

func (r *Runtime) initMaps() {
	if r.entities == nil {
		r.entities = map[[2]string]sdk.Entity{}
		r.rooms = map[[2]string]sdk.Room{}
		r.worlds = map[[2]string]sdk.World{}
		r.members = map[[2]string][]string{}
		r.partState = map[[3]string]string{}
		r.cache = map[[2]string]cacheEntry{}
	}
}

// mergeEntity adds e's names and metadata keys to the stored entity.
func (r *Runtime) mergeEntity(agentID string, e sdk.Entity) {
	key := [2]string{agentID, e.ID}
	old, ok := r.entities[key]
	if !ok {
		r.entities[key] = e
		return
	}
	for _, n := range e.Names {
		if !slices.Contains(old.Names, n) {
			old.Names = append(old.Names, n)
		}
	}
	if len(e.Metadata) > 0 && old.Metadata == nil {
		old.Metadata = map[string]any{}
	}
	for k, v := range e.Metadata {
		old.Metadata[k] = v
	}
	r.entities[key] = old
}

func (r *Runtime) upsertRoom(agentID string, room sdk.Room) {
	key := [2]string{agentID, room.ID}
	if _, ok := r.rooms[key]; !ok {
		r.roomOrder = append(r.roomOrder, key)
	}
	r.rooms[key] = room
}

func (r *Runtime) join(agentID, roomID, entityID string) {
	key := [2]string{agentID, roomID}
	if entityID != "" && !slices.Contains(r.members[key], entityID) {
		r.members[key] = append(r.members[key], entityID)
	}
}

// EnsureConnection stores the world, room and entity and makes the entity
// and the agent participants of the room. Parts without an id are skipped.
func (r *Runtime) EnsureConnection(_ context.Context, req *pb.EnsureConnectionRequest) (*pb.EnsureConnectionResponse, error) {
	agent := req.GetAgentId()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	if w := req.GetWorld(); w.GetId() != "" {
		r.worlds[[2]string{agent, w.GetId()}] = worldFromProto(w)
	}
	if e := req.GetEntity(); e.GetId() != "" {
		r.mergeEntity(agent, entityFromProto(e))
	}
	if room := req.GetRoom(); room.GetId() != "" {
		r.upsertRoom(agent, roomFromProto(room))
		r.join(agent, room.GetId(), req.GetEntity().GetId())
		r.join(agent, room.GetId(), agent)
	}
	return &pb.EnsureConnectionResponse{}, nil
}

// GetEntities returns the entities with these ids that exist, in order.
func (r *Runtime) GetEntities(_ context.Context, req *pb.GetEntitiesRequest) (*pb.GetEntitiesResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.GetEntitiesResponse{}
	for _, id := range req.GetIds() {
		if e, ok := r.entities[[2]string{req.GetAgentId(), id}]; ok {
			out.Entities = append(out.Entities, entityToProto(&e))
		}
	}
	return out, nil
}

// UpsertEntities creates or replaces entities.
func (r *Runtime) UpsertEntities(_ context.Context, req *pb.UpsertEntitiesRequest) (*pb.UpsertEntitiesResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	for _, e := range req.GetEntities() {
		if e.GetId() == "" {
			return nil, status.Error(codes.InvalidArgument, "plugintest: UpsertEntities: an entity has no id")
		}
		r.entities[[2]string{req.GetAgentId(), e.GetId()}] = entityFromProto(e)
	}
	return &pb.UpsertEntitiesResponse{}, nil
}

// GetRooms returns rooms by ids (in order), or else the rooms of a
// participant or of a world, in the order they were stored.
func (r *Runtime) GetRooms(_ context.Context, req *pb.GetRoomsRequest) (*pb.GetRoomsResponse, error) {
	agent := req.GetAgentId()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.GetRoomsResponse{}
	if len(req.GetIds()) > 0 {
		for _, id := range req.GetIds() {
			if room, ok := r.rooms[[2]string{agent, id}]; ok {
				out.Rooms = append(out.Rooms, roomToProto(&room))
			}
		}
		return out, nil
	}
	for _, key := range r.roomOrder {
		room := r.rooms[key]
		if key[0] != agent || (req.GetWorldId() != "" && room.WorldID != req.GetWorldId()) ||
			(req.GetParticipantId() != "" && !slices.Contains(r.members[key], req.GetParticipantId())) {
			continue
		}
		out.Rooms = append(out.Rooms, roomToProto(&room))
	}
	return out, nil
}

// GetWorlds returns the worlds with these ids that exist, in order.
func (r *Runtime) GetWorlds(_ context.Context, req *pb.GetWorldsRequest) (*pb.GetWorldsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.GetWorldsResponse{}
	for _, id := range req.GetIds() {
		if w, ok := r.worlds[[2]string{req.GetAgentId(), id}]; ok {
			out.Worlds = append(out.Worlds, worldToProto(&w))
		}
	}
	return out, nil
}

// UpsertWorld creates or replaces a world.
func (r *Runtime) UpsertWorld(_ context.Context, req *pb.UpsertWorldRequest) (*pb.UpsertWorldResponse, error) {
	if req.GetWorld().GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "plugintest: UpsertWorld: the world has no id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	r.worlds[[2]string{req.GetAgentId(), req.GetWorld().GetId()}] = worldFromProto(req.GetWorld())
	return &pb.UpsertWorldResponse{}, nil
}

// GetParticipants returns the entity ids of a room's participants, in the
// order they joined.
func (r *Runtime) GetParticipants(_ context.Context, req *pb.GetParticipantsRequest) (*pb.GetParticipantsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &pb.GetParticipantsResponse{EntityIds: slices.Clone(r.members[[2]string{req.GetAgentId(), req.GetRoomId()}])}, nil
}

// GetParticipantState returns what SetParticipantState stored, or "".
func (r *Runtime) GetParticipantState(_ context.Context, req *pb.ParticipantStateRequest) (*pb.ParticipantStateResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &pb.ParticipantStateResponse{State: r.partState[[3]string{req.GetAgentId(), req.GetRoomId(), req.GetEntityId()}]}, nil
}

// SetParticipantState stores a participant's state.
func (r *Runtime) SetParticipantState(_ context.Context, req *pb.ParticipantStateRequest) (*pb.ParticipantStateResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	r.partState[[3]string{req.GetAgentId(), req.GetRoomId(), req.GetEntityId()}] = req.GetState()
	return &pb.ParticipantStateResponse{State: req.GetState()}, nil
}

// AddLog records a log entry and returns its id.
func (r *Runtime) AddLog(_ context.Context, req *pb.AddLogRequest) (*pb.AddLogResponse, error) {
	l := logFromProto(req.GetLog())
	if l.ID == "" {
		l.ID = newID()
	}
	if l.CreatedAt == 0 {
		l.CreatedAt = time.Now().UnixMilli()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, l)
	return &pb.AddLogResponse{Id: l.ID}, nil
}

// GetCache returns a value SetCache stored, unless it expired.
func (r *Runtime) GetCache(_ context.Context, req *pb.GetCacheRequest) (*pb.GetCacheResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[[2]string{req.GetAgentId(), req.GetKey()}]
	if !ok || (!e.expires.IsZero() && time.Now().After(e.expires)) {
		return &pb.GetCacheResponse{}, nil
	}
	return &pb.GetCacheResponse{Value: e.value, Found: true}, nil
}

// SetCache stores a value; a TTL of 0 means no expiry.
func (r *Runtime) SetCache(_ context.Context, req *pb.SetCacheRequest) (*pb.SetCacheResponse, error) {
	e := cacheEntry{value: slices.Clone(req.GetValue())}
	if req.GetTtlMs() > 0 {
		e.expires = time.Now().Add(time.Duration(req.GetTtlMs()) * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	r.cache[[2]string{req.GetAgentId(), req.GetKey()}] = e
	return &pb.SetCacheResponse{}, nil
}
