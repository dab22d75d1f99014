package sqlstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agenthost/agenthost/sdk"
)

// ErrInvalid is matched (with errors.Is) by every error about bad input: a
// malformed id, invalid UTF-8, a NUL byte the backend cannot store, a
// non-finite embedding value, a wrong embedding size, an unknown participant
// state.
var ErrInvalid = errors.New("invalid input")

// InputError names the field that was refused and why.
type InputError struct {
	Field  string
	Reason string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InputError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// checkID refuses anything but a UUID; an empty id is refused only when
// required.
func checkID(field, id string, required bool) error {
	if id == "" {
		if required {
			return invalid(field, "is empty; a UUID is required")
		}
		return nil
	}
	if !sdk.IsUUID(id) {
		return invalid(field, "%q is not a UUID", truncate(id))
	}
	return nil
}

// checkIDs checks every id of a list.
func checkIDs(field string, ids []string) error {
	for i, id := range ids {
		if err := checkID(field+"["+strconv.Itoa(i)+"]", id, true); err != nil {
			return err
		}
	}
	return nil
}

// truncate keeps error messages short when the bad value is long.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

// checkText refuses what the backend cannot store exactly.
func (s *Store) checkText(field, v string) error {
	if len(v) > MaxDocument {
		return invalid(field, "is %d bytes, over the limit of %d (2 MiB)", len(v), MaxDocument)
	}
	if !utf8.ValidString(v) {
		return invalid(field, "is not valid UTF-8")
	}
	if !s.d.allowNUL && strings.IndexByte(v, 0) >= 0 {
		return invalid(field, "contains a NUL byte, %s", s.d.nulReason)
	}
	return nil
}

// MaxKeyLen bounds, in bytes, the texts that are keys of an index: an
// agent's name, a memory table's name, a log type, a cache key. (A
// PostgreSQL index entry must fit in a third of a page.)
const MaxKeyLen = 1024

// checkKey is checkText for a non-empty key of at most MaxKeyLen bytes.
func (s *Store) checkKey(field, v string) error {
	if v == "" {
		return invalid(field, "is empty")
	}
	return s.checkOptionalKey(field, v)
}

// checkOptionalKey is checkKey where empty means "any".
func (s *Store) checkOptionalKey(field, v string) error {
	if len(v) > MaxKeyLen {
		return invalid(field, "is %d bytes long; at most %d", len(v), MaxKeyLen)
	}
	return s.checkText(field, v)
}

// checkValue walks a value that is about to become JSON and checks every
// string in it, map keys included, naming the path of a bad one
// (memory.content.attachments[0].title). Struct fields are named by their
// JSON tags; a map field tagged "-" (Content.Extra) is walked as if its keys
// were the struct's own, which is how it is marshalled.
func (s *Store) checkValue(field string, v any) error {
	return s.walk(field, reflect.ValueOf(v))
}

func (s *Store) walk(path string, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Invalid:
		return nil
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return s.walk(path, v.Elem())
	case reflect.String:
		return s.checkText(path, v.String())
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return invalid(path, "is %v; JSON has no such number", f)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" && f.Type.Kind() == reflect.Map:
				if err := s.walk(path, v.Field(i)); err != nil {
					return err
				}
				continue
			case name == "-":
				continue
			case name == "":
				name = f.Name
			}
			if err := s.walk(path+"."+name, v.Field(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			kp := path + "[" + fmt.Sprint(k.Interface()) + "]"
			if k.Kind() == reflect.String {
				ks := k.String()
				kp = keyPath(path, ks)
				if err := s.checkText(kp+" (key)", ks); err != nil {
					return err
				}
			}
			if err := s.walk(kp, iter.Value()); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // []byte: base64 in JSON
		}
		for i := 0; i < v.Len(); i++ {
			if err := s.walk(path+"["+strconv.Itoa(i)+"]", v.Index(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyPath appends a map key to a path: .name for plain keys, ["…"] for
// anything else.
func keyPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(truncate(key)) + "]"
}

// marshal checks v (see checkValue) and encodes it as JSON.
func (s *Store) marshal(field string, v any) (string, error) {
	if err := s.checkValue(field, v); err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", invalid(field, "cannot be encoded as JSON: %v", err)
	}
	if len(b) > MaxDocument {
		return "", invalid(field, "is %d bytes as JSON, over the limit of %d (2 MiB) for one stored document", len(b), MaxDocument)
	}
	return string(b), nil
}

// MaxDocument bounds each JSON document stored (a memory's content or
// metadata, a log entry's body, a component's data...): one plugin cannot
// fill the database, or the next listing, with a single write.
const MaxDocument = 2 << 20

// maxListing bounds the bytes of stored documents one listing reads: with
// documents of up to 2 MiB, a count alone would let one answer outgrow the
// 64 MiB a gRPC message may carry (and the plugin's memory). A listing
// that reaches it returns what it read so far, newest first as always.
const maxListing = 16 << 20

// listBudget counts the bytes a listing has read.
type listBudget int

// fits adds n bytes and reports whether the listing may keep the row: the
// first row always fits.
func (b *listBudget) fits(n int) bool {
	first := *b == 0
	*b += listBudget(n)
	return first || *b <= maxListing
}

// checkJSON checks a JSON document given as bytes: valid JSON, valid UTF-8,
// and no \u0000 escape where the backend cannot store it.
func (s *Store) checkJSON(field string, b []byte) error {
	if len(b) > MaxDocument {
		return invalid(field, "is %d bytes, over the limit of %d (2 MiB) for one stored document", len(b), MaxDocument)
	}
	if !utf8.Valid(b) {
		return invalid(field, "is not valid UTF-8")
	}
	if !json.Valid(b) {
		return invalid(field, "is not valid JSON")
	}
	if !s.d.allowNUL && jsonHasNUL(b) {
		return invalid(field, "contains a NUL character (\\u0000), %s", s.d.nulReason)
	}
	return nil
}

// jsonHasNUL reports a \u0000 escape in valid JSON. A backslash only ever
// starts an escape inside a JSON string, so a scan that skips over each
// escape finds them without decoding.
func jsonHasNUL(b []byte) bool {
	for i := bytes.IndexByte(b, '\\'); i >= 0 && i+1 < len(b); {
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			return true
		}
		next := bytes.IndexByte(b[i+2:], '\\')
		if next < 0 {
			return false
		}
		i += 2 + next
	}
	return false
}

// checkVector refuses NaN and infinities, which have no cosine similarity.
func checkVector(field string, v []float32) error {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "is %v; embeddings must be finite", x)
		}
	}
	return nil
}

// checkOwner refuses a record that names another agent than the one the
// call is for.
func checkOwner(field, owner, agentID string) error {
	if owner != "" && owner != agentID {
		return invalid(field, "is %q but the call is for agent %q", truncate(owner), agentID)
	}
	return nil
}
