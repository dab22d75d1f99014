package sdk

import (
	"encoding/json"
	"strconv"

	"github.com/agenthost/agenthost/sdk/internal/charjson"
)

// Character is an agent's definition, in elizaOS's JSON format. Package
// sdk/character reads, checks and resolves character files.
type Character struct {
	ID              string             `json:"id,omitempty"`
	Name            string             `json:"name"`
	Username        string             `json:"username,omitempty"`
	System          string             `json:"system,omitempty"`
	Templates       map[string]string  `json:"templates,omitempty"`
	Bio             StringList         `json:"bio"`
	MessageExamples [][]ExampleMessage `json:"messageExamples,omitempty"`
	PostExamples    []string           `json:"postExamples,omitempty"`
	Topics          []string           `json:"topics,omitempty"`
	Adjectives      []string           `json:"adjectives,omitempty"`
	Knowledge       []json.RawMessage  `json:"knowledge,omitempty"`
	Plugins         []string           `json:"plugins,omitempty"`
	Settings        map[string]any     `json:"settings,omitempty"`
	Secrets         map[string]any     `json:"secrets,omitempty"`
	Style           Style              `json:"style,omitempty"`
}

// Style holds writing directions for every channel, chat and posts.
type Style struct {
	All  []string `json:"all,omitempty"`
	Chat []string `json:"chat,omitempty"`
	Post []string `json:"post,omitempty"`
}

// StringList is a string or a list of strings in JSON (elizaOS's bio).
type StringList []string

// UnmarshalJSON accepts "text" or ["text", ...].
func (s *StringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// MarshalJSON writes a list, [] when empty, never null: elizaOS rejects a
// null bio.
func (s StringList) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(s))
}

// parseCharacter validates data (see package sdk/internal/charjson) and
// builds the character it defines. file names it in errors ("" for none).
func parseCharacter(file string, data []byte) (*Character, error) {
	top, err := charjson.Decode(file, data)
	if err != nil {
		return nil, err
	}
	return buildCharacter(top), nil
}

// buildCharacter makes a Character from a validated document. It matches
// keys exactly, as elizaOS does; encoding/json would also take "Text" for
// "text" inside nested objects where elizaOS keeps unknown keys.
func buildCharacter(top map[string]any) *Character {
	c := &Character{
		ID:           charStr(top, "id"),
		Name:         charStr(top, "name"),
		Username:     charStr(top, "username"),
		System:       charStr(top, "system"),
		PostExamples: charStrs(top["postExamples"]),
		Topics:       charStrs(top["topics"]),
		Adjectives:   charStrs(top["adjectives"]),
		Plugins:      charStrs(top["plugins"]),
	}
	switch b := top["bio"].(type) {
	case string:
		c.Bio = StringList{b}
	case []any:
		c.Bio = StringList(charStrs(b))
	}
	if t, ok := top["templates"].(map[string]any); ok {
		c.Templates = make(map[string]string, len(t))
		for k, v := range t {
			c.Templates[k] = v.(string)
		}
	}
	if convs, ok := top["messageExamples"].([]any); ok {
		c.MessageExamples = make([][]ExampleMessage, len(convs))
		for i, conv := range convs {
			msgs := conv.([]any)
			c.MessageExamples[i] = make([]ExampleMessage, len(msgs))
			for j, msg := range msgs {
				m := msg.(map[string]any)
				c.MessageExamples[i][j] = ExampleMessage{Name: charStr(m, "name"), Content: buildContent(m["content"].(map[string]any))}
			}
		}
	}
	if k, ok := top["knowledge"].([]any); ok {
		c.Knowledge = make([]json.RawMessage, len(k))
		for i, e := range k {
			c.Knowledge[i], _ = json.Marshal(e) // json.Number marshals as written
		}
	}
	if m, ok := top["settings"].(map[string]any); ok {
		c.Settings = plainJSON(m).(map[string]any)
	}
	if m, ok := top["secrets"].(map[string]any); ok {
		c.Secrets = plainJSON(m).(map[string]any)
	}
	if m, ok := top["style"].(map[string]any); ok {
		c.Style = Style{All: charStrs(m["all"]), Chat: charStrs(m["chat"]), Post: charStrs(m["post"])}
	}
	return c
}

// charStr returns m[k] if it is a string, else "".
func charStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// charStrs converts a validated list of strings; nil when x is no list.
func charStrs(x any) []string {
	list, ok := x.([]any)
	if !ok {
		return nil
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.(string)
	}
	return out
}

// buildContent makes a Content from a validated object: the named keys go
// to their fields, every other key to Extra.
func buildContent(m map[string]any) Content {
	c := Content{
		Text:        charStr(m, "text"),
		Thought:     charStr(m, "thought"),
		Actions:     charStrs(m["actions"]),
		Providers:   charStrs(m["providers"]),
		Source:      charStr(m, "source"),
		Target:      charStr(m, "target"),
		URL:         charStr(m, "url"),
		InReplyTo:   charStr(m, "inReplyTo"),
		ChannelType: ChannelType(charStr(m, "channelType")),
	}
	if list, ok := m["attachments"].([]any); ok {
		c.Attachments = make([]Media, len(list))
		for i, a := range list {
			am := a.(map[string]any)
			c.Attachments[i] = Media{
				ID: charStr(am, "id"), URL: charStr(am, "url"), Title: charStr(am, "title"), Source: charStr(am, "source"),
				Description: charStr(am, "description"), Text: charStr(am, "text"), ContentType: charStr(am, "contentType"),
			}
		}
	}
	for k, v := range m {
		if charContentKeys[k] {
			continue
		}
		if c.Extra == nil {
			c.Extra = map[string]any{}
		}
		c.Extra[k] = plainJSON(v)
	}
	return c
}

// charContentKeys are the keys buildContent puts in Content's fields.
var charContentKeys = map[string]bool{
	"text": true, "thought": true, "actions": true, "providers": true, "source": true,
	"target": true, "url": true, "inReplyTo": true, "attachments": true, "channelType": true,
}

// plainJSON returns x with every json.Number turned into a float64, as
// encoding/json decodes numbers into an any. Numbers were range-checked.
func plainJSON(x any) any {
	switch x := x.(type) {
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plainJSON(e)
		}
		return out
	}
	return x
}

// AgentID is the id of the agent this character defines: ID when it is a
// UUID, else StringToUUID(Name), as elizaOS derives it. Renaming a
// character without an id therefore changes its agent id.
func (c *Character) AgentID() string {
	if IsUUID(c.ID) {
		return c.ID
	}
	return StringToUUID(c.Name)
}
