package contract

import (
	"strings"
	"testing"
)

func TestParseAttachLines(t *testing.T) {
	a := AttachLine("weather", Reattach{Network: "unix", Address: "/tmp/d/plugin1", Pid: 42, Protocol: ProtocolVersion})
	b := `other={"network": "tcp", "address": "127.0.0.1:9", "pid": 7, "protocol": 1}`
	got, err := ParseAttachLines(" " + a + " ;\n" + b + ";")
	if err != nil {
		t.Fatal(err)
	}
	if got["weather"].Address != "/tmp/d/plugin1" || got["weather"].Pid != 42 || got["other"].Network != "tcp" || len(got) != 2 {
		t.Fatalf("parsed %+v", got)
	}
	for _, c := range []struct{ line, want string }{
		{`{"network":"unix"}`, "is not a reattach line"},
		{`weather=`, "reattach line of plugin weather"},
		{`weather={"network":"unix","address":"/x","pid":1,"protocol":1,"cmd":"rm"}`, "unknown field"},
		{`weather={"network":"udp","address":"/x","pid":1,"protocol":1}`, "neither unix nor tcp"},
		{`weather={"network":"unix","address":"/x","protocol":1}`, "no pid"},
		{`weather={"network":"unix","address":"/x","pid":1,"protocol":9}`, "protocol 9"},
		{a + " " + a, "two reattach lines"},
	} {
		if _, err := ParseAttachLines(c.line); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want %q, got %v", c.line, c.want, err)
		}
	}
}
