package discord

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/agenthost/agenthost/sdk"
	"github.com/bwmarrin/discordgo"
)

// Setting names. They are elizaOS's, so a character and a .env written
// for elizaOS's Discord plugin work unchanged.
const (
	SettingToken            = "DISCORD_API_TOKEN"
	SettingApplicationID    = "DISCORD_APPLICATION_ID"
	SettingChannelIDs       = "CHANNEL_IDS"
	SettingListenChannelIDs = "DISCORD_LISTEN_CHANNEL_IDS"
	SettingIgnoreBots       = "DISCORD_SHOULD_IGNORE_BOT_MESSAGES"
	SettingIgnoreDMs        = "DISCORD_SHOULD_IGNORE_DIRECT_MESSAGES"
	SettingOnlyMentions     = "DISCORD_SHOULD_RESPOND_ONLY_TO_MENTIONS"
	// SettingAPIRoot is agenthost's: another root for Discord's REST API.
	SettingAPIRoot = "DISCORD_API_ROOT"
)

// characterBlock is the key of the character's settings object that holds
// elizaOS's camel-case Discord settings.
const characterBlock = "discord"

// config is one agent's Discord settings, resolved.
type config struct {
	token string
	appID string
	// allowed and listen are channel ids; empty allowed means every
	// channel.
	allowed      map[string]bool
	listen       map[string]bool
	ignoreBots   bool
	ignoreDMs    bool
	onlyMentions bool
	// apiBase is the REST API's base URL with a trailing slash, e.g.
	// https://discord.com/api/v9/.
	apiBase string
	// apiRoot is DISCORD_API_ROOT as given, "" for Discord itself.
	apiRoot string
}

var snowflake = regexp.MustCompile(`^\d{1,20}$`)

// parseConfig reads an agent's settings. elizaOS's order applies: a
// setting (a character secret or setting, or the environment) wins over
// the character's settings.discord block, which wins over the default.
// Problems that leave a usable configuration are warnings.
func parseConfig(a *sdk.Agent) (config, []string, error) {
	var warnings []string
	block := map[string]any{}
	if a.Character != nil {
		if m, ok := a.Character.Settings[characterBlock].(map[string]any); ok {
			block = m
		}
	}
	c := config{
		token: strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(a.Setting(SettingToken)), "Bot ")),
		appID: strings.TrimSpace(a.Setting(SettingApplicationID)),
	}
	boolean := func(setting, key string, def bool) bool {
		if v := strings.TrimSpace(a.Setting(setting)); v != "" {
			b, ok := parseBool(v)
			if !ok {
				warnings = append(warnings, fmt.Sprintf("%s=%q is not true or false; using %t", setting, v, def))
				return def
			}
			return b
		}
		switch v := block[key].(type) {
		case bool:
			return v
		case string:
			if b, ok := parseBool(v); ok {
				return b
			}
			warnings = append(warnings, fmt.Sprintf("settings.discord.%s=%q is not true or false; using %t", key, v, def))
		case nil:
		default:
			warnings = append(warnings, fmt.Sprintf("settings.discord.%s is a %T, not true or false; using %t", key, v, def))
		}
		return def
	}
	// elizaOS 1.x drops every bot's message; agents answering each other
	// without end is a known failure, so ignoring bots is the default.
	c.ignoreBots = boolean(SettingIgnoreBots, "shouldIgnoreBotMessages", true)
	c.ignoreDMs = boolean(SettingIgnoreDMs, "shouldIgnoreDirectMessages", false)
	c.onlyMentions = boolean(SettingOnlyMentions, "shouldRespondOnlyToMentions", false)

	ids := func(what string, raw any) map[string]bool {
		var list []string
		switch v := raw.(type) {
		case string:
			list = strings.Split(v, ",")
		case []any:
			for _, x := range v {
				list = append(list, fmt.Sprint(x))
			}
		case []string:
			list = v
		case nil:
		default:
			warnings = append(warnings, fmt.Sprintf("%s is a %T, not a list of channel ids; ignored", what, v))
		}
		out := map[string]bool{}
		for _, id := range list {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			if !snowflake.MatchString(id) {
				warnings = append(warnings, fmt.Sprintf("%s: %q is not a Discord channel id (a number); ignored", what, id))
				continue
			}
			out[id] = true
		}
		return out
	}
	if v := strings.TrimSpace(a.Setting(SettingChannelIDs)); v != "" {
		c.allowed = ids(SettingChannelIDs, v)
	} else {
		c.allowed = ids("settings.discord.allowedChannelIds", block["allowedChannelIds"])
	}
	c.listen = ids(SettingListenChannelIDs, a.Setting(SettingListenChannelIDs))
	if c.appID != "" && !snowflake.MatchString(c.appID) {
		warnings = append(warnings, fmt.Sprintf("%s=%q is not a Discord id; the application id from the gateway is used", SettingApplicationID, c.appID))
		c.appID = ""
	}
	c.apiRoot = strings.TrimSpace(a.Setting(SettingAPIRoot))
	base, warn, err := apiBase(c.apiRoot)
	if err != nil {
		return c, warnings, err
	}
	if warn != "" {
		warnings = append(warnings, warn)
	}
	c.apiBase = base
	return c, warnings, nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

var versionedAPI = regexp.MustCompile(`/api/v\d+$`)

// apiBase turns DISCORD_API_ROOT into the REST API's base URL. The root is
// what replaces Discord's own origin: http://proxy:8080 serves the API at
// http://proxy:8080/api/v9/. A root that already ends in /api or /api/vN
// is used as given.
func apiBase(root string) (base, warning string, err error) {
	if root == "" {
		return discordgo.EndpointAPI, "", nil
	}
	u, err := url.Parse(root)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("%s=%q is not an http(s) URL such as http://127.0.0.1:8080", SettingAPIRoot, root)
	}
	p := strings.TrimRight(u.Path, "/")
	switch {
	case versionedAPI.MatchString(p):
	case strings.HasSuffix(p, "/api"):
		p += "/v" + discordgo.APIVersion
	default:
		p += "/api/v" + discordgo.APIVersion
	}
	u.Path, u.RawQuery, u.Fragment = p+"/", "", ""
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		warning = fmt.Sprintf("%s uses plain http to %s: the bot token crosses the network unencrypted", SettingAPIRoot, u.Host)
	}
	return u.String(), warning, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// allowedChannel applies the allow-list to a guild channel or to a thread
// through its parent.
func (c *config) allowedChannel(id, parent string) bool {
	return len(c.allowed) == 0 || c.allowed[id] || (parent != "" && c.allowed[parent])
}

func (c *config) listenOnly(id, parent string) bool {
	return c.listen[id] || (parent != "" && c.listen[parent])
}
