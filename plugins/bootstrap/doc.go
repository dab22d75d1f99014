// Package bootstrap is agenthost's core message handling, after elizaOS's
// plugin-bootstrap. It runs as its own process and reaches everything
// through the host's Runtime service, like any third-party plugin.
//
// # The pipeline
//
// On MESSAGE_RECEIVED a run starts (RUN_STARTED; the host gives every
// message its own run id, so concurrent conversations never share one) and
// every way out of it ends the run (RUN_ENDED with a status, and a reason
// when it stopped early; RUN_TIMEOUT first when it ran out of time). When
// no plugin of the agent listens for them, both go back with the handler's
// answer rather than in calls of their own (sdk.Agent.EmitEvent); when one
// does, a run that sent its one reply and ran no actions sends RUN_ENDED
// just after its handler returns, so that the host hands the reply over
// without waiting for it:
//
//  1. The agent's own messages are skipped.
//  2. Attachments are enriched (images described by IMAGE_DESCRIPTION, text
//     files read) and the message is stored; its embedding is made after
//     the reply (see Embeddings below). A message already stored
//     (delivered twice) stops here: it is handled exactly once. When every
//     provider of the agent is bootstrap's own, the store runs beside
//     steps 5 and 6 (the providers see the message as if stored), and only
//     the reply waits for it; a second delivery of a message this process
//     is storing, or stored, waits for or follows the first without a
//     model call.
//  3. A message from a bot or another agent is not answered unless
//     RESPOND_TO_AGENTS is true, and then only up to MAX_AGENT_TURNS agent
//     messages in a row: agents never answer each other in an endless loop.
//  4. A muted room is ignored unless the agent is named.
//  5. Should-respond: DMs, voice DMs, the agent's own room, API rooms and the
//     api, web and client_chat sources (more with SHOULD_RESPOND_BYPASS_TYPES
//     and SHOULD_RESPOND_BYPASS_SOURCES), and messages naming the agent, are
//     always answered; otherwise TEXT_SMALL decides (RESPOND, or IGNORE/STOP).
//     Not answering stores the decision and runs the evaluators that always
//     run.
//  6. State is composed from every provider of the agent (in this process
//     when they are all bootstrap's own: see sdk.Agent.ComposeState) and
//     the main response asked of TEXT_LARGE: thought, actions, providers,
//     text. An unreadable answer is asked for again (RESPONSE_RETRIES); a
//     plain-text answer is a reply.
//  7. If a newer message arrived in the room meanwhile, this run's reply is
//     dropped.
//  8. Action names are matched to the agent's actions (case, spaces and
//     underscores aside, then similes; a comma inside an action's
//     parameters does not split the list). Providers the model asked for
//     are composed. A lone REPLY with text is sent at once (Respond without
//     a memory id: the host stores it); otherwise the host runs the actions
//     in order, each result passed to the next.
//  9. Evaluators run after the response, and the reply does not wait for
//     them: the handler returns once the reply is sent, and the evaluation
//     (reflection's model call above all) follows in the background, in
//     order per room, its results in the run's timeline. It is held as a
//     task ("bootstrap:evaluate") until done, so an evaluation cut off by a
//     crash runs at the next start (or is logged as skipped when its
//     message is gone). Evaluations yield to messages: one runs once the
//     process has had no message in flight for 20 ms, which a conversation
//     at a human pace gives it at once, and under a steady load after a
//     second at most, with every evaluation waiting. A reflection waiting
//     covers the room's messages that come meanwhile: they queue none of
//     their own.
//
// # Embeddings
//
// A message is stored as it comes and embedded after its reply, when the
// process is quiet, as evaluations are: the reply needs the stored
// message, not its vector. Messages that keep coming with no pause for a
// second are embedded before they are stored again, beside the state's
// composition: without a quiet moment to make them in, embeddings made
// later only cost more. Until its embedding is made the stored message
// has none, and a similarity search does not find it. A task
// ("bootstrap:embeddings", one per agent) marks since when stored messages
// may lack their embeddings: the first such message of a process marks it
// before it is stored, and an orderly stop settles it. A process that died
// with embeddings waiting leaves it unsettled, and the next start embeds
// the messages stored since that lack one. A message created more than ten
// seconds before it is stored (a delivery handed over again, a backlog) is
// embedded before it is stored, as are the messages that come before the
// task service's first look has read the mark. An embedding that fails
// because the model plugin or the database is down is tried again later;
// one the model refuses leaves the message without an embedding, as
// before.
//
// # A room's recent messages
//
// Each message's state starts from the room's latest messages
// (CONVERSATION_LENGTH of them), most of which this plugin stored itself.
// The last read of a room is kept for two seconds (window.go), with the
// messages and replies stored since put into it as they are, so that a
// message right after another reads nothing from the database. A message
// another plugin stored in the room on its own shows within those two
// seconds, as with the other reads kept for a moment; what this plugin
// cannot follow drops the room's window at once: a run's actions (their
// replies are stored by the host, and an action may write to the room), a
// reaction, a deleted message, a cleared channel (the host announces the
// deletions made over its API with MESSAGE_DELETED and CHANNEL_CLEARED), a
// post.
//
// # Replies
//
// Replies are stored among the room's messages, then sent back through the
// message's source with Respond. An action of another plugin that answers
// with Respond and no memory id has its reply stored by the host, so the
// room's messages are what the user saw, each once. What each action did
// is recorded in the action_results table (sdk.TableActionResults), which
// RECENT_MESSAGES shows as "# Recent Action Results".
//
// # Other events
//
// Payloads are elizaOS's, in the event's Payload (and the message of the
// message events in Event.Message or payload.message). A UUID in a payload
// is taken as the agent's id already; any other id is a platform's and is
// scoped with createUniqueUuid, as the host scopes incoming messages.
//
//   - VOICE_MESSAGE_RECEIVED runs the pipeline above. The plugin that
//     emitted it started the run, not the host, so replies go to the
//     payload's "target" or else to the room's channel on the message's
//     source (SendMessage), unless the run id names a host run.
//   - REACTION_RECEIVED stores the reaction (a memory) among the room's
//     messages, once however often it arrives.
//   - MESSAGE_DELETED deletes the message's memory; CHANNEL_CLEARED deletes
//     the messages and action results of the room (roomId, or channelId),
//     other tables kept.
//   - WORLD_JOINED and WORLD_CONNECTED store the world (merged into the
//     stored one, so its owner, roles and settings stay), its rooms, and its
//     members as participants of its first room.
//   - ENTITY_JOINED and ENTITY_UPDATED store a user's names and, under the
//     source's key of its metadata, the platform's details (originalId as
//     id, username as userName, displayName as name); with a room
//     (roomId or channelId) the room, its world and the participation too.
//     A DM's world without an owner becomes the user's. A joining user is
//     metadata.status ACTIVE; ENTITY_LEFT marks them INACTIVE with leftAt.
//   - POST_GENERATED writes a post for the agent's feed (a FEED room of a
//     world of its own, from worldId, roomId and userId) with the
//     postCreationTemplate on TEXT_LARGE: the character's post style and
//     example posts are in the prompt. A refusal or a repeat of a recent
//     post is asked for again (RESPONSE_RETRIES). The post is stored and
//     sent with channelType FEED and type "post" to the payload's "target"
//     (or "callback": a target, or a source's name), or through the host
//     run the event names, or else to the feed on the payload's source; a
//     post that cannot be sent is not kept.
//
// A handler that cannot do its work returns an error, which reaches the
// plugin that emitted the event.
//
// # Actions, providers, evaluators, tasks
//
// Actions: REPLY, IGNORE, NONE, FOLLOW_ROOM, UNFOLLOW_ROOM, MUTE_ROOM,
// UNMUTE_ROOM, SEND_MESSAGE, UPDATE_CONTACT, CHOOSE_OPTION, UPDATE_ROLE,
// UPDATE_SETTINGS and GENERATE_IMAGE (offered only when the agent has an
// IMAGE model). Providers: CHARACTER, RECENT_MESSAGES, ACTIONS, ACTION_STATE,
// ANXIETY, SHOULD_RESPOND (private), ENTITIES, RELATIONSHIPS, FACTS, WORLD,
// ATTACHMENTS (those five dynamic), TIME, CAPABILITIES, PROVIDERS,
// EVALUATORS (private), ROLES, SETTINGS and CHOICE. The REFLECTION
// evaluator stores facts and relationships every few messages. The task
// service runs queued, repeating and immediate tasks each tick; a task runs
// an in-process [TaskWorker] or else the agent's action of the task's
// name, so plugins in other processes provide workers as actions.
//
// Prompts are templates rendered like elizaOS's Handlebars templates (see
// renderTemplate); a character overrides them by name in "templates".
//
// The plugin's settings (CONVERSATION_LENGTH, RESPOND_TO_AGENTS,
// RUN_TIMEOUT_MS, ...; `agenthost plugins list` shows them all) are read
// when the agent is configured. A value that does not parse is a warning
// naming it, and the default is used: a typo never stops an agent's
// message handling.
//
// Relationships, components and tasks live behind [Store]: [New] keeps
// them in the database through the Runtime service; [NewWithStore] with
// [CacheStore] keeps them as JSON in the agent's cache, for a database
// plugin that does not serve them.
package bootstrap
