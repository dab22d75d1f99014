package bootstrap

import (
	"github.com/agenthost/agenthost/sdk"
)

// The default prompt templates. A character overrides any of them by name
// in its "templates" (messageHandlerTemplate, shouldRespondTemplate,
// replyTemplate, reflectionTemplate, postCreationTemplate,
// imageGenerationTemplate, …).
//
// They follow the conventions the offline model reads (see package
// offline): "# Agent: NAME" first; the conversation as "Name: text" lines
// under "# Conversation Messages" and the message to answer under
// "# Received Message" (both written by the RECENT_MESSAGES provider);
// "<response>" when an XML answer is wanted. Only the should-respond
// template may contain all three of the upper-case words RESPOND, IGNORE
// and STOP: the offline model takes a prompt with all three for that
// question.
var defaultTemplates = map[string]string{
	"shouldRespondTemplate": `# Agent: {{agentName}}

# Task: Decide whether {{agentName}} should answer the received message.

{{providers}}

# Instructions
Decide whether {{agentName}} should take part in the conversation now.
- RESPOND when the message speaks to {{agentName}} by name, continues a conversation {{agentName}} is part of, or asks something {{agentName}} can help with.
- IGNORE when the message is meant for someone else or needs nothing from {{agentName}}.
- STOP when someone asks {{agentName}} to be quiet or to leave the conversation.
{{#if roomFollowed}}{{agentName}} follows this room: RESPOND unless the message is plainly meant for someone else.
{{/if}}
Answer with this XML and nothing else:
<response>
  <name>{{agentName}}</name>
  <reasoning>one sentence on why</reasoning>
  <action>RESPOND | IGNORE | STOP</action>
</response>
`,

	"messageHandlerTemplate": `# Agent: {{agentName}}

# Task: Write {{agentName}}'s next message and choose what to do.

{{providers}}

# Instructions
Answer the received message as {{agentName}}, in {{agentName}}'s own voice and style.
In <actions>, list the actions {{agentName}} takes, in the order to run them, chosen from: {{actionNames}}.
Put REPLY first when other actions follow, so the person hears back at once. Use IGNORE alone, with no text, when {{agentName}} should stay silent.
In <providers>, list the providers {{agentName}} needs for more context (such as ATTACHMENTS, ENTITIES, FACTS, RELATIONSHIPS or WORLD), or leave it empty.

Answer with this XML and nothing else:
<response>
  <thought>what {{agentName}} is thinking, in a sentence or two</thought>
  <actions>REPLY</actions>
  <providers></providers>
  <text>the message {{agentName}} sends</text>
</response>
`,

	"replyTemplate": `# Agent: {{agentName}}

# Task: Write {{agentName}}'s reply.

{{providers}}

# Instructions
Write {{agentName}}'s reply to the received message.{{#if replyThought}} {{agentName}} was thinking: {{replyThought}}{{/if}}

Answer with this XML and nothing else:
<response>
  <thought>what {{agentName}} is thinking</thought>
  <message>the reply {{agentName}} sends</message>
</response>
`,

	"reflectionTemplate": `# Agent: {{agentName}}

# Task: Reflect on the conversation and note what was learned.

{{bio}}

# Entities in the Room
{{entitiesInRoom}}

# Known Facts
{{knownFacts}}

# Existing Relationships
{{existingRelationships}}

{{recentMessages}}

# Instructions
From the latest messages, note new facts worth remembering about the people in the room (not things {{agentName}} already knows and not things from {{agentName}}'s own description), and the relationships the messages show between people. Use the entity ids above for relationships.

Answer with this XML and nothing else:
<response>
  <thought>a short reflection on how the conversation is going</thought>
  <facts>
    <fact>
      <claim>a fact, as a complete sentence</claim>
      <type>fact | opinion | status</type>
      <in_bio>false</in_bio>
      <already_known>false</already_known>
    </fact>
  </facts>
  <relationships>
    <relationship>
      <sourceEntityId>an entity id</sourceEntityId>
      <targetEntityId>an entity id</targetEntityId>
      <tags>friend, colleague</tags>
    </relationship>
  </relationships>
</response>
`,

	"postCreationTemplate": `# Agent: {{agentName}}

# Task: Write a new post for {{agentName}}'s feed{{#if userName}} (@{{userName}}){{/if}}.

{{providers}}

# Instructions
Write one new post in {{agentName}}'s own voice, following the style directions and the example posts above.
Say something new: do not repeat a recent post. Keep it short, a sentence or a few, with no hashtags or emojis unless the style asks for them.

Answer with this XML and nothing else:
<response>
  <thought>what the post is about and why</thought>
  <post>the post {{agentName}} publishes</post>
  <imagePrompt>an image to go with it, or nothing</imagePrompt>
</response>
`,

	"imageGenerationTemplate": `# Agent: {{agentName}}

# Task: Write a prompt for an image generator.

{{providers}}

# Instructions
Describe the image {{agentName}} should make for the received message: subject, setting, style and mood, in one paragraph.

Answer with this XML and nothing else:
<response>
  <thought>what the image should show</thought>
  <prompt>the image prompt</prompt>
</response>
`,

	"roomStateTemplate": `# Agent: {{agentName}}

# Task: Confirm a change to how {{agentName}} takes part in this room.

{{recentMessages}}

# Instructions
{{question}}
Answer YES only if the latest messages clearly ask for it; otherwise answer NO.

<decision>YES or NO</decision>
`,

	"sendMessageTemplate": `# Agent: {{agentName}}

# Task: Work out the message {{agentName}} was asked to send, and to whom.

{{recentMessages}}

# Known Sources
{{sources}}

# Instructions
Read the received message and fill in where the message goes and what it says. targetType is user (a person, by name) or room (a channel, by name). source is the platform, one of the known sources.

Answer with this XML and nothing else:
<response>
  <targetType>user | room</targetType>
  <source>the platform</source>
  <target>the person's or room's name</target>
  <message>the text to send</message>
</response>
`,

	"updateContactTemplate": `# Agent: {{agentName}}

# Task: Extract contact details to save.

{{recentMessages}}

# People in the Room
{{entitiesInRoom}}

# Instructions
Find whose contact details the received message gives or changes, on which platform, and the details.

Answer with this XML and nothing else:
<response>
  <entityName>the person's name, or their entity id</entityName>
  <platform>the platform, e.g. telegram, discord, email, phone</platform>
  <operation>add | update | remove</operation>
  <handle>the user name, address or number on that platform</handle>
  <notes>anything else worth keeping, or empty</notes>
</response>
`,

	"chooseOptionTemplate": `# Agent: {{agentName}}

# Task: Work out which option of a pending task was chosen.

{{recentMessages}}

# Pending Tasks
{{tasks}}

# Instructions
Read the received message and find the task and the option it chooses. Use ABORT as the option to cancel the task.

Answer with this XML and nothing else:
<response>
  <taskId>the task id</taskId>
  <selectedOption>the option name</selectedOption>
</response>
`,

	"updateRoleTemplate": `# Agent: {{agentName}}

# Task: Work out the role changes asked for.

{{recentMessages}}

# People in the Server
{{entitiesInRoom}}

# Instructions
Roles are OWNER, ADMIN and NONE. List each person whose role the received message asks to change.

Answer with this XML and nothing else:
<response>
  <assignments>
    <assignment>
      <entityId>the person's entity id or name</entityId>
      <newRole>OWNER | ADMIN | NONE</newRole>
    </assignment>
  </assignments>
</response>
`,

	"updateSettingsTemplate": `# Agent: {{agentName}}

# Task: Extract setting values from the conversation.

{{recentMessages}}

# Settings
{{settings}}

# Instructions
List every setting the received message gives a value for, by its key.

Answer with this XML and nothing else:
<response>
  <settings>
    <setting>
      <key>the setting key</key>
      <value>the value</value>
    </setting>
  </settings>
</response>
`,
}

// templateFor returns the character's override of a template, or the
// default.
func templateFor(a *sdk.Agent, name string) string {
	if a != nil && a.Character != nil {
		if t := a.Character.Templates[name]; t != "" {
			return t
		}
	}
	return defaultTemplates[name]
}

// renderPrompt renders a template with the state's values and extras. The
// state's text is {{providers}}; agentName is always set.
func renderPrompt(a *sdk.Agent, name string, st *sdk.State, extra map[string]any) string {
	values := map[string]any{}
	if st != nil {
		for k, v := range st.Values {
			values[k] = v
		}
		values["providers"] = st.Text
	}
	for k, v := range extra {
		values[k] = v
	}
	if _, ok := values["agentName"]; !ok || values["agentName"] == "" {
		values["agentName"] = a.Name()
	}
	return renderTemplate(templateFor(a, name), values)
}
