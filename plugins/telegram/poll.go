package telegram

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/go-telegram/bot"
)

// Updates are confirmed only once handled. With long polling, asking
// getUpdates for offset N confirms every update before N, and the plugin
// asks for N only after update N-1 was handed to the host; the offset is
// also kept in the agent's cache. A plugin killed between handing an
// update over and confirming it gets the update again after its restart,
// and the host ignores it: its memory id comes from the platform's ids,
// so the agent answers it once. With a webhook, Telegram sends an update
// again until the daemon answers 200, which it does once the update is
// handed over.

func (c *connector) offsetKey() string {
	id, _, _ := strings.Cut(c.cfg.token, ":")
	return "telegram/offset/" + id
}

func (c *connector) loadOffset() int64 {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	raw, found, err := storage.For(c.agent).GetCache(ctx, c.offsetKey())
	if err != nil {
		c.log.Warn("could not read the saved update offset; asking Telegram for every unconfirmed update", "error", err)
		return 0
	}
	if !found {
		return 0
	}
	n, _ := strconv.ParseInt(string(raw), 10, 64)
	return n
}

func (c *connector) saveOffset(offset int64) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if err := storage.For(c.agent).SetCache(ctx, c.offsetKey(), []byte(strconv.FormatInt(offset, 10)), 0); err != nil {
		c.log.Debug("could not save the update offset (Telegram keeps it too)", "error", err)
	}
}

// poll receives updates by long polling until the agent stops.
func (c *connector) poll() {
	offset := c.loadOffset()
	bo := newBackoff()
	for c.ctx.Err() == nil {
		raws, err := c.api.getUpdates(c.ctx, offset, pollTimeout, allowedUpdates)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			kind, wait := classify(err)
			switch kind {
			case errRevoked:
				c.revoked(err)
				return
			case errConflict:
				if strings.Contains(strings.ToLower(err.Error()), "webhook") {
					c.log.Info("a webhook is set for this bot; removing it to poll (set TELEGRAM_WEBHOOK_URL to use webhooks)")
					dctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
					_, derr := c.api.b.DeleteWebhook(dctx, &bot.DeleteWebhookParams{})
					cancel()
					if derr == nil {
						continue
					}
					c.log.Warn("could not remove the webhook", "error", c.api.scrub(derr.Error()))
				} else {
					c.log.Warn("another program polls this bot's updates; only one can (stop the other, or give this agent its own bot)")
				}
				wait = bo.wait()
			case errRateLimited:
				c.log.Warn("telegram asks to slow down", "call", "getUpdates", "retry_after", wait)
			default:
				wait = bo.wait()
				c.log.Warn("getUpdates failed; retrying", "in", wait, "error", c.api.scrub(err.Error()))
			}
			if !sleep(c.ctx, wait) {
				return
			}
			continue
		}
		bo.reset()
		for _, raw := range raws {
			id := updateID(raw)
			if id < offset {
				continue
			}
			for {
				err := c.handleRaw(c.ctx, raw)
				if err == nil {
					break
				}
				if c.ctx.Err() != nil || c.isDead() {
					// The agent is stopping: the update stays unconfirmed.
					return
				}
				wait := bo.wait()
				c.log.Warn("update not handled yet; trying again", "update_id", id, "in", wait, "error", err)
				if !sleep(c.ctx, wait) {
					return
				}
			}
			bo.reset()
			offset = id + 1
			c.saveOffset(offset)
		}
	}
}

func updateID(raw []byte) int64 {
	var u struct {
		ID int64 `json:"update_id"`
	}
	_ = json.Unmarshal(raw, &u)
	return u.ID
}

// webhookURL is where Telegram posts the agent's updates.
func (c *connector) webhookURL() string {
	u := strings.TrimRight(c.cfg.webhookURL, "/")
	if strings.Contains(u, "/hooks/") {
		return u
	}
	return u + "/hooks/telegram/" + c.agent.ID
}

// keepWebhook registers the webhook and keeps trying until Telegram
// accepts it.
func (c *connector) keepWebhook() {
	bo := newBackoff()
	for c.ctx.Err() == nil {
		err := c.call(c.ctx, "setWebhook", func(ctx context.Context) error {
			_, err := c.api.b.SetWebhook(ctx, &bot.SetWebhookParams{URL: c.webhookURL(), SecretToken: c.cfg.webhookSecret,
				AllowedUpdates: allowedUpdates})
			return err
		})
		if err == nil {
			c.log.Info("telegram webhook set", "url", c.webhookURL())
			return
		}
		if c.isDead() || c.ctx.Err() != nil {
			return
		}
		wait := bo.wait()
		c.log.Error("telegram refused the webhook; trying again", "url", c.webhookURL(), "in", wait, "error", err)
		if !sleep(c.ctx, wait) {
			return
		}
	}
}

// serveHTTP receives webhook calls, forwarded by the daemon from
// /hooks/telegram/{agentId}. It answers 200 once the update is handed to
// the agent; any other answer makes Telegram send the update again.
func (t *telegram) serveHTTP(ctx context.Context, a *sdk.Agent, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	c := t.connOf(a)
	if c == nil || c.cfg.webhookURL == "" {
		return &sdk.HTTPResponse{Status: http.StatusNotFound, Body: []byte("this agent takes no Telegram webhook\n")}, nil
	}
	if req.Method != http.MethodPost {
		return &sdk.HTTPResponse{Status: http.StatusMethodNotAllowed, Header: http.Header{"Allow": {"POST"}}}, nil
	}
	got := req.Header.Get("X-Telegram-Bot-Api-Secret-Token")
	if subtle.ConstantTimeCompare([]byte(got), []byte(c.cfg.webhookSecret)) != 1 {
		c.log.Warn("refused a webhook call without the right secret token", "from", req.RemoteAddr)
		return &sdk.HTTPResponse{Status: http.StatusUnauthorized}, nil
	}
	if c.bot() == nil {
		return &sdk.HTTPResponse{Status: http.StatusServiceUnavailable, Body: []byte("not online yet\n")}, nil
	}
	hctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	if err := c.handleRaw(hctx, req.Body); err != nil {
		return &sdk.HTTPResponse{Status: http.StatusServiceUnavailable, Body: []byte(fmt.Sprintf("not handled: %v\n", err))}, nil
	}
	return &sdk.HTTPResponse{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte("{}")}, nil
}
