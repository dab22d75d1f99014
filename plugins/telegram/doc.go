// Package telegram is the Telegram connector: an agent whose character
// lists "telegram" (or "@elizaos/plugin-telegram") and has a
// TELEGRAM_BOT_TOKEN talks on Telegram through its bot, as elizaOS's
// plugin-telegram does, over the go-telegram/bot client library. It builds
// to agenthost-plugin-telegram and is bundled in the agenthost binary;
// `agenthost start` with no character and TELEGRAM_BOT_TOKEN in the
// environment brings the default agent online on Telegram.
//
// Settings: TELEGRAM_BOT_TOKEN; TELEGRAM_API_ROOT (another Bot API server);
// TELEGRAM_ALLOWED_CHATS (a JSON array of chat ids, as in elizaOS, or a
// comma-separated list; ids or @usernames); TELEGRAM_WEBHOOK_URL (webhook
// mode: the daemon's public https base URL; Telegram posts to
// /hooks/telegram/{agentId}, which the daemon forwards to the plugin) and
// TELEGRAM_WEBHOOK_SECRET; TELEGRAM_SHOULD_RESPOND_ONLY_TO_MENTIONS;
// TELEGRAM_START_MESSAGE and TELEGRAM_HELP_MESSAGE. A value that does not
// parse (a TELEGRAM_API_ROOT that is no URL, a
// TELEGRAM_SHOULD_RESPOND_ONLY_TO_MENTIONS that is not true or false) stops
// the agent with an error naming the setting.
//
// Mapping, with elizaOS's ids: every chat is a world and its main room
// (createUniqueUuid(chat id)); a forum topic is a room of its own
// ("chat-thread"); private chats are DM rooms, groups and supergroups
// GROUP, channels FEED; users are entities with their names and username.
// A private chat's user owns its world; a group's creator owns it and its
// administrators are ADMIN. Messages are "chat:message" (Telegram numbers
// messages per chat), so a message delivered twice is one memory.
//
// Inbound: text and captions; photos, documents, video and audio as
// attachments (images described by the agent's IMAGE_DESCRIPTION model
// when it has one); replies (inReplyTo); edits, as a new version of the
// message; reactions, stored and emitted as REACTION_RECEIVED; mentions of
// the bot (content.mentionsAgent); inline button presses as messages;
// /start and /help answered by the connector.
//
// Outbound: Markdown converted to MarkdownV2 with every reserved character
// escaped, cut into messages of at most 4096 characters between
// paragraphs, lines or words and never inside markup; the first message
// replies to the one answered; "typing…" while the agent thinks;
// content.buttons as an inline keyboard; attachments sent as photo, video,
// audio, animation or document; content.edit (an id Send returned) edits a
// message.
//
// Faults: a 429 waits the retry_after Telegram asks for; network and
// server errors back off and retry; a refused token stops the agent with
// an error that says so. Updates are confirmed only after they are handed
// to the host, and deliveries carry the host's delivery id, so a crash of
// the plugin loses no message and sends no reply twice.
package telegram
