package contract

import (
	"reflect"
	"testing"
)

func TestMergeMetadata(t *testing.T) {
	old := map[string]any{"discord": map[string]any{"id": "1", "name": "a"}, "keep": 1.0, "replace": "x"}
	got := MergeMetadata(old, map[string]any{"discord": map[string]any{"name": "b"}, "replace": map[string]any{"now": "an object"}, "new": true})
	want := map[string]any{
		"discord": map[string]any{"id": "1", "name": "b"},
		"keep":    1.0,
		"replace": map[string]any{"now": "an object"},
		"new":     true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MergeMetadata: %v", got)
	}
	if old["discord"].(map[string]any)["name"] != "a" {
		t.Error("MergeMetadata modified its input")
	}
}
