package sdk_test

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/internal/wire"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// typed is what the settings plugin below reads at Configure.
type typed struct {
	name    string
	count   int
	ratio   float64
	on      bool
	every   time.Duration
	chans   []string
	hasName bool
}

// settingsPlugin declares one setting of each type, with defaults, and
// reads them all at Configure; a bad value stops the agent.
func settingsPlugin(got chan<- typed) sdk.Plugin {
	return sdk.Plugin{Name: "typed",
		Settings: []sdk.Setting{
			{Name: "T_NAME", Default: "world"},
			{Name: "T_COUNT", Default: "3"},
			{Name: "T_RATIO", Default: "0.5"},
			{Name: "T_ON", Default: "true"},
			{Name: "T_EVERY", Default: "1500"},
			{Name: "T_CHANS"},
			{Name: "T_KEY", Description: "The service's API key.", Required: true, Secret: true},
		},
		Configure: func(ctx context.Context, a *sdk.Agent) ([]string, error) {
			c := a.Config()
			v := typed{name: c.String("T_NAME"), count: c.IntBetween("T_COUNT", 1, 10), ratio: c.Float("T_RATIO"),
				on: c.Bool("T_ON"), every: c.Duration("T_EVERY", time.Millisecond), chans: c.List("T_CHANS"), hasName: c.Has("T_NAME")}
			if err := c.Err(); err != nil {
				return nil, err
			}
			got <- v
			return nil, nil
		}}
}

func TestSettingsDefaultsAndValues(t *testing.T) {
	got := make(chan typed, 1)
	c := plugintest.Start(t, settingsPlugin(got))
	ctx := t.Context()
	if _, err := c.Configure(ctx, "a1", nil, map[string]string{"T_KEY": "k"}); err != nil {
		t.Fatal(err)
	}
	want := typed{name: "world", count: 3, ratio: 0.5, on: true, every: 1500 * time.Millisecond}
	if v := <-got; !reflect.DeepEqual(v, want) {
		t.Errorf("with nothing set: %+v, want the declared defaults %+v", v, want)
	}
	if _, err := c.Configure(ctx, "a2", nil, map[string]string{"T_KEY": "k", "T_NAME": " Ada ", "T_COUNT": "10",
		"T_RATIO": "-2.5", "T_ON": "OFF", "T_EVERY": "2m", "T_CHANS": `["general", 42]`}); err != nil {
		t.Fatal(err)
	}
	want = typed{name: "Ada", count: 10, ratio: -2.5, on: false, every: 2 * time.Minute, chans: []string{"general", "42"}, hasName: true}
	if v := <-got; !reflect.DeepEqual(v, want) {
		t.Errorf("with values set: %+v, want %+v", v, want)
	}
}

func TestSettingsBadValuesNameTheSetting(t *testing.T) {
	c := plugintest.Start(t, settingsPlugin(make(chan typed, 1)))
	_, err := c.Configure(t.Context(), "a1", nil, map[string]string{"T_KEY": "k", "T_COUNT": "11", "T_ON": "maybe", "T_EVERY": "-1s"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("configure: %v, want InvalidArgument", err)
	}
	for _, want := range []string{`setting T_COUNT: "11" is not a whole number from 1 to 10`, `setting T_ON: "maybe" is not true or false`,
		`setting T_EVERY: "-1s" is not a number of milliseconds or a duration such as 1m30s`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error should say %q; it is: %v", want, err)
		}
	}
}

func TestRequiredSettingStopsTheAgentBeforeConfigure(t *testing.T) {
	var ran atomic.Int32
	p := settingsPlugin(make(chan typed, 1))
	inner := p.Configure
	p.Configure = func(ctx context.Context, a *sdk.Agent) ([]string, error) {
		ran.Add(1)
		return inner(ctx, a)
	}
	p.Instances = &sdk.Instances[int]{New: func(context.Context, *sdk.Agent) (int, []string, error) {
		ran.Add(1)
		return 1, nil, nil
	}}
	c := plugintest.Start(t, p)
	for _, settings := range []map[string]string{nil, {"T_KEY": "  "}} {
		_, err := c.Configure(t.Context(), "a1", &sdk.Character{Name: "Ada"}, settings)
		if err == nil {
			t.Fatalf("settings %v: the agent started without its required T_KEY", settings)
		}
		for _, want := range []string{"plugin typed", "the setting T_KEY (The service's API key) is required", "agent Ada (a1)", "character's secrets", "environment"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error should say %q; it is: %v", want, err)
			}
		}
	}
	if ran.Load() != 0 {
		t.Error("New or Configure ran for an agent without its required setting")
	}
}

func TestSettingDeclarationsAreChecked(t *testing.T) {
	for why, settings := range map[string][]sdk.Setting{
		"Required and has a Default": {{Name: "X", Required: true, Default: "1"}},
		"declared twice":             {{Name: "X"}, {Name: "X"}},
		"empty name":                 {{Name: " "}},
	} {
		if _, err := newGRPCServer(sdk.Plugin{Name: "p", Settings: settings}, nil); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("settings %+v: %v, want an error saying %q", settings, err, why)
		}
	}
}

func TestSettingsWarningsSayWhatIsUsed(t *testing.T) {
	var warnings []string
	p := sdk.Plugin{Name: "lenient", Settings: []sdk.Setting{{Name: "N", Default: "32"}, {Name: "M"}},
		Configure: func(ctx context.Context, a *sdk.Agent) ([]string, error) {
			c := a.Config()
			if n := c.IntBetween("N", 1, 100); n != 32 {
				t.Errorf("a bad value reads as %d, want the default 32", n)
			}
			if m := c.Int("M"); m != 0 {
				t.Errorf("a bad value without a default reads as %d, want 0", m)
			}
			if !errors.Is(c.Err(), sdk.ErrInvalid) {
				t.Errorf("Err() = %v, want an ErrInvalid", c.Err())
			}
			return c.Warnings(), nil
		}}
	c := plugintest.Start(t, p)
	warnings, err := c.Configure(t.Context(), "a1", nil, map[string]string{"N": "0", "M": "many"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`setting N: "0" is not a whole number from 1 to 100; using the default, 32`, `setting M: "many" is not a whole number; ignored`}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
}

func TestSettingParsers(t *testing.T) {
	read := func(v string, get func(*sdk.Config) any) (any, error) {
		c := (&sdk.Agent{ID: "a", Settings: map[string]string{"S": v}}).Config()
		out := get(c)
		return out, c.Err()
	}
	bad := errors.New("bad")
	for _, tc := range []struct {
		v    string
		get  func(*sdk.Config) any
		want any
	}{
		{"yes", func(c *sdk.Config) any { return c.Bool("S") }, true},
		{"On", func(c *sdk.Config) any { return c.Bool("S") }, true},
		{"0", func(c *sdk.Config) any { return c.Bool("S") }, false},
		{"nope", func(c *sdk.Config) any { return c.Bool("S") }, bad},
		{"", func(c *sdk.Config) any { return c.Bool("S") }, false},
		{"-7", func(c *sdk.Config) any { return c.Int("S") }, -7},
		{"7.5", func(c *sdk.Config) any { return c.Int("S") }, bad},
		{"1e3", func(c *sdk.Config) any { return c.Float("S") }, 1000.0},
		{"NaN", func(c *sdk.Config) any { return c.Float("S") }, bad},
		{"30", func(c *sdk.Config) any { return c.Duration("S", time.Second) }, 30 * time.Second},
		{"0.25", func(c *sdk.Config) any { return c.Duration("S", time.Second) }, 250 * time.Millisecond},
		{"1h5m", func(c *sdk.Config) any { return c.Duration("S", time.Second) }, time.Hour + 5*time.Minute},
		{"soon", func(c *sdk.Config) any { return c.Duration("S", time.Second) }, bad},
		{"1e300", func(c *sdk.Config) any { return c.Duration("S", time.Second) }, bad},
		{"a, b ,,c", func(c *sdk.Config) any { return c.List("S") }, []string{"a", "b", "c"}},
		{`["x", -1001234567890123]`, func(c *sdk.Config) any { return c.List("S") }, []string{"x", "-1001234567890123"}},
		{`[GROUP, "DM"]`, func(c *sdk.Config) any { return c.List("S") }, []string{"GROUP", "DM"}},
		{`[]`, func(c *sdk.Config) any { return c.List("S") }, []string(nil)},
		{`[{"a": 1}]`, func(c *sdk.Config) any { return c.List("S") }, bad},
	} {
		got, err := read(tc.v, tc.get)
		if tc.want == bad {
			if err == nil || !strings.Contains(err.Error(), "setting S: ") || !strings.Contains(err.Error(), strconv.Quote(tc.v)) {
				t.Errorf("%q: %v, %v; want an error naming the setting and the value", tc.v, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %#v, %v; want %#v", tc.v, got, err, tc.want)
		}
	}
}

// newGRPCServer is the SDK's server, which sdk/plugintest serves plugins
// with (see sdk/internal/wire).
func newGRPCServer(p sdk.Plugin, log hclog.Logger) (*grpc.Server, error) {
	return wire.Conversions.(interface {
		NewGRPCServer(sdk.Plugin, hclog.Logger, ...grpc.ServerOption) (*grpc.Server, error)
	}).NewGRPCServer(p, log)
}
