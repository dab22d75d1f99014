package bootstrap

import (
	"fmt"
	"strings"

	"github.com/agenthost/agenthost/sdk"
)

// buildPrompt writes the main response prompt. Its sections follow the
// conventions the offline model reads (see package offline): "# Agent:",
// "# Conversation Messages" with "Name: text" lines, "# Received Message",
// and the XML response format.
func buildPrompt(a *sdk.Agent, msg *sdk.Memory, st *sdk.State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Agent: %s\n\n", a.Name())
	if tpl := template(a, "messageHandlerTemplate"); tpl != "" {
		b.WriteString(render(tpl, a, msg, st))
		return b.String()
	}
	if st.Text != "" {
		b.WriteString(st.Text)
		b.WriteString("\n\n")
	}
	if actions, _ := st.Values["actionsText"].(string); actions != "" {
		b.WriteString(actions)
		b.WriteString("\n\n")
	}
	b.WriteString("# Received Message\n")
	fmt.Fprintf(&b, "%s: %s\n\n", senderName(st, msg), msg.Content.Text)
	fmt.Fprintf(&b, `# Instructions
Write %s's next message in answer to the received message. Choose the actions to take
(REPLY to answer, IGNORE to stay silent, or any available action), and answer in this XML format:
<response>
  <thought>what %s is thinking</thought>
  <actions>REPLY</actions>
  <providers></providers>
  <text>the message %s sends</text>
</response>
`, a.Name(), a.Name(), a.Name())
	return b.String()
}

func senderName(st *sdk.State, msg *sdk.Memory) string {
	if n, _ := st.Values["senderName"].(string); n != "" {
		return n
	}
	return "User"
}

func template(a *sdk.Agent, name string) string {
	if a.Character == nil {
		return ""
	}
	return a.Character.Templates[name]
}

// render fills {{key}} placeholders from the state's values, as elizaOS's
// handlebars templates do for plain keys.
func render(tpl string, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) string {
	var b strings.Builder
	for {
		i := strings.Index(tpl, "{{")
		if i < 0 {
			b.WriteString(tpl)
			break
		}
		j := strings.Index(tpl[i:], "}}")
		if j < 0 {
			b.WriteString(tpl)
			break
		}
		b.WriteString(tpl[:i])
		key := strings.Trim(tpl[i+2:i+j], "{} ")
		b.WriteString(lookup(key, a, msg, st))
		tpl = tpl[i+j+2:]
		for strings.HasPrefix(tpl, "}") {
			tpl = tpl[1:]
		}
	}
	return b.String()
}

func lookup(key string, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) string {
	switch key {
	case "agentName":
		return a.Name()
	case "providers":
		return st.Text
	case "text", "message":
		return msg.Content.Text
	}
	if v, ok := st.Values[key]; ok {
		return fmt.Sprint(v)
	}
	return ""
}
