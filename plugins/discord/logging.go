package discord

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bwmarrin/discordgo"
	"github.com/hashicorp/go-hclog"
)

// maxDiscordgoLine cuts discordgo's dumps of whole events below trace
// level.
const maxDiscordgoLine = 300

var (
	dgLogOnce sync.Once
	dgLog     atomic.Pointer[hclog.Logger]
)

// bridgeDiscordgoLog sends discordgo's log, a package-level function, to
// the plugin's logger. discordgo's errors and warnings are mostly ones
// this plugin handles and reports itself (a dropped connection, a rate
// limit), so they are shown a level lower; its chatter only at trace.
func bridgeDiscordgoLog(l hclog.Logger) {
	l = l.Named("discordgo")
	dgLog.Store(&l)
	dgLogOnce.Do(func() {
		discordgo.Logger = func(level, _ int, format string, a ...any) {
			lp := dgLog.Load()
			if lp == nil {
				return
			}
			msg := strings.TrimSpace(fmt.Sprintf(format, a...))
			if len(msg) > maxDiscordgoLine && level != discordgo.LogDebug {
				msg = msg[:maxDiscordgoLine] + "…"
			}
			switch level {
			case discordgo.LogError:
				(*lp).Warn(msg)
			case discordgo.LogWarning:
				(*lp).Debug(msg)
			default:
				(*lp).Trace(msg)
			}
		}
	})
}

// discordgoLevel is the level discordgo should log at for a logger.
func discordgoLevel(l hclog.Logger) int {
	if l.IsTrace() {
		return discordgo.LogDebug
	}
	return discordgo.LogWarning
}

// ignoreLog says why a message was not handed to the agent. The first
// message ignored for a reason in a channel is logged at info level, so a
// bot that stays silent says why without flooding the log; the others at
// debug level.
type ignoreLog struct {
	log  hclog.Logger
	mu   sync.Mutex
	seen map[string]bool
}

const maxIgnoreKeys = 10000

func (l *ignoreLog) ignored(channelID, reason string, kv ...any) {
	key := channelID + "\x00" + reason
	l.mu.Lock()
	if l.seen == nil || len(l.seen) > maxIgnoreKeys {
		l.seen = map[string]bool{}
	}
	first := !l.seen[key]
	l.seen[key] = true
	l.mu.Unlock()
	args := append([]any{"channel", channelID, "reason", reason}, kv...)
	if first {
		args = append(args, "note", "more messages ignored for this reason in this channel are logged at debug level")
		l.log.Info("message ignored", args...)
		return
	}
	l.log.Debug("message ignored", args...)
}
