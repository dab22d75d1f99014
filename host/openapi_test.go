package host

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestOpenAPIMatchesRoutes walks the routes the mux registers and the
// paths of the served document: each must be in the other, and every
// documented route must reach its handler (not the catch-all).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	d, err := New(Config{Version: "test", DataDir: t.TempDir(), Env: map[string]string{"AGENTHOST_RATE_LIMIT": "0"}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	mux := d.apiMux()
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()

	res, err := http.Get(srv.URL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || len(doc.Paths) == 0 {
		t.Fatalf("document: %+v", doc)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			var op struct {
				Summary   string         `json:"summary"`
				Responses map[string]any `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil || op.Summary == "" || len(op.Responses) == 0 {
				t.Errorf("%s %s: needs a summary and responses", method, path)
			}
		}
	}
	registered := map[string]bool{}
	for _, r := range mux.routes {
		registered[r.Method+" "+r.Path] = true
	}
	var missing, extra []string
	for k := range registered {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes served but not documented: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("routes documented but not served: %v", extra)
	}

	// Every documented operation reaches its own pattern in the mux.
	param := regexp.MustCompile(`\{[^}]+\}`)
	for k := range documented {
		method, path, _ := strings.Cut(k, " ")
		concrete := param.ReplaceAllString(path, "5f4f0a40-2c1e-4c5b-9d7e-1a2b3c4d5e6f")
		req := httptest.NewRequest(method, concrete, nil)
		if _, pattern := mux.Handler(req); pattern != k {
			t.Errorf("%s %s reaches pattern %q, not %q", method, concrete, pattern, k)
		}
	}
	// Path parameters declared match the template's.
	for path, ops := range doc.Paths {
		want := param.FindAllString(path, -1)
		for method, raw := range ops {
			var op struct {
				Parameters []struct{ Name, In string } `json:"parameters"`
			}
			_ = json.Unmarshal(raw, &op)
			var got []string
			for _, p := range op.Parameters {
				if p.In == "path" {
					got = append(got, "{"+p.Name+"}")
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s %s: path parameters %v, template has %v", method, path, got, want)
			}
		}
	}
}
