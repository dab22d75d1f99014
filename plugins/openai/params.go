package openai

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The Params of a request come from JSON: numbers are float64, lists are
// []any. These read them leniently, as elizaOS's loosely typed params are.

func paramString(p map[string]any, key string) string {
	switch v := p[key].(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func paramStrings(p map[string]any, key string) []string {
	switch v := p[key].(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return v
	}
	return nil
}

// paramInt reads a whole number; ok is false when the key is absent.
func paramInt(p map[string]any, key string) (n int, ok bool, err error) {
	v, present := p[key]
	if !present || v == nil {
		return 0, false, nil
	}
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<31 {
			return 0, false, fmt.Errorf("param %q: %v is not a whole number", key, x)
		}
		return int(x), true, nil
	case int:
		return x, true, nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, false, fmt.Errorf("param %q: %q is not a whole number", key, x)
		}
		return n, true, nil
	}
	return 0, false, fmt.Errorf("param %q: %T is not a number", key, v)
}

// paramFloat reads a number; ok is false when the key is absent.
func paramFloat(p map[string]any, key string) (f float64, ok bool, err error) {
	v, present := p[key]
	if !present || v == nil {
		return 0, false, nil
	}
	switch x := v.(type) {
	case float64:
		return x, true, nil
	case int:
		return float64(x), true, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, false, fmt.Errorf("param %q: %q is not a number", key, x)
		}
		return f, true, nil
	}
	return 0, false, fmt.Errorf("param %q: %T is not a number", key, v)
}
