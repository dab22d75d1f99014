package plugintest

import (
	"encoding/json"
	"strings"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// These converters play the host's side of the wire. The SDK has its own
// (unexported) set for the plugin's side; the tests of this package send
// values through both and compare, so the two cannot drift apart unnoticed.

// valid replaces invalid UTF-8, which protobuf refuses to marshal.
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func valids(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = valid(s)
	}
	return out
}

func encode(m map[string]any) []byte {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"_encodeError": err.Error()})
	}
	return b
}

func decode(b []byte) map[string]any {
	if len(b) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return map[string]any{"_decodeError": err.Error()}
	}
	return m
}

func contentToProto(c *sdk.Content) *pb.Content {
	out := &pb.Content{Text: valid(c.Text), Thought: valid(c.Thought), Actions: valids(c.Actions),
		Providers: valids(c.Providers), Source: valid(c.Source), Target: valid(c.Target), Url: valid(c.URL),
		InReplyTo: valid(c.InReplyTo), ChannelType: valid(string(c.ChannelType)), ExtraJson: encode(c.Extra)}
	for _, m := range c.Attachments {
		out.Attachments = append(out.Attachments, &pb.Media{Id: valid(m.ID), Url: valid(m.URL), Title: valid(m.Title),
			Source: valid(m.Source), Description: valid(m.Description), Text: valid(m.Text), ContentType: valid(m.ContentType)})
	}
	return out
}

func contentFromProto(c *pb.Content) sdk.Content {
	if c == nil {
		return sdk.Content{}
	}
	out := sdk.Content{Text: c.GetText(), Thought: c.GetThought(), Actions: c.GetActions(), Providers: c.GetProviders(),
		Source: c.GetSource(), Target: c.GetTarget(), URL: c.GetUrl(), InReplyTo: c.GetInReplyTo(),
		ChannelType: sdk.ChannelType(c.GetChannelType()), Extra: decode(c.GetExtraJson())}
	for _, m := range c.GetAttachments() {
		out.Attachments = append(out.Attachments, sdk.Media{ID: m.GetId(), URL: m.GetUrl(), Title: m.GetTitle(),
			Source: m.GetSource(), Description: m.GetDescription(), Text: m.GetText(), ContentType: m.GetContentType()})
	}
	return out
}

func memoryToProto(m *sdk.Memory) *pb.Memory {
	if m == nil {
		return nil
	}
	return &pb.Memory{Id: valid(m.ID), EntityId: valid(m.EntityID), AgentId: valid(m.AgentID), RoomId: valid(m.RoomID),
		WorldId: valid(m.WorldID), CreatedAt: m.CreatedAt, Content: contentToProto(&m.Content), Embedding: m.Embedding,
		Unique: m.Unique, Similarity: m.Similarity, MetadataJson: encode(m.Metadata), Table: valid(m.Table)}
}

func memoryFromProto(m *pb.Memory) *sdk.Memory {
	if m == nil {
		return nil
	}
	return &sdk.Memory{ID: m.GetId(), EntityID: m.GetEntityId(), AgentID: m.GetAgentId(), RoomID: m.GetRoomId(),
		WorldID: m.GetWorldId(), CreatedAt: m.GetCreatedAt(), Content: contentFromProto(m.GetContent()),
		Embedding: m.GetEmbedding(), Unique: m.GetUnique(), Similarity: m.GetSimilarity(),
		Metadata: decode(m.GetMetadataJson()), Table: m.GetTable()}
}

func memoriesToProto(ms []sdk.Memory) []*pb.Memory {
	var out []*pb.Memory
	for i := range ms {
		out = append(out, memoryToProto(&ms[i]))
	}
	return out
}

func memoriesFromProto(ms []*pb.Memory) []sdk.Memory {
	var out []sdk.Memory
	for _, m := range ms {
		out = append(out, *memoryFromProto(m))
	}
	return out
}

func stateToProto(s *sdk.State) *pb.State {
	if s == nil {
		return nil
	}
	return &pb.State{ValuesJson: encode(s.Values), DataJson: encode(s.Data), Text: valid(s.Text)}
}

func stateFromProto(s *pb.State) *sdk.State {
	st := &sdk.State{Values: map[string]any{}, Data: map[string]any{}, Text: s.GetText()}
	if v := decode(s.GetValuesJson()); v != nil {
		st.Values = v
	}
	if d := decode(s.GetDataJson()); d != nil {
		st.Data = d
	}
	return st
}

func actionResultFromProto(r *pb.ActionResult) sdk.ActionResult {
	return sdk.ActionResult{Success: r.GetSuccess(), Text: r.GetText(), Values: decode(r.GetValuesJson()),
		Data: decode(r.GetDataJson()), Error: r.GetError()}
}

func targetToProto(t *sdk.Target) *pb.Target {
	return &pb.Target{Source: valid(t.Source), RoomId: valid(t.RoomID), ChannelId: valid(t.ChannelID),
		ServerId: valid(t.ServerID), EntityId: valid(t.EntityID), ThreadId: valid(t.ThreadID)}
}

func targetFromProto(t *pb.Target) sdk.Target {
	return sdk.Target{Source: t.GetSource(), RoomID: t.GetRoomId(), ChannelID: t.GetChannelId(),
		ServerID: t.GetServerId(), EntityID: t.GetEntityId(), ThreadID: t.GetThreadId()}
}

func modelRequestToProto(agentID string, r *sdk.ModelRequest) *pb.ModelRequest {
	return &pb.ModelRequest{AgentId: agentID, Type: valid(r.Type), RunId: valid(r.RunID), Prompt: valid(r.Prompt),
		System: valid(r.System), Temperature: r.Temperature, MaxTokens: int32(r.MaxTokens),
		StopSequences: valids(r.StopSequences), FrequencyPenalty: r.FrequencyPenalty, PresencePenalty: r.PresencePenalty,
		Text: valid(r.Text), Probe: r.Probe, ParamsJson: encode(r.Params), Provider: valid(r.Provider)}
}

func modelRequestFromProto(r *pb.ModelRequest) sdk.ModelRequest {
	return sdk.ModelRequest{Type: r.GetType(), RunID: r.GetRunId(), Prompt: r.GetPrompt(), System: r.GetSystem(),
		Temperature: r.Temperature, MaxTokens: int(r.GetMaxTokens()), StopSequences: r.GetStopSequences(),
		FrequencyPenalty: r.FrequencyPenalty, PresencePenalty: r.PresencePenalty, Text: r.GetText(),
		Probe: r.GetProbe(), Params: decode(r.GetParamsJson()), Provider: r.GetProvider()}
}

func modelResponseToProto(r *sdk.ModelResponse) *pb.ModelResponse {
	if r == nil {
		return &pb.ModelResponse{}
	}
	return &pb.ModelResponse{Text: valid(r.Text), Embedding: r.Embedding, Json: r.JSON, Data: r.Data,
		ContentType: valid(r.ContentType), Model: valid(r.Model), Provider: valid(r.Provider),
		Usage: &pb.Usage{PromptTokens: int32(r.Usage.PromptTokens), CompletionTokens: int32(r.Usage.CompletionTokens),
			TotalTokens: int32(r.Usage.TotalTokens)}}
}

func modelResponseFromProto(r *pb.ModelResponse) *sdk.ModelResponse {
	u := r.GetUsage()
	return &sdk.ModelResponse{Text: r.GetText(), Embedding: r.GetEmbedding(), JSON: r.GetJson(), Data: r.GetData(),
		ContentType: r.GetContentType(), Model: r.GetModel(), Provider: r.GetProvider(),
		Usage: sdk.Usage{PromptTokens: int(u.GetPromptTokens()), CompletionTokens: int(u.GetCompletionTokens()),
			TotalTokens: int(u.GetTotalTokens())}}
}

func entityToProto(e *sdk.Entity) *pb.Entity {
	return &pb.Entity{Id: e.ID, Names: valids(e.Names), MetadataJson: encode(e.Metadata), AgentId: e.AgentID}
}

func entityFromProto(e *pb.Entity) sdk.Entity {
	return sdk.Entity{ID: e.GetId(), Names: e.GetNames(), Metadata: decode(e.GetMetadataJson()), AgentID: e.GetAgentId()}
}

func roomToProto(r *sdk.Room) *pb.Room {
	return &pb.Room{Id: r.ID, Name: valid(r.Name), AgentId: r.AgentID, Source: r.Source, Type: string(r.Type),
		ChannelId: r.ChannelID, ServerId: r.ServerID, WorldId: r.WorldID, MetadataJson: encode(r.Metadata)}
}

func roomFromProto(r *pb.Room) sdk.Room {
	return sdk.Room{ID: r.GetId(), Name: r.GetName(), AgentID: r.GetAgentId(), Source: r.GetSource(),
		Type: sdk.ChannelType(r.GetType()), ChannelID: r.GetChannelId(), ServerID: r.GetServerId(),
		WorldID: r.GetWorldId(), Metadata: decode(r.GetMetadataJson())}
}

func worldToProto(w *sdk.World) *pb.World {
	return &pb.World{Id: w.ID, Name: valid(w.Name), AgentId: w.AgentID, ServerId: w.ServerID, MetadataJson: encode(w.Metadata)}
}

func worldFromProto(w *pb.World) sdk.World {
	return sdk.World{ID: w.GetId(), Name: w.GetName(), AgentID: w.GetAgentId(), ServerID: w.GetServerId(),
		Metadata: decode(w.GetMetadataJson())}
}

func logFromProto(l *pb.LogEntry) sdk.LogEntry {
	return sdk.LogEntry{ID: l.GetId(), AgentID: l.GetAgentId(), EntityID: l.GetEntityId(), RoomID: l.GetRoomId(),
		Type: l.GetType(), Body: decode(l.GetBodyJson()), CreatedAt: l.GetCreatedAt()}
}

func manifestFromProto(m *pb.Manifest) Manifest {
	out := Manifest{Name: m.GetName(), Version: m.GetVersion(), Events: m.GetEvents(),
		Sources: m.GetMessageSources(), Database: m.GetDatabase()}
	for _, a := range m.GetActions() {
		out.Actions = append(out.Actions, a.GetName())
	}
	for _, p := range m.GetProviders() {
		out.Providers = append(out.Providers, ProviderInfo{Name: p.GetName(), Dynamic: p.GetDynamic(),
			Private: p.GetPrivate(), Position: int(p.GetPosition())})
	}
	for _, e := range m.GetEvaluators() {
		out.Evaluators = append(out.Evaluators, e.GetName())
	}
	for _, md := range m.GetModels() {
		out.Models = append(out.Models, ModelInfo{Type: md.GetType(), Priority: int(md.GetPriority())})
	}
	return out
}
