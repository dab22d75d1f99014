package langsdk

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Protocol is what a language's generated code declares of
// agenthost.plugin.v1: each service method by its full gRPC name, and each
// message (nested ones too) with its fields as "name=number".
type Protocol struct {
	Methods []string            `json:"methods"`
	Fields  map[string][]string `json:"fields"`
}

// GoProtocol is what the Go code of sdk/proto declares: the reference the
// other languages' generated code must match, or `make proto` was not run
// after a change to the .proto files.
func GoProtocol() Protocol {
	p := Protocol{Fields: map[string][]string{}}
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			m := ms.Get(i)
			if m.IsMapEntry() {
				continue
			}
			fields := []string{}
			for j := 0; j < m.Fields().Len(); j++ {
				f := m.Fields().Get(j)
				fields = append(fields, fmt.Sprintf("%s=%d", f.Name(), f.Number()))
			}
			p.Fields[string(m.FullName())] = fields
			walk(m.Messages())
		}
	}
	for _, f := range []protoreflect.FileDescriptor{pb.File_agenthost_plugin_v1_types_proto, pb.File_agenthost_plugin_v1_plugin_proto,
		pb.File_agenthost_plugin_v1_runtime_proto, pb.File_agenthost_plugin_v1_database_proto} {
		walk(f.Messages())
		for i := 0; i < f.Services().Len(); i++ {
			s := f.Services().Get(i)
			for j := 0; j < s.Methods().Len(); j++ {
				p.Methods = append(p.Methods, fmt.Sprintf("/%s/%s", s.FullName(), s.Methods().Get(j).Name()))
			}
		}
	}
	return p
}

// CompareProtocol fails the test for each method, message or field that
// differs between got (a language's generated code) and the Go code. A nil
// got.Fields compares the methods only.
func CompareProtocol(t *testing.T, lang string, got Protocol) {
	t.Helper()
	want := GoProtocol()
	const hint = "; run make proto and commit what it writes"
	if a, b := sorted(got.Methods), sorted(want.Methods); strings.Join(a, " ") != strings.Join(b, " ") {
		t.Errorf("%s's generated code has the methods\n%v\nand the protocol\n%v%s", lang, a, b, hint)
	}
	if got.Fields == nil {
		return
	}
	for name, fields := range want.Fields {
		if g, ok := got.Fields[name]; !ok || strings.Join(sorted(g), ",") != strings.Join(sorted(fields), ",") {
			t.Errorf("%s's generated message %s has the fields %v, the protocol %v%s", lang, name, g, fields, hint)
		}
	}
	for name := range got.Fields {
		if _, ok := want.Fields[name]; !ok {
			t.Errorf("%s's generated code has a message %s the protocol does not%s", lang, name, hint)
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
