// Command versioned is a test plugin built in variants with -ldflags -X,
// for the tests of plugins dropped in, upgraded and pinned while the daemon
// runs:
//
//	-X main.version=2    the version it says it is (and answers with)
//	-X main.name=other   the plugin it says it is
//	-X main.require=KEY  a setting it requires
//	-X main.broken=exit  exits before its handshake
//
// It is a TEXT_LARGE/TEXT_SMALL model whose reply names its version and
// process, so that a test sees which process answered each message.
// Version 1 also offers the action V1_ONLY and the provider V1_NEWS, which
// later versions dropped.
//
// Settings: VERSIONED_DELAY_MS (answer after this long), VERSIONED_MARK_DIR
// (the process's first model call for the folder writes first-call-vVERSION
// there, the Unix time in nanoseconds), VERSIONED_HOLD (a file: a model
// call waits until it exists, so that a test holds a call in flight).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

var (
	version = "1"
	name    = "versioned"
	require = ""
	broken  = ""
)

func main() {
	if broken == "exit" {
		fmt.Fprintln(os.Stderr, "versioned: this build exits before its handshake")
		os.Exit(3)
	}
	settings := []sdk.Setting{
		{Name: "VERSIONED_DELAY_MS", Description: "Answer after this many milliseconds.", Default: "0"},
		{Name: "VERSIONED_MARK_DIR", Description: "Where the first model call is marked."},
		{Name: "VERSIONED_HOLD", Description: "A file a model call waits for."},
	}
	if require != "" {
		settings = append(settings, sdk.Setting{Name: require, Description: "A setting this build requires.", Required: true})
	}
	p := sdk.Plugin{
		Name:     name,
		Version:  version,
		Settings: settings,
		Models: []sdk.Model{
			{Type: sdk.ModelTextLarge, Priority: 100, Handler: answer},
			{Type: sdk.ModelTextSmall, Priority: 100, Handler: answer},
		},
	}
	if version == "1" {
		p.Actions = []sdk.Action{{Name: "V1_ONLY", Description: "An action only version 1 has.",
			Handler: func(context.Context, *sdk.Agent, *sdk.ActionCall) (sdk.ActionResult, error) {
				return sdk.ActionResult{Success: true}, nil
			}}}
		p.Providers = []sdk.Provider{{Name: "V1_NEWS", Description: "A provider only version 1 has.",
			Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
				return sdk.ProviderResult{Text: "version 1 news"}, nil
			}}}
	}
	sdk.Serve(p)
}

// marked holds the folders marked by this process.
var marked sync.Map

func answer(ctx context.Context, a *sdk.Agent, _ *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if dir := a.Setting("VERSIONED_MARK_DIR"); dir != "" {
		if _, done := marked.LoadOrStore(dir, true); !done {
			_ = os.WriteFile(filepath.Join(dir, "first-call-v"+version), []byte(strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644)
		}
	}
	if hold := a.Setting("VERSIONED_HOLD"); hold != "" {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if _, err := os.Stat(hold); err == nil {
				break
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	if d := a.Config().Int("VERSIONED_DELAY_MS"); d > 0 {
		select {
		case <-time.After(time.Duration(d) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	text := fmt.Sprintf("version %s pid %d", version, os.Getpid())
	return &sdk.ModelResponse{Text: "<response><thought>versioned</thought><actions>REPLY</actions><text>" + text + "</text></response>", Model: "versioned"}, nil
}
