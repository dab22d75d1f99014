package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The protocol carries free-form values as JSON in bytes fields whose names
// end in _json (values_json, data_json, metadata_json, payload_json, …).
// Each holds a JSON object (examples_json: an array), or nothing at all;
// "null" counts as nothing. Protobuf cannot check them, so both sides do
// it here, with one rule.

// BadJSON is a _json field that does not hold what the protocol says.
type BadJSON struct {
	// Field is the field's path in the message, e.g. "content.extra_json"
	// or "results[1].values_json".
	Field string
	// Problem says what is wrong, e.g. "invalid character 'x' looking for
	// beginning of value".
	Problem string
}

func (b BadJSON) String() string { return b.Field + ": " + b.Problem }

// CheckJSONFields returns the _json fields of m, at any depth, that do not
// hold a JSON object (an array for examples_json) or nothing. clear empties
// each one it returns, so that what reads the message later sees the field
// as not set, the same as a field that was never sent.
func CheckJSONFields(m proto.Message, clear bool) []BadJSON {
	if m == nil {
		return nil
	}
	var out []BadJSON
	checkJSONFields(m.ProtoReflect(), "", clear, &out)
	return out
}

// hasJSONFields caches, per message type, whether it holds a _json field at
// any depth: most messages on the hot path hold none and are not walked.
var hasJSONFields sync.Map // protoreflect.FullName → bool

func jsonFieldsCache(d protoreflect.MessageDescriptor) (has, ok bool) {
	v, ok := hasJSONFields.Load(d.FullName())
	if !ok {
		return false, false
	}
	return v.(bool), true
}

func storeJSONFieldsCache(d protoreflect.MessageDescriptor, has bool) {
	hasJSONFields.Store(d.FullName(), has)
}

func mayHoldJSON(d protoreflect.MessageDescriptor) bool {
	if v, ok := jsonFieldsCache(d); ok {
		return v
	}
	return computeHasJSON(d, map[protoreflect.FullName]bool{})
}

func computeHasJSON(d protoreflect.MessageDescriptor, visiting map[protoreflect.FullName]bool) bool {
	if v, ok := jsonFieldsCache(d); ok {
		return v
	}
	if visiting[d.FullName()] {
		// A recursive type: assume it may, so that nothing is missed.
		return true
	}
	visiting[d.FullName()] = true
	found := false
	fields := d.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch {
		case f.Kind() == protoreflect.BytesKind && strings.HasSuffix(string(f.Name()), "_json"):
			found = true
		case f.IsMap() && f.MapValue().Kind() == protoreflect.MessageKind:
			found = found || computeHasJSON(f.MapValue().Message(), visiting)
		case f.Kind() == protoreflect.MessageKind:
			found = found || computeHasJSON(f.Message(), visiting)
		}
	}
	storeJSONFieldsCache(d, found)
	return found
}

func checkJSONFields(m protoreflect.Message, path string, clear bool, out *[]BadJSON) {
	if !mayHoldJSON(m.Descriptor()) {
		return
	}
	// A field's path is built only for a field that is walked into or
	// reported: most are neither, and an answer such as a room's recent
	// memories holds hundreds of fields.
	m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case f.IsList() && f.Kind() == protoreflect.MessageKind:
			if !mayHoldJSON(f.Message()) {
				return true
			}
			at, l := fieldPath(path, f), v.List()
			for i := range l.Len() {
				checkJSONFields(l.Get(i).Message(), at+"["+strconv.Itoa(i)+"]", clear, out)
			}
		case f.IsMap() && f.MapValue().Kind() == protoreflect.MessageKind:
			if !mayHoldJSON(f.MapValue().Message()) {
				return true
			}
			at := fieldPath(path, f)
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				checkJSONFields(mv.Message(), at+"["+strconv.Quote(k.String())+"]", clear, out)
				return true
			})
		case f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap():
			if mayHoldJSON(f.Message()) {
				checkJSONFields(v.Message(), fieldPath(path, f), clear, out)
			}
		case f.Kind() == protoreflect.BytesKind && !f.IsList() && strings.HasSuffix(string(f.Name()), "_json"):
			want := byte('{')
			if f.Name() == "examples_json" {
				want = '['
			}
			if problem := jsonProblem(v.Bytes(), want); problem != "" {
				*out = append(*out, BadJSON{Field: fieldPath(path, f), Problem: problem})
				if clear {
					m.Clear(f)
				}
			}
		}
		return true
	})
}

// fieldPath is the path of field f of the message at path.
func fieldPath(path string, f protoreflect.FieldDescriptor) string {
	if path == "" {
		return string(f.Name())
	}
	return path + "." + string(f.Name())
}

// jsonProblem says what is wrong with b as the JSON a _json field holds
// (an object, or an array when want is '['), or "" when nothing is.
func jsonProblem(b []byte, want byte) string {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return ""
	}
	if !json.Valid(t) {
		var v any
		err := json.Unmarshal(t, &v)
		if err == nil {
			return "not valid JSON"
		}
		return "not valid JSON: " + err.Error()
	}
	if t[0] != want {
		kind := "an object"
		if want == '[' {
			kind = "an array"
		}
		return fmt.Sprintf("valid JSON, but %s is %s, not %s", clip(string(t), 40), jsonKind(t[0]), kind)
	}
	return ""
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
