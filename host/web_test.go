package host

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net/http"
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
	fmt.Fprintln(os.Stderr, "headless Chromium is missing: installing it with apt-get (scripts/install-chromium.sh) for the browser tests")
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

// browser starts a fresh headless Chromium with its own profile; extra
// adds to its options. Any error the page writes to its console (a script
// error, a style or script its policy refuses, a resource that fails to
// load) fails the test. Start the daemon first: the check runs when the
// test ends, before the daemon stops.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	return startBrowser(t, true, extra...)
}

// attackerBrowser is browser for a hostile page, whose refused requests
// fill the console with errors by design.
func attackerBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	return startBrowser(t, false, extra...)
}

func startBrowser(t *testing.T, watchConsole bool, extra ...chromedp.ExecAllocatorOption) context.Context {
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
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if !watchConsole {
		return ctx
	}
	watch, stop := context.WithCancel(ctx)
	messages := chromedp.Console(watch)
	var errs []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				errs = append(errs, fmt.Sprintf("%s (%s line %d)", m, m.URL, m.Line+1))
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		<-done
		for _, e := range errs {
			t.Errorf("the page wrote an error to its console: %s", e)
		}
	})
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

// clickJS clicks the element sel selects, looking it up as it clicks, once
// it is there.
func clickJS(sel string) chromedp.Action[chromedp.Void] {
	return pollJS(fmt.Sprintf(`(e => !!e && (e.click(), true))(document.querySelector(%q))`, sel))
}

// TestWebPage drives the page in a real headless Chromium: it asks for the
// API key, lists the agent, sends a message, shows the reply live, shows
// the exchange in the memories view and the run with its model calls, and
// stops and starts the agent.
func TestWebPage(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{env: map[string]string{"AGENTHOST_API_KEY": "webkey"}})
	td.key = "webkey"
	ctx := browser(t)

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

	// The list is drawn again as the agent's status changes: the button is
	// looked up and clicked in one step, not found first and clicked after.
	browse(t, ctx, "stop and start the agent",
		clickJS(`#agents li[data-agent="Eliza"] button`),
		pollJS(`document.querySelector('#agents li[data-agent="Eliza"] .status')?.textContent === "stopped"`),
		clickJS(`#agents li[data-agent="Eliza"] button`),
		pollJS(`document.querySelector('#agents li[data-agent="Eliza"] .status')?.textContent === "running"`),
	)
	if st, _ := td.d.Agent("Eliza").Status(); st != AgentRunning {
		t.Errorf("agent status after stop and start: %s", st)
	}

}

// TestWebPageLayout looks at every tab at a desktop's width and a phone's
// (390 px): nothing is wider than the window, every tab and the Send
// button are inside it, no word is broken in two, the runs timeline draws
// its bars as wide as the steps took, the live log reads as sentences, and
// the favicon is there. Each view is kept as a screenshot, in
// AGENTHOST_SCREENSHOT_DIR when it is set.
func TestWebPageLayout(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	ctx := browser(t)
	dir := os.Getenv("AGENTHOST_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	res, err := http.Get(td.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), ">connecting…<") || strings.Contains(string(page), ">offline<") {
		t.Errorf("before the WebSocket connects the badge should say connecting…, not offline")
	}

	const text = "I dream about the mountains and the quiet lakes every night"
	browse(t, ctx, "open the page and talk",
		chromedp.Navigate(td.url+"/"),
		pollJS(`document.querySelector("#conn").textContent === "live"`),
		chromedp.SendKeys(chromedp.CSS("#chatInput"), text),
		chromedp.Click(chromedp.CSS("#send")),
		pollJS(`document.querySelectorAll("#messages li.agent").length >= 1 && document.querySelector("#thinking").hidden`),
	)
	fc, fcancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := chromedp.Run(fc, chromedp.Evaluate[int](`fetch("/favicon.ico").then(r => r.ok && r.headers.get("Content-Type") === "image/x-icon" ? 200 : r.status)`,
		chromedp.EvalAwaitPromise))
	fcancel()
	if err != nil || st != 200 {
		t.Errorf("/favicon.ico: %d %v", st, err)
	}

	for _, size := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{}
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
		}
		browse(t, ctx, size.name+" viewport", chromedp.EmulateViewport(size.width, size.height, opts...), chromedp.Reload(),
			pollJS(`document.querySelector("#conn").textContent === "live" && document.querySelectorAll("#messages li.agent").length >= 1`))
		for _, tab := range []string{"chat", "memories", "runs", "logs"} {
			steps := []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(`.tabs button[data-tab="` + tab + `"]`))}
			switch tab {
			case "memories":
				steps = append(steps, pollJS(`document.querySelectorAll("#memories tr").length >= 2`))
			case "runs":
				steps = append(steps, pollJS(`document.querySelectorAll("#runs .seg").length >= 1`))
			case "logs":
				// The live log shows what happens from now on.
				steps = append(steps, chromedp.Click(chromedp.CSS(`.tabs button[data-tab="chat"]`)),
					chromedp.SendKeys(chromedp.CSS("#chatInput"), "and the rivers too"), chromedp.Click(chromedp.CSS("#send")),
					pollJS(`document.querySelector("#thinking").hidden`),
					chromedp.Click(chromedp.CSS(`.tabs button[data-tab="logs"]`)),
					pollJS(`[...document.querySelectorAll("#logs li.timeline")].some(li => li.textContent.includes("RUN_ENDED"))`))
			}
			browse(t, ctx, size.name+" "+tab, steps...)
			for _, p := range eval[[]string](t, ctx, layoutProblems) {
				t.Errorf("%s, %s tab: %s", size.name, tab, p)
			}
			switch tab {
			case "runs":
				for _, p := range eval[[]string](t, ctx, barProblems) {
					t.Errorf("%s, runs timeline: %s", size.name, p)
				}
			case "logs":
				for _, line := range eval[[]string](t, ctx, `[...document.querySelectorAll("#logs li.timeline")].map(li => li.textContent)`) {
					if strings.Contains(line, "undefined") || strings.Contains(line, "NaN") || strings.Contains(line, "[object") {
						t.Errorf("%s, log line %q", size.name, line)
					}
				}
			}
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			shot, err := chromedp.Run(c, chromedp.FullScreenshot(100))
			cancel()
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			cfg, err := png.DecodeConfig(bytes.NewReader(shot))
			if err != nil || int64(cfg.Width) != size.width {
				t.Errorf("%s, %s tab: the screenshot is %d px wide (%v), want the window's %d", size.name, tab, cfg.Width, err, size.width)
			}
			if err := os.WriteFile(filepath.Join(dir, size.name+"-"+tab+".png"), shot, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("screenshots in %s", dir)
}

// layoutProblems lists what does not fit the window: a page wider than it,
// a tab or the Send button outside it or cut, and a word broken over two
// lines in the page's labels and text.
const layoutProblems = `(() => {
  const w = window.innerWidth, bad = [];
  const sw = document.documentElement.scrollWidth;
  if (sw > w) bad.push("the page is " + sw + " px wide in a " + w + " px window");
  for (const e of [...document.querySelectorAll(".tabs button"), document.getElementById("send")]) {
    const r = e.getBoundingClientRect();
    if (r.width === 0) continue;
    if (r.left < 0 || r.right > w + 0.5) bad.push(JSON.stringify(e.textContent) + " reaches from " + r.left + " to " + r.right + " px");
    if (e.scrollWidth > e.clientWidth + 1) bad.push(JSON.stringify(e.textContent) + " is cut");
  }
  const sel = "header, #agents, .tabs, #messages li, #tab-memories th, #tab-memories td, .run-head, .steps .label, .bar";
  for (const root of document.querySelectorAll(sel)) {
    if (root.getClientRects().length === 0) continue;
    const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      for (const m of n.data.matchAll(/\S+/g)) {
        const r = document.createRange();
        r.setStart(n, m.index);
        r.setEnd(n, m.index + m[0].length);
        const lines = new Set([...r.getClientRects()].filter((x) => x.width > 0).map((x) => Math.round(x.top)));
        if (lines.size > 1) bad.push("the word " + JSON.stringify(m[0]) + " is broken over " + lines.size + " lines");
      }
    }
  }
  return [...new Set(bad)];
})()`

// barProblems lists the runs timeline's bars that are not as wide as the
// share of the run their step took (a bar whose width the page's policy
// refused is 2 px).
const barProblems = `(() => {
  const bad = [];
  for (const seg of document.querySelectorAll("#runs .seg")) {
    const track = seg.parentElement.getBoundingClientRect();
    const want = parseFloat(seg.style.width);
    const got = seg.getBoundingClientRect().width;
    if (!(want > 0)) { bad.push("a bar has no width set"); continue; }
    if (Math.abs(got - Math.max(2, track.width * want / 100)) > 1) bad.push("a bar of " + want + "% is " + got + " px in a " + track.width + " px track");
  }
  return bad;
})()`

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
