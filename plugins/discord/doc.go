// Package discord is the Discord connector: it puts agents on Discord
// through github.com/bwmarrin/discordgo, as elizaOS's plugin-discord does
// (voice aside). Characters name it "discord" or "@elizaos/plugin-discord".
// One plugin process serves every agent that uses it, each with its own bot
// token, gateway session and REST client.
//
// # Settings
//
// The names are elizaOS's, so its characters and .env files work as they
// are. A setting (character secrets, settings, settings.secrets, then the
// environment) wins over the character's settings.discord block, which wins
// over the default.
//
//	DISCORD_API_TOKEN                        the bot token; without it the plugin does nothing for the agent
//	DISCORD_APPLICATION_ID                   for slash commands; by default the application of the token
//	CHANNEL_IDS / allowedChannelIds          the guild channels read and written (threads follow their channel); empty: all
//	DISCORD_LISTEN_CHANNEL_IDS               channels remembered but never answered
//	DISCORD_SHOULD_IGNORE_BOT_MESSAGES /     ignore other bots (default true: elizaOS 1.x drops them, and agents
//	  shouldIgnoreBotMessages                answering each other without end is a known failure)
//	DISCORD_SHOULD_IGNORE_DIRECT_MESSAGES /  ignore DMs (default false)
//	  shouldIgnoreDirectMessages
//	DISCORD_SHOULD_RESPOND_ONLY_TO_MENTIONS / in guild channels, only messages that mention the bot (or one of
//	  shouldRespondOnlyToMentions            its roles) or reply to it (default false)
//	DISCORD_API_ROOT                         another root for the REST API, see below
//
// The allow-list applies to guild channels; DMs are governed by the DM
// setting alone. Every message not handed to the agent is logged with the
// reason: the first one per channel and reason at info level, later ones at
// debug level, so a silent bot says why without flooding the log.
//
// `agenthost start` without a character adds this plugin to the default
// agent when DISCORD_API_TOKEN is in the environment, as elizaOS does.
//
// # Another API root
//
// DISCORD_API_ROOT replaces Discord's origin for the REST API: with
// http://proxy:8080 the API is http://proxy:8080/api/v9/ (a root already
// ending in /api or /api/vN is used as given). This is for a rate-limit
// proxy of the kind large bots run, or a test server. The gateway address
// is whatever that root's /gateway/bot answers. discordgo keeps its
// endpoints in package-level variables; rather than rewriting them, which
// would tie a whole process to one root, each agent's session has an HTTP
// transport that sends discordgo's requests to the agent's root, so the
// agents of one process may use different roots. The transport also turns
// discordgo's unauthenticated GET /gateway into GET /gateway/bot.
//
// # Mapping
//
// Ids are those the host derives with createUniqueUuid, as elizaOS does: a
// guild is a world (its owner is the world's OWNER), a channel and a thread
// are each a room (GROUP, THREAD, VOICE_GROUP, FORUM), a DM is a DM room
// whose world is the room itself, a user is an entity named by display
// name (guild nickname, else global name, else user name) and user name
// (with the discriminator for bots), with metadata {"discord": {"id",
// "userName", "name", "bot"}}; a message id is a memory id.
//
// # Inbound
//
//   - Messages: mentions are rewritten to names (<@id> → "username (@id)" as
//     in elizaOS, <@&id> → "@role", <#id> → "#channel", custom emoji →
//     ":name:"), attachments become media, a Discord reply sets inReplyTo,
//     and the message link is the content's url. The message is handed to
//     the host without waiting for the run, so the run survives a crash of
//     this plugin and its replies arrive once the host restarted it.
//   - Edits replace the stored message's text (DISCORD_MESSAGE_UPDATED);
//     deletions remove it (MESSAGE_DELETED).
//   - Reactions are stored as messages in reply to the message reacted to,
//     "*Added <👍> to: "…"*", with REACTION_RECEIVED (DISCORD_REACTION_REMOVED
//     when taken back).
//   - A guild is stored with its channels and up to 1000 members when the
//     bot joins it (WORLD_JOINED) or connects (WORLD_CONNECTED); a member who
//     joins is stored (ENTITY_JOINED); one who leaves: ENTITY_LEFT.
//   - /chat message:… is registered as a global slash command. It is
//     acknowledged at once (Discord's "thinking…") and the agent's answer
//     takes its place, further replies being followups; a run that ends
//     without an answer removes the "thinking…".
//   - Buttons and menus are acknowledged; the choice is cached under
//     discord:selection:MESSAGE:USER and DISCORD_INTERACTION is emitted.
//
// # Outbound
//
// A reply is split into messages of at most 2000 characters (UTF-16 units,
// as Discord counts) at paragraphs, lines or words, keeping code blocks
// whole or, when a block is longer than a message, closing and reopening it
// with its language (SplitMessage). The first message is a Discord reply
// to the message answered; attachments (http(s) URLs, data: URLs, files
// in the data directory) go with the last. Mentions may ping users, never
// @everyone or roles. While the agent works, the typing indicator is
// refreshed every 8 seconds until the first reply or the run's end.
//
// # Faults
//
//   - Rate limits: discordgo honours Discord's X-RateLimit headers per route
//     and waits out 429s (route and global); the tests check both against a
//     server that enforces its limits.
//   - The gateway: this plugin, not discordgo, reconnects. A dropped
//     connection or Discord's op 7 is resumed (the events missed are
//     replayed); an invalid session identifies anew; close codes 4007 and
//     4009 start a new session.
//   - A refused token (REST 401 or gateway close 4004) fails the agent's
//     start with an error naming DISCORD_API_TOKEN, or, once online, takes
//     the agent off Discord with that error logged; it is never retried in a
//     loop. Privileged intents the application lacks (close 4014) are
//     dropped one at a time, each with a warning saying what is lost.
//   - A reply is written to an outbox under the data directory before it is
//     sent and after each part; a reply the plugin accepted reaches Discord
//     even if the process dies halfway, and each part carries a nonce
//     Discord enforces, so nothing is posted twice. A reply Discord cannot
//     take for now (5xx, the network, a long rate-limit wait) stays there and
//     is tried again for an hour; one Discord refuses (4xx) is an error.
//     Pending slash commands are kept on disk too, so their answer replaces
//     "thinking…" after a restart.
//
// # Limits
//
// Voice is not implemented. One shard per bot (enough for 2,500 guilds).
// Attachments are passed on as media, not described or transcribed.
// discordgo resumes on the gateway address it connected to, not Discord's
// resume_gateway_url. Followups of a slash command, which carry no nonce,
// may be repeated if the process dies between sending one and recording it.
//
// Package discordtest is a fake Discord for tests: the gateway over
// WebSocket and the REST API, with rate limits, close codes and resume.
package discord
