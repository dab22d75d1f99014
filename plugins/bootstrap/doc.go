// Package bootstrap is agenthost's core message handling, after elizaOS's
// plugin-bootstrap. It runs as its own process and reaches everything
// through the host's Runtime service, like any third-party plugin.
//
// # The pipeline
//
// On MESSAGE_RECEIVED a run starts (RUN_STARTED; the host gives every
// message its own run id, so concurrent conversations never share one) and
// every way out of it ends the run (RUN_ENDED with a status, and a reason
// when it stopped early; RUN_TIMEOUT first when it ran out of time):
//
//  1. The agent's own messages are skipped.
//  2. Attachments are enriched (images described by IMAGE_DESCRIPTION, text
//     files read), the text is embedded, and the message is stored. A
//     message already stored (delivered twice) stops here: it is handled
//     exactly once.
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
//  6. State is composed from every provider of the agent and the main
//     response asked of TEXT_LARGE: thought, actions, providers, text. An
//     unreadable answer is asked for again (RESPONSE_RETRIES); a plain-text
//     answer is a reply.
//  7. If a newer message arrived in the room meanwhile, this run's reply is
//     dropped.
//  8. Action names are matched to the agent's actions (case, spaces and
//     underscores aside, then similes; a comma inside an action's
//     parameters does not split the list). Providers the model asked for
//     are composed. A lone REPLY with text is sent at once; otherwise the
//     host runs the actions in order, each result passed to the next.
//  9. Evaluators run after the response.
//
// Replies are stored, then sent back through the message's source with
// Respond.
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
// Relationships, components and tasks live behind [Store]: [New] keeps
// them in the database through the Runtime service; [NewWithStore] with
// [CacheStore] keeps them as JSON in the agent's cache, for a database
// plugin that does not serve them.
package bootstrap
