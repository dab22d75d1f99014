package openai

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
)

// The backoff between attempts when the server does not say how long to
// wait: base, doubled each attempt, capped, with up to a quarter taken off
// at random so that many agents hitting one limit do not retry in step.
const (
	defaultBackoffBase = 500 * time.Millisecond
	defaultBackoffMax  = 8 * time.Second
)

// retryPolicy bounds the attempts of one model call. It is the only retry
// loop, so its bound is the whole bound.
type retryPolicy struct {
	maxRetries  int
	maxWait     time.Duration
	backoffBase time.Duration
	backoffMax  time.Duration
}

// attemptError is the failure of one attempt, classified.
type attemptError struct {
	err       error
	retryable bool
	// wait is what the server asked for (Retry-After), or 0.
	wait time.Duration
	// status is the HTTP status, or 0 for a transport error.
	status int
}

// classify decides whether an error of a call is worth another attempt: 429, 5xx (and 408, 409, as OpenAI's own clients do), and
// connections that failed or dropped. A cancelled call is never retried.
func classify(ctx context.Context, err error) attemptError {
	ae := attemptError{err: err}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ae
	}
	var perm *permanentError
	if errors.As(err, &perm) {
		return ae
	}
	var apiErr *httpError
	if errors.As(err, &apiErr) {
		ae.status = apiErr.StatusCode
		h := apiErr.Header
		switch h.Get("X-Should-Retry") {
		case "true":
			ae.retryable = true
		case "false":
			ae.retryable = false
		default:
			s := apiErr.StatusCode
			ae.retryable = s == http.StatusTooManyRequests || s >= 500 ||
				s == http.StatusRequestTimeout || s == http.StatusConflict
		}
		ae.wait = retryAfter(h, time.Now())
		return ae
	}
	var bad *badResponseError
	if errors.As(err, &bad) {
		return ae
	}
	// Anything else is the transport: refused, reset, EOF mid-response.
	ae.retryable = true
	return ae
}

// retryAfter reads Retry-After-Ms, then Retry-After (seconds or an HTTP
// date). It returns 0 when neither says anything usable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// backoff is the wait before retry number n (0-based) when the server set
// none.
func (p retryPolicy) backoff(n int) time.Duration {
	d := p.backoffBase
	for i := 0; i < n && d < p.backoffMax; i++ {
		d *= 2
	}
	d = min(d, p.backoffMax)
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// do runs call until it succeeds, fails for good, or the attempts are used
// up; call gets the attempt number (1-based). It returns how many attempts
// were made. An exhausted retry wraps sdk.ErrUnavailable, so the host tells
// the caller that the model is down for now rather than broken.
func (p retryPolicy) do(ctx context.Context, log hclog.Logger, what string, call func(attempt int) error) (int, error) {
	for attempt := 1; ; attempt++ {
		err := call(attempt)
		if err == nil {
			return attempt, nil
		}
		ae := classify(ctx, err)
		if !ae.retryable {
			return attempt, describe(err)
		}
		if attempt > p.maxRetries {
			return attempt, fmt.Errorf("%s failed %d times, the last with %w: %w", what, attempt, describe(err), sdk.ErrUnavailable)
		}
		wait := ae.wait
		if wait == 0 {
			wait = p.backoff(attempt - 1)
		} else if wait > p.maxWait {
			return attempt, fmt.Errorf("%s: %w; the server asks to wait %s, more than %s allows (%s): %w",
				what, describe(err), wait.Round(time.Second), SettingMaxRetryWait, p.maxWait, sdk.ErrUnavailable)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return attempt, fmt.Errorf("%s: %w; no time left to wait %s for another attempt: %w",
				what, describe(err), wait.Round(time.Millisecond), context.DeadlineExceeded)
		}
		log.Warn("model call failed; retrying", "call", what, "attempt", attempt, "status", ae.status,
			"wait_ms", wait.Milliseconds(), "server_asked", ae.wait > 0, "error", describe(err).Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, fmt.Errorf("%s: %w (while waiting to retry after %w)", what, ctx.Err(), describe(err))
		case <-t.C:
		}
	}
}

// apiError is an API error as the caller sees it: the status with its
// text, the error's code and the server's message, shortened.
type apiError struct {
	status  int
	code    string
	message string
	err     error
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.status, http.StatusText(e.status))
	if e.code != "" {
		s += " (" + e.code + ")"
	}
	if e.message != "" {
		s += ": " + e.message
	}
	return s
}

func (e *apiError) Unwrap() error { return e.err }

// describe puts the server's message into an API error, shortened; other
// errors pass as they are.
func describe(err error) error {
	var already *apiError
	if errors.As(err, &already) {
		return err
	}
	var apiErr *httpError
	if !errors.As(err, &apiErr) {
		return err
	}
	msg := strings.TrimSpace(apiErr.Message)
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return &apiError{status: apiErr.StatusCode, code: apiErr.Code, message: msg, err: err}
}

// badResponseError is an answer that arrived but cannot be used (no
// choices, a malformed embedding). Asking again would not help.
type badResponseError struct{ msg string }

func (e *badResponseError) Error() string { return e.msg }

func badResponse(format string, args ...any) error {
	return &badResponseError{msg: fmt.Sprintf(format, args...)}
}

// permanentError marks a failure that another attempt would not mend, or
// must not try to: text already streamed to the caller, a host that went
// away.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err: err} }
