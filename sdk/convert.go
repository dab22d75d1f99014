package sdk

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk/internal/wire"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
)

// The functions in this file convert between the SDK's plain types and the
// protocol's messages. They are the only place protobuf types meet author
// code. Each accepts nil and returns the zero value.

// validUTF8 replaces invalid UTF-8 so that protobuf never refuses to marshal
// text that a model or a platform produced.
func validUTF8(s string) string { return contract.ValidUTF8(s) }

func validUTF8s(ss []string) []string {
	for i, s := range ss {
		if !utf8.ValidString(s) {
			out := make([]string, len(ss))
			copy(out, ss)
			for j := i; j < len(ss); j++ {
				out[j] = validUTF8(ss[j])
			}
			return out
		}
	}
	return ss
}

func encodeMap(m map[string]any) []byte {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		// A value that cannot be encoded (a channel, a func) is the
		// caller's bug; keep the rest of the message flowing.
		b, _ = json.Marshal(map[string]any{"_encodeError": err.Error()})
	}
	return b
}

func decodeMap(b []byte) map[string]any {
	if len(b) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return map[string]any{"_decodeError": err.Error()}
	}
	return m
}

func mediaToProto(ms []Media) []*pb.Media {
	if len(ms) == 0 {
		return nil
	}
	out := make([]*pb.Media, len(ms))
	for i, m := range ms {
		out[i] = &pb.Media{Id: validUTF8(m.ID), Url: validUTF8(m.URL), Title: validUTF8(m.Title), Source: validUTF8(m.Source),
			Description: validUTF8(m.Description), Text: validUTF8(m.Text), ContentType: validUTF8(m.ContentType)}
	}
	return out
}

func mediaFromProto(ms []*pb.Media) []Media {
	if len(ms) == 0 {
		return nil
	}
	out := make([]Media, len(ms))
	for i, m := range ms {
		out[i] = Media{ID: m.GetId(), URL: m.GetUrl(), Title: m.GetTitle(), Source: m.GetSource(),
			Description: m.GetDescription(), Text: m.GetText(), ContentType: m.GetContentType()}
	}
	return out
}

func contentToProto(c *Content) *pb.Content {
	if c == nil {
		return nil
	}
	return &pb.Content{
		Text: validUTF8(c.Text), Thought: validUTF8(c.Thought), Actions: validUTF8s(c.Actions),
		Providers: validUTF8s(c.Providers), Source: validUTF8(c.Source), Target: validUTF8(c.Target), Url: validUTF8(c.URL),
		InReplyTo: validUTF8(c.InReplyTo), Attachments: mediaToProto(c.Attachments), ChannelType: validUTF8(string(c.ChannelType)),
		ExtraJson: encodeMap(c.Extra),
	}
}

func contentFromProto(c *pb.Content) Content {
	if c == nil {
		return Content{}
	}
	return Content{
		Text: c.GetText(), Thought: c.GetThought(), Actions: c.GetActions(), Providers: c.GetProviders(),
		Source: c.GetSource(), Target: c.GetTarget(), URL: c.GetUrl(), InReplyTo: c.GetInReplyTo(),
		Attachments: mediaFromProto(c.GetAttachments()), ChannelType: ChannelType(c.GetChannelType()),
		Extra: decodeMap(c.GetExtraJson()),
	}
}

func memoryToProto(m *Memory) *pb.Memory {
	if m == nil {
		return nil
	}
	return &pb.Memory{
		Id: m.ID, EntityId: m.EntityID, AgentId: m.AgentID, RoomId: m.RoomID, WorldId: m.WorldID,
		CreatedAt: m.CreatedAt, Content: contentToProto(&m.Content), Embedding: m.Embedding,
		Unique: m.Unique, Similarity: m.Similarity, MetadataJson: encodeMap(m.Metadata), Table: m.Table,
	}
}

func memoryFromProto(m *pb.Memory) *Memory {
	if m == nil {
		return nil
	}
	return &Memory{
		ID: m.GetId(), EntityID: m.GetEntityId(), AgentID: m.GetAgentId(), RoomID: m.GetRoomId(),
		WorldID: m.GetWorldId(), CreatedAt: m.GetCreatedAt(), Content: contentFromProto(m.GetContent()),
		Embedding: m.GetEmbedding(), Unique: m.GetUnique(), Similarity: m.GetSimilarity(),
		Metadata: decodeMap(m.GetMetadataJson()), Table: m.GetTable(),
	}
}

func memoriesToProto(ms []Memory) []*pb.Memory {
	if len(ms) == 0 {
		return nil
	}
	out := make([]*pb.Memory, len(ms))
	for i := range ms {
		out[i] = memoryToProto(&ms[i])
	}
	return out
}

func memoriesFromProto(ms []*pb.Memory) []Memory {
	if len(ms) == 0 {
		return nil
	}
	out := make([]Memory, len(ms))
	for i, m := range ms {
		out[i] = *memoryFromProto(m)
	}
	return out
}

func entityToProto(e *Entity) *pb.Entity {
	if e == nil {
		return nil
	}
	return &pb.Entity{Id: e.ID, Names: validUTF8s(e.Names), MetadataJson: encodeMap(e.Metadata), AgentId: e.AgentID}
}

func entityFromProto(e *pb.Entity) Entity {
	if e == nil {
		return Entity{}
	}
	return Entity{ID: e.GetId(), Names: e.GetNames(), Metadata: decodeMap(e.GetMetadataJson()), AgentID: e.GetAgentId()}
}

func worldToProto(w *World) *pb.World {
	if w == nil {
		return nil
	}
	return &pb.World{Id: w.ID, Name: validUTF8(w.Name), AgentId: w.AgentID, ServerId: w.ServerID, MetadataJson: encodeMap(w.Metadata)}
}

func worldFromProto(w *pb.World) World {
	if w == nil {
		return World{}
	}
	return World{ID: w.GetId(), Name: w.GetName(), AgentID: w.GetAgentId(), ServerID: w.GetServerId(), Metadata: decodeMap(w.GetMetadataJson())}
}

func roomToProto(r *Room) *pb.Room {
	if r == nil {
		return nil
	}
	return &pb.Room{Id: r.ID, Name: validUTF8(r.Name), AgentId: r.AgentID, Source: r.Source, Type: string(r.Type),
		ChannelId: r.ChannelID, ServerId: r.ServerID, WorldId: r.WorldID, MetadataJson: encodeMap(r.Metadata)}
}

func roomFromProto(r *pb.Room) Room {
	if r == nil {
		return Room{}
	}
	return Room{ID: r.GetId(), Name: r.GetName(), AgentID: r.GetAgentId(), Source: r.GetSource(),
		Type: ChannelType(r.GetType()), ChannelID: r.GetChannelId(), ServerID: r.GetServerId(),
		WorldID: r.GetWorldId(), Metadata: decodeMap(r.GetMetadataJson())}
}

func stateToProto(s *State) *pb.State {
	if s == nil {
		return nil
	}
	return &pb.State{ValuesJson: encodeMap(s.Values), DataJson: encodeMap(s.Data), Text: validUTF8(s.Text)}
}

func stateFromProto(s *pb.State) *State {
	st := &State{Values: map[string]any{}, Data: map[string]any{}}
	if s == nil {
		return st
	}
	if v := decodeMap(s.GetValuesJson()); v != nil {
		st.Values = v
	}
	if d := decodeMap(s.GetDataJson()); d != nil {
		st.Data = d
	}
	st.Text = s.GetText()
	return st
}

func targetToProto(t *Target) *pb.Target {
	return &pb.Target{Source: t.Source, RoomId: t.RoomID, ChannelId: t.ChannelID, ServerId: t.ServerID, EntityId: t.EntityID, ThreadId: t.ThreadID}
}

func targetFromProto(t *pb.Target) Target {
	return Target{Source: t.GetSource(), RoomID: t.GetRoomId(), ChannelID: t.GetChannelId(), ServerID: t.GetServerId(), EntityID: t.GetEntityId(), ThreadID: t.GetThreadId()}
}

func actionResultToProto(r *ActionResult) *pb.ActionResult {
	return &pb.ActionResult{Success: r.Success, Text: validUTF8(r.Text), ValuesJson: encodeMap(r.Values), DataJson: encodeMap(r.Data), Error: validUTF8(r.Error)}
}

func actionResultFromProto(r *pb.ActionResult) ActionResult {
	return ActionResult{Success: r.GetSuccess(), Text: r.GetText(), Values: decodeMap(r.GetValuesJson()), Data: decodeMap(r.GetDataJson()), Error: r.GetError()}
}

func outcomesFromProto(os []*pb.ActionOutcome) []ActionOutcome {
	if len(os) == 0 {
		return nil
	}
	out := make([]ActionOutcome, len(os))
	for i, o := range os {
		out[i] = ActionOutcome{Name: o.GetName(), Result: actionResultFromProto(o.GetResult())}
	}
	return out
}

func outcomesToProto(os []ActionOutcome) []*pb.ActionOutcome {
	if len(os) == 0 {
		return nil
	}
	out := make([]*pb.ActionOutcome, len(os))
	for i := range os {
		out[i] = &pb.ActionOutcome{Name: os[i].Name, Result: actionResultToProto(&os[i].Result)}
	}
	return out
}

func modelRequestToProto(agentID string, r *ModelRequest) *pb.ModelRequest {
	var params []byte
	if len(r.Params) > 0 {
		params = encodeMap(r.Params)
	}
	return &pb.ModelRequest{
		AgentId: agentID, Type: r.Type, RunId: r.RunID, Prompt: validUTF8(r.Prompt), System: validUTF8(r.System),
		Temperature: r.Temperature, MaxTokens: int32(r.MaxTokens), StopSequences: validUTF8s(r.StopSequences),
		FrequencyPenalty: r.FrequencyPenalty, PresencePenalty: r.PresencePenalty, Text: validUTF8(r.Text),
		Probe: r.Probe, ParamsJson: params, Provider: r.Provider,
	}
}

func modelRequestFromProto(r *pb.ModelRequest) *ModelRequest {
	return &ModelRequest{
		Type: r.GetType(), RunID: r.GetRunId(), Prompt: r.GetPrompt(), System: r.GetSystem(),
		Temperature: r.Temperature, MaxTokens: int(r.GetMaxTokens()), StopSequences: r.GetStopSequences(),
		FrequencyPenalty: r.FrequencyPenalty, PresencePenalty: r.PresencePenalty, Text: r.GetText(),
		Probe: r.GetProbe(), Params: decodeMap(r.GetParamsJson()), Provider: r.GetProvider(),
	}
}

func modelResponseToProto(r *ModelResponse) *pb.ModelResponse {
	if r == nil {
		return &pb.ModelResponse{}
	}
	return &pb.ModelResponse{
		Text: validUTF8(r.Text), Embedding: r.Embedding, Json: r.JSON, Data: r.Data, ContentType: r.ContentType,
		Usage: &pb.Usage{PromptTokens: int32(r.Usage.PromptTokens), CompletionTokens: int32(r.Usage.CompletionTokens), TotalTokens: int32(r.Usage.TotalTokens)},
		Model: r.Model, Provider: r.Provider,
	}
}

func modelResponseFromProto(r *pb.ModelResponse) *ModelResponse {
	u := r.GetUsage()
	return &ModelResponse{
		Text: r.GetText(), Embedding: r.GetEmbedding(), JSON: r.GetJson(), Data: r.GetData(), ContentType: r.GetContentType(),
		Usage: Usage{PromptTokens: int(u.GetPromptTokens()), CompletionTokens: int(u.GetCompletionTokens()), TotalTokens: int(u.GetTotalTokens())},
		Model: r.GetModel(), Provider: r.GetProvider(),
	}
}

// conversions hands the functions of this file to sdk/storage (whose
// calls convert the sdk's types too), sdk/dbplugin and sdk/plugintest,
// which plays the host's side of the wire (see sdk/internal/wire).
type conversions struct{}

func init() { wire.Conversions = conversions{} }

func (conversions) NewGRPCServer(p Plugin, log hclog.Logger, opts ...grpc.ServerOption) (*grpc.Server, error) {
	return newGRPCServer(p, log, opts...)
}

// WithDatabase makes p serve the Database service that register registers
// (see sdk/dbplugin.Plugin).
func (conversions) WithDatabase(p Plugin, register func(*grpc.Server)) Plugin {
	p.database = register
	return p
}

// NewAgent is an agent whose storage calls go to db, for tests of the
// storage path without a host.
func (conversions) NewAgent(id string, db pb.DatabaseClient) *Agent { return &Agent{ID: id, db: db} }

// Database is the client of a's storage calls (sdk/storage), nil when a
// has no host.
func (conversions) Database(a *Agent) pb.DatabaseClient { return a.db }

func (conversions) ValidUTF8(s string) string       { return validUTF8(s) }
func (conversions) ValidUTF8s(ss []string) []string { return validUTF8s(ss) }

func (conversions) ParseCharacter(file string, data []byte) (*Character, error) {
	return parseCharacter(file, data)
}

func (conversions) ContentToProto(c *Content) *pb.Content      { return contentToProto(c) }
func (conversions) ContentFromProto(c *pb.Content) Content     { return contentFromProto(c) }
func (conversions) MemoryToProto(m *Memory) *pb.Memory         { return memoryToProto(m) }
func (conversions) MemoryFromProto(m *pb.Memory) *Memory       { return memoryFromProto(m) }
func (conversions) MemoriesToProto(ms []Memory) []*pb.Memory   { return memoriesToProto(ms) }
func (conversions) MemoriesFromProto(ms []*pb.Memory) []Memory { return memoriesFromProto(ms) }
func (conversions) StateToProto(s *State) *pb.State            { return stateToProto(s) }
func (conversions) ActionResultFromProto(r *pb.ActionResult) ActionResult {
	return actionResultFromProto(r)
}
func (conversions) TargetToProto(t *Target) *pb.Target  { return targetToProto(t) }
func (conversions) TargetFromProto(t *pb.Target) Target { return targetFromProto(t) }
func (conversions) EntityToProto(e *Entity) *pb.Entity  { return entityToProto(e) }
func (conversions) EntityFromProto(e *pb.Entity) Entity { return entityFromProto(e) }
func (conversions) RoomToProto(r *Room) *pb.Room        { return roomToProto(r) }
func (conversions) RoomFromProto(r *pb.Room) Room       { return roomFromProto(r) }
func (conversions) WorldToProto(w *World) *pb.World     { return worldToProto(w) }
func (conversions) WorldFromProto(w *pb.World) World    { return worldFromProto(w) }
func (conversions) EncodeMap(m map[string]any) []byte   { return encodeMap(m) }
func (conversions) DecodeMap(b []byte) map[string]any   { return decodeMap(b) }

func (conversions) ModelRequestToProto(agentID string, r *ModelRequest) *pb.ModelRequest {
	return modelRequestToProto(agentID, r)
}

func (conversions) ModelRequestFromProto(r *pb.ModelRequest) *ModelRequest {
	return modelRequestFromProto(r)
}

func (conversions) ModelResponseToProto(r *ModelResponse) *pb.ModelResponse {
	return modelResponseToProto(r)
}

func (conversions) ModelResponseFromProto(r *pb.ModelResponse) *ModelResponse {
	return modelResponseFromProto(r)
}
