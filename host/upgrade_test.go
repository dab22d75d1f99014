package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
)

// buildVersioned builds internal/testplugin/versioned with main.VAR=VALUE
// for each flag.
func buildVersioned(t *testing.T, flags ...string) string {
	t.Helper()
	var ld []string
	for _, f := range flags {
		ld = append(ld, "-X main."+f)
	}
	out := filepath.Join(t.TempDir(), "versioned")
	if b, err := exec.Command("go", "build", "-ldflags", strings.Join(ld, " "), "-o", out, "../internal/testplugin/versioned").CombinedOutput(); err != nil {
		t.Fatalf("build versioned %v: %v\n%s", flags, err, b)
	}
	return out
}

// putPlugin renames a copy of bin over dir's agenthost-plugin-NAME.
func putPlugin(t *testing.T, bin, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".tmp-"+name)
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ExecPrefix+name)); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeInPlace: an upgrade asked for while two senders keep
// messages coming answers them all, gives the agent a registry of the new
// manifest, and leaves one runtime token, the new process's.
func TestUpgradeInPlace(t *testing.T) {
	v1, v2 := buildVersioned(t), buildVersioned(t, "version=2")
	dir := t.TempDir()
	putPlugin(t, v1, dir, "versioned")
	ch, err := character.Parse([]byte(`{"name":"Vee","bio":"x","plugins":["sql","bootstrap","versioned"],
		"settings":{"VERSIONED_DELAY_MS":"10"},
		"messageExamples":[[{"name":"u","content":{"text":"hi"}},{"name":"Vee","content":{"text":"yo","actions":["V1_ONLY"]}}]]}`))
	if err != nil {
		t.Fatal(err)
	}
	td := startTestDaemon(t, daemonOpt{chars: []*sdk.Character{ch}, pluginDirs: []string{dir},
		// Only asked for: the test decides when the daemon looks.
		cfg: func(c *Config) { c.WatchInterval = -1 }})
	p := td.d.Manager().Plugin("versioned")
	a := td.d.Agent("Vee")
	oldPid := p.PID()
	if a.registry().ResolveAction("V1_ONLY") == nil {
		t.Fatal("version 1 offers V1_ONLY")
	}

	var wg sync.WaitGroup
	errs := make(chan string, 200)
	replies := make(chan string, 200)
	stop := make(chan struct{})
	for s := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("m%d", i), "userName": fmt.Sprintf("s%d", s)})
				res, err := http.Post(td.url+"/api/agents/Vee/messages", "application/json", bytes.NewReader(body))
				if err != nil {
					errs <- err.Error()
					return
				}
				var env struct {
					Data sayResult
				}
				err = json.NewDecoder(res.Body).Decode(&env)
				res.Body.Close()
				if err != nil || res.StatusCode != 200 || len(env.Data.Messages) != 1 {
					errs <- fmt.Sprintf("status %d: %v %+v", res.StatusCode, err, env.Data)
					return
				}
				replies <- env.Data.Messages[0].Text
				if len(replies) > 150 {
					return
				}
			}
		}()
	}
	putPlugin(t, v2, dir, "versioned")
	rep, err := td.d.ReloadPlugins(context.Background(), "")
	if err != nil || fmt.Sprint(rep.Upgraded) != "[versioned]" {
		t.Fatalf("reload: %v %+v", err, rep)
	}
	testwait.ForNil(t, 60*time.Second, "20 answers", func() error {
		if len(replies) < 20 {
			return fmt.Errorf("%d answers", len(replies))
		}
		return nil
	})
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if p.PID() == oldPid || p.Manifest().GetVersion() != "2" {
		t.Fatalf("pid %d (was %d), version %s", p.PID(), oldPid, p.Manifest().GetVersion())
	}
	if a.registry().ResolveAction("V1_ONLY") != nil {
		t.Error("the agent's registry still has the action version 2 dropped")
	}
	if u := p.LastUpgrade(); u == nil || len(u.Warnings) != 1 || !strings.Contains(u.Warnings[0], "V1_ONLY") {
		t.Errorf("the upgrade should warn of V1_ONLY: %+v", u)
	}
	testwait.ForNil(t, 30*time.Second, "the old process's token revoked", func() error {
		n := 0
		td.d.mgr.tokens.Range(func(_, v any) bool {
			if v.(*PluginProcess) == p {
				n++
			}
			return true
		})
		if n != 1 {
			return fmt.Errorf("plugin versioned has %d runtime tokens, want the new process's alone", n)
		}
		return nil
	})
	// Unchanged: nothing to do.
	if rep, err := td.d.ReloadPlugins(context.Background(), "versioned"); err != nil || len(rep.Upgraded)+len(rep.Refused) != 0 {
		t.Fatalf("a second reload: %v %+v", err, rep)
	}
}
