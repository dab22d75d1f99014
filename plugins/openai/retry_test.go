package openai

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agenthost/agenthost/plugins/openai/openaitest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	e.srv.FailNext("/chat/completions", openaitest.Fault{Status: 429, Header: map[string]string{"Retry-After": "1"},
		Message: "Rate limit reached for gpt-4o-mini: requests per min (RPM): Limit 3."})
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "hi"})
	if !strings.Contains(res.Text, "Hello") {
		t.Errorf("text = %q", res.Text)
	}
	reqs := e.srv.Requests("/chat/completions")
	if len(reqs) != 2 || reqs[0].Status != 429 || reqs[1].Status != 200 {
		t.Fatalf("requests: %+v", reqs)
	}
	// The server asked for a second; the retry must not come sooner.
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < time.Second {
		t.Errorf("retried after %s, before the Retry-After of 1s", gap)
	}
	warn := e.log.entries("model call failed; retrying")
	if len(warn) != 1 || warn[0]["status"] != 429.0 || warn[0]["server_asked"] != true || warn[0]["wait_ms"] != 1000.0 {
		t.Errorf("retry log = %v", warn)
	}
	calls := e.log.entries("model call")
	if len(calls) != 1 || calls[0]["attempts"] != 2.0 || calls[0]["outcome"] != "ok" {
		t.Errorf("call log = %v", calls)
	}
}

func TestRetryAfterMsIsPreferred(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	e.srv.FailNext("/embeddings", openaitest.Fault{Status: 429, Header: map[string]string{"Retry-After-Ms": "300", "Retry-After": "30"}})
	e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: "x"})
	reqs := e.srv.Requests("/embeddings")
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 300*time.Millisecond {
		t.Errorf("retried after %s, before the Retry-After-Ms of 300ms", gap)
	}
}

func TestServerErrorThenSuccess(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	e.srv.FailNext("/chat/completions", openaitest.Fault{Status: 500})
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "hi"})
	if res.Text == "" || len(e.srv.Requests("/chat/completions")) != 2 {
		t.Errorf("text %q after %d requests", res.Text, len(e.srv.Requests("/chat/completions")))
	}
	ev := e.events(1)[0]
	if ev.Payload["outcome"] != "ok" || ev.Payload["attempts"] != 2.0 {
		t.Errorf("MODEL_USED = %v", ev.Payload)
	}
}

func TestPersistentServerErrorIsBounded(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(SettingMaxRetries, "2"), nil)
	for range 10 {
		e.srv.FailNext("/chat/completions", openaitest.Fault{Status: 500, Message: "The server had an error while processing your request."})
	}
	_, err := e.use(sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "hi"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"failed 3 times", "HTTP 500", "The server had an error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if n := len(e.srv.Requests("/chat/completions")); n != 3 {
		t.Errorf("want 1 attempt + 2 retries = 3 requests, got %d", n)
	}
	calls := e.log.entries("model call")
	if len(calls) != 1 || calls[0]["outcome"] != "error" || !strings.Contains(calls[0]["error"].(string), "HTTP 500") {
		t.Errorf("call log = %v", calls)
	}
	if ev := e.events(1)[0]; ev.Payload["outcome"] != "error" {
		t.Errorf("MODEL_USED = %v", ev.Payload)
	}
}

func TestRetryAfterTooLongFailsAtOnce(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(SettingMaxRetryWait, "5"), nil)
	e.srv.FailNext("/chat/completions", openaitest.Fault{Status: 429, Header: map[string]string{"Retry-After": "3600"}})
	_, err := e.use(sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "hi"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), SettingMaxRetryWait) {
		t.Errorf("err = %v", err)
	}
	if n := len(e.srv.Requests("/chat/completions")); n != 1 {
		t.Errorf("%d requests", n)
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(SettingAPIKey, "sk-wrong"), nil)
	_, err := e.use(sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "hi"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "Incorrect API key") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), "sk-wrong") {
		t.Error("the key leaked into the error")
	}
	if n := len(e.srv.Requests("")); n != 1 {
		t.Errorf("a 401 was retried: %d requests", n)
	}
}

func TestUnreachableServerIsRetriedThenFails(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	e := start(t)
	e.configure(map[string]string{SettingAPIKey: "k", SettingBaseURL: "http://" + addr + "/v1", SettingMaxRetries: "2"}, nil)
	_, err = e.use(sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "hi"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "failed 3 times") {
		t.Errorf("err = %v", err)
	}
	if n := len(e.log.entries("model call failed; retrying")); n != 2 {
		t.Errorf("%d retries logged", n)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "9"}, 250 * time.Millisecond},
		{map[string]string{"Retry-After": now.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": "-3"}, 0},
		{nil, 0},
	} {
		h := http.Header{}
		for k, v := range c.h {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != c.want {
			t.Errorf("%v: %s, want %s", c.h, got, c.want)
		}
	}
}

func TestBackoffIsBounded(t *testing.T) {
	t.Parallel()
	p := retryPolicy{backoffBase: 100 * time.Millisecond, backoffMax: time.Second}
	for n := range 40 {
		d := p.backoff(n)
		if d <= 0 || d > time.Second {
			t.Fatalf("backoff(%d) = %s", n, d)
		}
	}
	if d := p.backoff(0); d < 75*time.Millisecond {
		t.Errorf("backoff(0) = %s: at most a quarter is taken off", d)
	}
}

// TestRetryStopsWithTheContext runs in a bubble of fake time: the retry
// waits an hour, and the test cancels it once it is surely waiting.
func TestRetryStopsWithTheContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := retryPolicy{maxRetries: 5, maxWait: time.Minute, backoffBase: time.Hour, backoffMax: time.Hour}
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		done := make(chan error)
		go func() {
			_, err := p.do(ctx, hclog.NewNullLogger(), "test", func(int) error { calls++; return errors.New("connection reset") })
			done <- err
		}()
		synctest.Wait() // the retry waits for its timer or the context
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) || calls != 1 {
				t.Errorf("err %v after %d calls", err, calls)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the retry wait ignored the cancelled context")
		}
		// A deadline too close for the wait fails at once.
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := p.do(ctx, hclog.NewNullLogger(), "test", func(int) error { return errors.New("connection reset") })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v", err)
		}
		if errors.Is(err, sdk.ErrUnavailable) {
			t.Error("a deadline is not unavailability")
		}
	})
}
