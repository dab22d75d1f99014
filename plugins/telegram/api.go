package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"github.com/hashicorp/go-hclog"
)

// botAPI is one bot's connection to the Bot API: the client library for
// every method, plus getUpdates, which the plugin calls itself because the
// library's own polling loop confirms updates as soon as it receives them,
// and the plugin confirms them only once they are handled.
type botAPI struct {
	b      *bot.Bot
	client *http.Client
	root   string
	token  string
	log    hclog.Logger
}

// defaultAPIRoot is where the Bot API lives unless TELEGRAM_API_ROOT says
// otherwise.
const defaultAPIRoot = "https://api.telegram.org"

func newBotAPI(token, root string, log hclog.Logger) (*botAPI, error) {
	if root == "" {
		root = defaultAPIRoot
	}
	root = strings.TrimRight(root, "/")
	// Calls are bounded by their contexts: long polls wait longer than
	// ordinary calls.
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 0,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
	}}
	api := &botAPI{client: client, root: root, token: token, log: log}
	b, err := bot.New(token,
		bot.WithSkipGetMe(),
		bot.WithServerURL(root),
		bot.WithHTTPClient(time.Minute, client),
		bot.WithErrorsHandler(func(err error) { log.Debug("bot api", "error", api.scrub(err.Error())) }),
		bot.WithDefaultHandler(func(context.Context, *bot.Bot, *models.Update) {}),
	)
	if err != nil {
		return nil, fmt.Errorf("TELEGRAM_BOT_TOKEN: %w", err)
	}
	api.b = b
	return api, nil
}

// scrub removes the token from text bound for a log.
func (api *botAPI) scrub(s string) string {
	if api.token == "" {
		return s
	}
	return strings.ReplaceAll(s, api.token, "<token>")
}

// apiReply is the Bot API's envelope.
type apiReply struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// getUpdates asks for the updates from offset on, waiting up to timeout
// for one to come. Passing offset confirms every update before it: the
// Bot API then forgets them.
func (api *botAPI) getUpdates(ctx context.Context, offset int64, timeout time.Duration, allowed []string) ([]json.RawMessage, error) {
	body, _ := json.Marshal(map[string]any{"offset": offset, "timeout": int(timeout.Seconds()), "allowed_updates": allowed})
	ctx, cancel := context.WithTimeout(ctx, timeout+20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.root+"/bot"+api.token+"/getUpdates", bytes.NewReader(body))
	if err != nil {
		return nil, errors.New(api.scrub(err.Error()))
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := api.client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, &netError{msg: api.scrub(err.Error())}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, &netError{msg: "read getUpdates answer: " + api.scrub(err.Error())}
	}
	var r apiReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, &netError{msg: fmt.Sprintf("getUpdates answered HTTP %d with no Bot API reply: %.200s", res.StatusCode, raw)}
	}
	if !r.OK {
		return nil, replyError("getUpdates", &r)
	}
	var updates []json.RawMessage
	if err := json.Unmarshal(r.Result, &updates); err != nil {
		return nil, fmt.Errorf("getUpdates: the result is not a list of updates: %w", err)
	}
	return updates, nil
}

// replyError turns a failed Bot API reply into the error the library
// returns for the same reply, so that one classification serves both.
func replyError(method string, r *apiReply) error {
	switch r.ErrorCode {
	case http.StatusTooManyRequests:
		return &bot.TooManyRequestsError{Message: fmt.Sprintf("%s, %s", bot.ErrorTooManyRequests, r.Description), RetryAfter: r.Parameters.RetryAfter}
	case http.StatusUnauthorized:
		return fmt.Errorf("%w, %s", bot.ErrorUnauthorized, r.Description)
	case http.StatusForbidden:
		return fmt.Errorf("%w, %s", bot.ErrorForbidden, r.Description)
	case http.StatusNotFound:
		return fmt.Errorf("%w, %s", bot.ErrorNotFound, r.Description)
	case http.StatusConflict:
		return fmt.Errorf("%w, %s", bot.ErrorConflict, r.Description)
	case http.StatusBadRequest:
		return fmt.Errorf("%w, %s", bot.ErrorBadRequest, r.Description)
	}
	return fmt.Errorf("error response from telegram for method %s, %d %s", method, r.ErrorCode, r.Description)
}

// permanentError is a Bot API call that failed for good (a blocked bot, a
// chat that is gone, a refused request): retrying cannot help.
type permanentError struct {
	err   error
	cause error
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.cause }

// netError is a failure to reach the Bot API at all.
type netError struct{ msg string }

func (e *netError) Error() string { return e.msg }

// errKind says what to do about a failed call.
type errKind int

const (
	errPermanent   errKind = iota // give up on this call
	errTransient                  // the network or Telegram's servers: back off and retry
	errRateLimited                // 429: wait retry_after
	errRevoked                    // the token is wrong or was revoked
	errConflict                   // another poller or a webhook
	errCanceled                   // our own context
)

var serverErrRE = regexp.MustCompile(`error response from telegram for method \S+, (\d{3}) `)

// classify sorts a Bot API error; wait is Telegram's retry_after.
func classify(err error) (errKind, time.Duration) {
	var tooMany *bot.TooManyRequestsError
	var ne *netError
	var urlErr interface{ Timeout() bool }
	switch {
	case err == nil:
		return errPermanent, 0
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &urlErr):
		return errCanceled, 0
	case errors.As(err, &tooMany):
		wait := time.Duration(tooMany.RetryAfter) * time.Second
		if wait <= 0 {
			wait = time.Second
		}
		return errRateLimited, wait
	case errors.Is(err, bot.ErrorUnauthorized), errors.Is(err, bot.ErrorNotFound):
		return errRevoked, 0
	case errors.Is(err, bot.ErrorConflict):
		return errConflict, 0
	case errors.Is(err, bot.ErrorForbidden), errors.Is(err, bot.ErrorBadRequest):
		return errPermanent, 0
	case errors.As(err, &ne):
		return errTransient, 0
	}
	msg := err.Error()
	if m := serverErrRE.FindStringSubmatch(msg); m != nil {
		if code, _ := strconv.Atoi(m[1]); code >= 500 {
			return errTransient, 0
		}
		return errPermanent, 0
	}
	// The library's own wording for a request that never got a Bot API
	// answer: no connection, a reset, a proxy's HTML error page.
	for _, s := range []string{"error do request", "error read response body", "error decode response body"} {
		if strings.Contains(msg, s) {
			return errTransient, 0
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTransient, 0
	}
	return errPermanent, 0
}

// revokedError explains a refused token in words a person can act on.
func revokedError(agent string, err error, scrub func(string) string) error {
	return fmt.Errorf("telegram refused the TELEGRAM_BOT_TOKEN of agent %s (%s): the token is wrong or was revoked; "+
		"get a new one from @BotFather and restart the agent", agent, scrub(err.Error()))
}

// backoff is an exponential wait between retries.
type backoff struct {
	next, max time.Duration
}

func newBackoff() *backoff { return &backoff{next: 500 * time.Millisecond, max: 30 * time.Second} }

func (b *backoff) wait() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.max)
	return d
}

func (b *backoff) reset() { b.next = 500 * time.Millisecond }

// sleep waits d or until ctx ends; it reports whether the wait was whole.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// call runs one Bot API call under the fault policy: a 429 waits the
// retry_after Telegram asks for, network errors and server errors back off
// and retry, and everything else returns at once. It gives up when the
// next wait would pass ctx's deadline.
func (c *connector) call(ctx context.Context, what string, f func(ctx context.Context) error) error {
	bo := newBackoff()
	for {
		cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		err := f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		kind, wait := classify(err)
		switch kind {
		case errRateLimited:
			c.log.Warn("telegram asks to slow down", "call", what, "retry_after", wait)
		case errTransient:
			wait = bo.wait()
			c.log.Warn("telegram call failed; retrying", "call", what, "in", wait, "error", c.api.scrub(err.Error()))
		case errRevoked:
			c.revoked(err)
			return revokedError(c.agent.Name(), err, c.api.scrub)
		case errCanceled:
			return fmt.Errorf("telegram %s: %s", what, c.api.scrub(err.Error()))
		default:
			return &permanentError{fmt.Errorf("telegram %s: %s", what, c.api.scrub(err.Error())), err}
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("telegram %s: %s; a retry in %s would come after the deadline", what, c.api.scrub(err.Error()), wait)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}
