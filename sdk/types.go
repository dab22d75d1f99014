package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ChannelType is the kind of a room, as elizaOS names them.
type ChannelType string

// The channel types of elizaOS.
const (
	ChannelSelf       ChannelType = "SELF"
	ChannelDM         ChannelType = "DM"
	ChannelGroup      ChannelType = "GROUP"
	ChannelVoiceDM    ChannelType = "VOICE_DM"
	ChannelVoiceGroup ChannelType = "VOICE_GROUP"
	ChannelFeed       ChannelType = "FEED"
	ChannelThread     ChannelType = "THREAD"
	ChannelWorld      ChannelType = "WORLD"
	ChannelForum      ChannelType = "FORUM"
	ChannelAPI        ChannelType = "API"
)

// Model types used by the pipeline. Plugins may serve other types by name.
const (
	ModelTextSmall       = "TEXT_SMALL"
	ModelTextLarge       = "TEXT_LARGE"
	ModelTextEmbedding   = "TEXT_EMBEDDING"
	ModelObjectSmall     = "OBJECT_SMALL"
	ModelObjectLarge     = "OBJECT_LARGE"
	ModelTokenizerEncode = "TEXT_TOKENIZER_ENCODE"
	ModelTokenizerDecode = "TEXT_TOKENIZER_DECODE"
	ModelImage           = "IMAGE"
	ModelImageDescribe   = "IMAGE_DESCRIPTION"
	ModelTranscription   = "TRANSCRIPTION"
	ModelTextToSpeech    = "TEXT_TO_SPEECH"
)

// Event types the host emits.
const (
	EventMessageReceived = "MESSAGE_RECEIVED"
	EventMessageSent     = "MESSAGE_SENT"
	EventMessageDeleted  = "MESSAGE_DELETED"
	// EventChannelCleared says a room's messages were deleted
	// (payload roomId), as elizaOS's message bus says it.
	EventChannelCleared   = "CHANNEL_CLEARED"
	EventReactionReceived = "REACTION_RECEIVED"
	EventWorldJoined      = "WORLD_JOINED"
	EventEntityJoined     = "ENTITY_JOINED"
	EventRunStarted       = "RUN_STARTED"
	EventRunEnded         = "RUN_ENDED"
	EventRunTimeout       = "RUN_TIMEOUT"
	EventModelUsed        = "MODEL_USED"

	EventActionStarted      = "ACTION_STARTED"
	EventActionCompleted    = "ACTION_COMPLETED"
	EventEvaluatorStarted   = "EVALUATOR_STARTED"
	EventEvaluatorCompleted = "EVALUATOR_COMPLETED"
)

// Memory tables used by the pipeline.
const (
	TableMessages  = "messages"
	TableFacts     = "facts"
	TableDocuments = "documents"
	TableFragments = "fragments"
	// TableActionResults holds what each action of a run did (memories
	// with content type "action_result"). elizaOS keeps them among the
	// messages; here they have a table of their own, so a room's messages
	// are what was said in it and nothing else.
	TableActionResults = "action_results"
)

// Media is an attachment of a message.
type Media struct {
	ID          string `json:"id,omitempty"`
	URL         string `json:"url,omitempty"`
	Title       string `json:"title,omitempty"`
	Source      string `json:"source,omitempty"`
	Description string `json:"description,omitempty"`
	Text        string `json:"text,omitempty"`
	ContentType string `json:"contentType,omitempty"`
}

// Content is the payload of every message and memory. Keys elizaOS allows
// beyond the named fields are kept in Extra and flattened in JSON.
type Content struct {
	Text        string         `json:"text,omitempty"`
	Thought     string         `json:"thought,omitempty"`
	Actions     []string       `json:"actions,omitempty"`
	Providers   []string       `json:"providers,omitempty"`
	Source      string         `json:"source,omitempty"`
	Target      string         `json:"target,omitempty"`
	URL         string         `json:"url,omitempty"`
	InReplyTo   string         `json:"inReplyTo,omitempty"`
	Attachments []Media        `json:"attachments,omitempty"`
	ChannelType ChannelType    `json:"channelType,omitempty"`
	Extra       map[string]any `json:"-"`
}

// contentFields lets MarshalJSON and UnmarshalJSON reuse the tags above.
type contentFields Content

var contentKeys = map[string]bool{
	"text": true, "thought": true, "actions": true, "providers": true, "source": true,
	"target": true, "url": true, "inReplyTo": true, "attachments": true, "channelType": true,
}

// MarshalJSON writes the named fields and the Extra keys as one object.
func (c Content) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(contentFields(c))
	if err != nil || len(c.Extra) == 0 {
		return base, err
	}
	m := make(map[string]any, len(c.Extra)+4)
	for k, v := range c.Extra {
		if !contentKeys[k] {
			m[k] = v
		}
	}
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the named fields and keeps every other key in Extra.
// Keys match exactly, as in JavaScript: "Text" is an extra key, not text.
func (c *Content) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*c = Content{}
	for k, raw := range all {
		var dst any
		switch k {
		case "text":
			dst = &c.Text
		case "thought":
			dst = &c.Thought
		case "actions":
			dst = &c.Actions
		case "providers":
			dst = &c.Providers
		case "source":
			dst = &c.Source
		case "target":
			dst = &c.Target
		case "url":
			dst = &c.URL
		case "inReplyTo":
			dst = &c.InReplyTo
		case "attachments":
			dst = &c.Attachments
		case "channelType":
			dst = (*string)(&c.ChannelType)
		default:
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("content key %q: %w", k, err)
			}
			if c.Extra == nil {
				c.Extra = map[string]any{}
			}
			c.Extra[k] = v
			continue
		}
		if string(raw) == "null" {
			continue
		}
		if s, ok := dst.(*string); ok && plainJSONString(raw) {
			// Most values are strings without escapes: their text is the
			// value, with no decoder to start.
			*s = string(raw[1 : len(raw)-1])
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("content key %q: %w", k, err)
		}
	}
	return nil
}

// plainJSONString reports whether raw, a valid JSON value, is a string
// whose text is its bytes between the quotes: no escape, valid UTF-8 (the
// decoder would replace invalid bytes).
func plainJSONString(raw []byte) bool {
	return len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 && utf8.Valid(raw[1:len(raw)-1])
}

// Memory is a stored message, fact, document or fragment.
type Memory struct {
	ID        string    `json:"id,omitempty"`
	EntityID  string    `json:"entityId"`
	AgentID   string    `json:"agentId,omitempty"`
	RoomID    string    `json:"roomId"`
	WorldID   string    `json:"worldId,omitempty"`
	CreatedAt int64     `json:"createdAt,omitempty"` // unix milliseconds
	Content   Content   `json:"content"`
	Embedding []float32 `json:"embedding,omitempty"`
	Unique    bool      `json:"unique,omitempty"`
	// Similarity is set on search results only.
	Similarity float64        `json:"similarity,omitempty"`
	Metadata   map[string]any `json:"metadata,omitempty"`
	Table      string         `json:"table,omitempty"`
}

// Component is typed data about an entity, asserted by a source entity
// (elizaOS's components: contact details, per-platform accounts, ...).
type Component struct {
	ID             string         `json:"id"`
	EntityID       string         `json:"entityId"`
	AgentID        string         `json:"agentId,omitempty"`
	RoomID         string         `json:"roomId,omitempty"`
	WorldID        string         `json:"worldId,omitempty"`
	SourceEntityID string         `json:"sourceEntityId,omitempty"`
	Type           string         `json:"type"`
	Data           map[string]any `json:"data,omitempty"`
	CreatedAt      int64          `json:"createdAt,omitempty"`
}

// Entity is a user, a bot or the agent itself.
type Entity struct {
	ID       string         `json:"id"`
	Names    []string       `json:"names"`
	Metadata map[string]any `json:"metadata,omitempty"`
	AgentID  string         `json:"agentId,omitempty"`
	// Components are set only where they were asked for (elizaOS's
	// entities with components).
	Components []Component `json:"components,omitempty"`
}

// World is a server, a guild, a Telegram chat.
type World struct {
	ID       string         `json:"id"`
	Name     string         `json:"name,omitempty"`
	AgentID  string         `json:"agentId,omitempty"`
	ServerID string         `json:"serverId,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Room is a channel, a DM, a thread.
type Room struct {
	ID        string         `json:"id"`
	Name      string         `json:"name,omitempty"`
	AgentID   string         `json:"agentId,omitempty"`
	Source    string         `json:"source,omitempty"`
	Type      ChannelType    `json:"type,omitempty"`
	ChannelID string         `json:"channelId,omitempty"`
	ServerID  string         `json:"serverId,omitempty"`
	WorldID   string         `json:"worldId,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// State is what providers produce and prompts consume.
type State struct {
	Values map[string]any `json:"values"`
	Data   map[string]any `json:"data"`
	Text   string         `json:"text"`
}

// Target says where an outgoing message goes; Source picks the plugin.
type Target struct {
	Source    string `json:"source"`
	RoomID    string `json:"roomId,omitempty"`
	ChannelID string `json:"channelId,omitempty"`
	ServerID  string `json:"serverId,omitempty"`
	EntityID  string `json:"entityId,omitempty"`
	ThreadID  string `json:"threadId,omitempty"`
}

// ActionResult is what an action hands to the next one in its chain.
type ActionResult struct {
	Success bool           `json:"success"`
	Text    string         `json:"text,omitempty"`
	Values  map[string]any `json:"values,omitempty"`
	Data    map[string]any `json:"data,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// ActionOutcome is one finished action of a chain.
type ActionOutcome struct {
	Name   string       `json:"name"`
	Result ActionResult `json:"result"`
}

// EvaluatorOutcome is one evaluator after a response.
type EvaluatorOutcome struct {
	Name  string `json:"name"`
	Ran   bool   `json:"ran"`
	Error string `json:"error,omitempty"`
}

// Usage counts the tokens of one model call.
type Usage struct {
	PromptTokens     int `json:"promptTokens"`
	CompletionTokens int `json:"completionTokens"`
	TotalTokens      int `json:"totalTokens"`
}

// ModelRequest asks a model for an answer. Text calls use Prompt, System and
// the sampling fields; TEXT_EMBEDDING uses Text (or Probe); other model types
// put their parameters in Params.
type ModelRequest struct {
	Type             string
	RunID            string
	Prompt           string
	System           string
	Temperature      *float64
	MaxTokens        int
	StopSequences    []string
	FrequencyPenalty *float64
	PresencePenalty  *float64
	Text             string
	Probe            bool
	Params           map[string]any
	// Provider asks for one plugin's handler instead of the highest priority.
	Provider string
}

// ModelResponse is one of Text, Embedding, JSON or Data.
type ModelResponse struct {
	Text        string
	Embedding   []float32
	JSON        json.RawMessage
	Data        []byte
	ContentType string
	Usage       Usage
	Model       string
	// Provider is the plugin that answered; set by the host.
	Provider string
}

// Event is what an event handler receives.
type Event struct {
	Type   string
	RunID  string
	Source string
	// Message is set for the message events.
	Message *Memory
	Payload map[string]any
}
