package contract

import (
	"encoding/json"
	"sort"
	"strings"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// Composition is the providers one ComposeState runs: in position order,
// and grouped per plugin for the calls.
type Composition[P Plugin] struct {
	Selected []ProviderEntry[P]
	ByPlugin ByPlugin[P]
}

// Compose selects the providers of a ComposeState request: the default set
// (neither private nor dynamic) and those included by name, or exactly the
// included ones with only_include.
func (r *Registry[P]) Compose(req *pb.ComposeStateRequest) Composition[P] {
	include := map[string]bool{}
	for _, n := range req.GetInclude() {
		include[n] = true
	}
	var c Composition[P]
	for _, e := range r.Providers {
		name := e.Spec.GetName()
		if include[name] || (!req.GetOnlyInclude() && !e.Spec.GetPrivate() && !e.Spec.GetDynamic()) {
			c.Selected = append(c.Selected, e)
			c.ByPlugin.add(e.Plugin, name)
		}
	}
	return c
}

// MergeState joins provider results in position order. Values of earlier
// cached providers stay unless a selected provider sets them again; extra
// (the agent's action values) come first, so providers may override them.
func (c Composition[P]) MergeState(cached *pb.State, results map[string]*pb.ProviderResult, extra map[string]any) *pb.State {
	// The providers' values and data are JSON the host only passes on:
	// objects are split into their keys and written out again around the
	// same bytes, never decoded further or encoded again.
	values := map[string]json.RawMessage{}
	for k, v := range extra {
		values[k] = JSON(v)
	}
	data := map[string]json.RawMessage{}
	providersData := map[string]json.RawMessage{}
	if cached != nil {
		_ = json.Unmarshal(cached.GetValuesJson(), &values)
		_ = json.Unmarshal(cached.GetDataJson(), &data)
		var pd map[string]json.RawMessage
		if json.Unmarshal(data["providers"], &pd) == nil && pd != nil {
			providersData = pd
		}
	}
	if values == nil {
		values = map[string]json.RawMessage{}
	}
	if data == nil {
		data = map[string]json.RawMessage{}
	}
	var texts []string
	for _, e := range c.Selected {
		r := results[e.Spec.GetName()]
		if r == nil {
			continue
		}
		if t := strings.TrimSpace(r.GetText()); t != "" {
			texts = append(texts, r.GetText())
		}
		entry := map[string]json.RawMessage{"text": JSON(r.GetText())}
		var v map[string]json.RawMessage
		if len(r.GetValuesJson()) > 0 && json.Unmarshal(r.GetValuesJson(), &v) == nil && v != nil {
			for k, x := range v {
				values[k] = x
			}
			entry["values"] = r.GetValuesJson()
		}
		var dd map[string]json.RawMessage
		if len(r.GetDataJson()) > 0 && json.Unmarshal(r.GetDataJson(), &dd) == nil {
			entry["data"] = r.GetDataJson()
		}
		providersData[e.Spec.GetName()] = rawObject(entry)
	}
	text := strings.Join(texts, "\n\n")
	values["providers"] = JSON(text)
	data["providers"] = rawObject(providersData)
	return &pb.State{ValuesJson: rawObject(values), DataJson: rawObject(data), Text: text}
}

// rawObject writes a JSON object of valid JSON values, keys sorted as
// json.Marshal sorts them, the values as they are.
func rawObject(m map[string]json.RawMessage) []byte {
	keys := make([]string, 0, len(m))
	n := 2
	for k, v := range m {
		keys = append(keys, k)
		n += len(k) + len(v) + 4
	}
	sort.Strings(keys)
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, JSON(k)...)
		b = append(b, ':')
		if v := m[k]; len(v) > 0 {
			b = append(b, v...)
		} else {
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

// JSON encodes v for a bytes field of the protocol; a value that cannot be
// encoded becomes an object naming the error, so the message still flows.
func JSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"encodeError": err.Error()})
	}
	return b
}
