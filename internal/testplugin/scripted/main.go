// Command scripted is a test plugin: a TEXT_LARGE/TEXT_SMALL model that
// answers from its agent's settings instead of a paid API, so tests can
// drive the real pipeline deterministically.
//
// Settings (from the character):
//   - SCRIPTED_REPLY: the reply text; "%s" is replaced by the received text.
//   - SCRIPTED_ACTIONS: the actions of the reply, e.g. "REPLY,TS_EXAMPLE_ACTION".
//   - SCRIPTED_PROBE: a string; the reply says whether the prompt contained it.
//   - SCRIPTED_DELAY_MS: wait this long before answering (honouring ctx).
//   - SCRIPTED_MARK_DIR: write "pid" at configure and "model-started" when a
//     model call begins, so a test can kill the process mid-call.
//   - SCRIPTED_HOSTILE_LOGS: "true" writes malformed log lines to stderr.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "scripted",
		Version: "0.0.1",
		Models: []sdk.Model{
			{Type: sdk.ModelTextLarge, Priority: 10, Handler: answer},
			{Type: sdk.ModelTextSmall, Priority: 10, Handler: answer},
		},
		Configure: func(ctx context.Context, a *sdk.Agent) ([]string, error) {
			if dir := a.Setting("SCRIPTED_MARK_DIR"); dir != "" {
				if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
					return nil, err
				}
			}
			if a.Setting("SCRIPTED_HOSTILE_LOGS") == "true" {
				hostileLogs()
			}
			return nil, nil
		},
	})
}

// hostileLogs writes what a buggy plugin might: JSON with wrongly typed
// reserved keys (which crash go-plugin's own parser), broken JSON, a very
// long line and binary junk.
func hostileLogs() {
	w := os.Stderr
	fmt.Fprintln(w, `{"@message": 123, "@level": 7, "@timestamp": false}`)
	fmt.Fprintln(w, `{"@message": {"nested": true}, "@level": ["info"]}`)
	fmt.Fprintln(w, `{"@message": "unterminated`)
	fmt.Fprintln(w, strings.Repeat("x", 300<<10))
	fmt.Fprintln(w, "\x00\xff\xfe binary \x1b[31m junk")
	fmt.Fprintln(w, `[ERROR] a prefixed line`)
}

func answer(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if dir := a.Setting("SCRIPTED_MARK_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "model-started"), []byte(time.Now().String()), 0o644)
	}
	if ms, _ := strconv.Atoi(a.Setting("SCRIPTED_DELAY_MS")); ms > 0 {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	received := receivedText(req.Prompt)
	text := a.Setting("SCRIPTED_REPLY")
	if text == "" {
		text = "scripted reply to: %s"
	}
	text = strings.ReplaceAll(text, "%s", received)
	if probe := a.Setting("SCRIPTED_PROBE"); probe != "" {
		text += fmt.Sprintf(" [probe seen: %t]", strings.Contains(req.Prompt, probe))
	}
	actions := a.Setting("SCRIPTED_ACTIONS")
	if actions == "" {
		actions = "REPLY"
	}
	out := fmt.Sprintf("<response><thought>scripted</thought><actions>%s</actions><text>%s</text></response>", actions, text)
	return &sdk.ModelResponse{Text: out, Model: "scripted"}, nil
}

// receivedText finds the message to answer in a bootstrap prompt.
func receivedText(prompt string) string {
	const marker = "# Received Message\n"
	i := strings.LastIndex(prompt, marker)
	if i < 0 {
		return ""
	}
	line, _, _ := strings.Cut(prompt[i+len(marker):], "\n")
	if _, text, ok := strings.Cut(line, ": "); ok {
		return text
	}
	return line
}
