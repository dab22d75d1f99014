package host

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds headless Chromium, installing it with the project's
// script when it is missing. In CI a browser that cannot be installed fails
// the test; elsewhere it skips it.
func chromium(t *testing.T) string {
	t.Helper()
	const path = "/usr/bin/chromium"
	if _, err := os.Stat(path); err == nil {
		return path
	}
	script, _ := filepath.Abs("../scripts/install-chromium.sh")
	out, err := exec.Command("bash", script).CombinedOutput()
	if _, serr := os.Stat(path); err != nil || serr != nil {
		msg := "headless Chromium is missing and scripts/install-chromium.sh could not install it: " + tailText(string(out), 2000)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

func tailText(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// browser starts a fresh headless Chromium with its own profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func browse(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		shot := ""
		if dir := os.Getenv("AGENTHOST_SCREENSHOT_DIR"); dir != "" {
			sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
			if b, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)); err == nil {
				shot = filepath.Join(dir, "failure.png")
				_ = os.WriteFile(shot, b, 0o644)
			}
			scancel()
		}
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		page, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body.innerText`))
		dcancel()
		t.Fatalf("%s: %v %s\npage text:\n%s", what, err, shot, tailText(page, 3000))
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func pollJS(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(40*time.Second))
}

// TestWebPage drives the page in a real headless Chromium: it asks for the
// API key, lists the agent, sends a message, shows the reply live, shows
// the exchange in the memories view and the run with its model calls, and
// stops and starts the agent.
func TestWebPage(t *testing.T) {
	ctx := browser(t)
	td := startTestDaemon(t, daemonOpt{env: map[string]string{"AGENTHOST_API_KEY": "webkey"}})
	td.key = "webkey"

	browse(t, ctx, "open the page and give the key",
		chromedp.Navigate(td.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#authForm")),
		chromedp.SendKeys(chromedp.CSS("#apiKey"), "webkey"),
		chromedp.Click(chromedp.CSS(`#authForm button[type="submit"]`)),
		pollJS(`document.querySelector('#agents li[data-agent="Eliza"] .status')?.textContent === "running"`),
		pollJS(`document.querySelector("#conn").textContent === "live"`),
	)

	const text = "I am worried about my exams"
	browse(t, ctx, "send a message and see the reply",
		chromedp.SendKeys(chromedp.CSS("#chatInput"), text),
		chromedp.Click(chromedp.CSS("#send")),
		pollJS(`[...document.querySelectorAll("#messages li.me")].some(li => li.textContent.includes(`+jsString(text)+`))`),
		pollJS(`document.querySelectorAll("#messages li.agent").length >= 1`),
		pollJS(`document.querySelector("#thinking").hidden`),
	)
	reply := eval[string](t, ctx, `document.querySelector("#messages li.agent:last-child").lastChild.textContent`)
	if strings.TrimSpace(reply) == "" || reply == text {
		t.Errorf("the reply shown is %q", reply)
	}

	browse(t, ctx, "the memories view shows the exchange",
		chromedp.Click(chromedp.CSS(`.tabs button[data-tab="memories"]`)),
		pollJS(`document.querySelectorAll("#memories tr").length === 2`),
	)
	texts := eval[[]string](t, ctx, `[...document.querySelectorAll("#memories td.text")].map(td => td.textContent)`)
	if len(texts) != 2 || texts[0] != reply || texts[1] != text {
		t.Errorf("memories view = %q, want the reply then the message", texts)
	}
	// The page and the API agree.
	mems := td.memories("Eliza", "roomId="+UserRoomID(td.d.Agent("Eliza").ID, "you"))
	if len(mems) != 2 || mems[0].Content["text"] != reply {
		t.Errorf("API memories = %+v", mems)
	}

	browse(t, ctx, "the runs timeline shows the run with its model calls",
		chromedp.Click(chromedp.CSS(`.tabs button[data-tab="runs"]`)),
		pollJS(`document.querySelectorAll("#runs > li .steps li.model").length >= 1`),
	)
	label := eval[string](t, ctx, `document.querySelector("#runs > li .steps li.model .label").textContent`)
	if !strings.Contains(label, "offline") {
		t.Errorf("model call label = %q", label)
	}

	browse(t, ctx, "stop and start the agent",
		chromedp.Click(chromedp.CSS(`#agents li[data-agent="Eliza"] button`)),
		pollJS(`document.querySelector('#agents li[data-agent="Eliza"] .status')?.textContent === "stopped"`),
		chromedp.Click(chromedp.CSS(`#agents li[data-agent="Eliza"] button`)),
		pollJS(`document.querySelector('#agents li[data-agent="Eliza"] .status')?.textContent === "running"`),
	)
	if st, _ := td.d.Agent("Eliza").Status(); st != AgentRunning {
		t.Errorf("agent status after stop and start: %s", st)
	}

	// AGENTHOST_SCREENSHOT_DIR keeps a picture of each tab, to look at.
	if dir := os.Getenv("AGENTHOST_SCREENSHOT_DIR"); dir != "" {
		for _, tab := range []string{"runs", "memories", "logs", "chat"} {
			browse(t, ctx, "screenshot", chromedp.Click(chromedp.CSS(`.tabs button[data-tab="`+tab+`"]`)), chromedp.Sleep(300*time.Millisecond))
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			if b, err := chromedp.Run(c, chromedp.FullScreenshot(100)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, tab+".png"), b, 0o644)
			}
			cancel()
		}
	}
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
