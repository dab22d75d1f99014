//go:build linux

package main

// End-to-end tests of the telegram plugin: the real agenthost daemon and
// plugin processes, the real Telegram client library inside the plugin,
// and a local server that speaks the Bot API in place of Telegram.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/telegram/telegramtest"
	"github.com/agenthost/agenthost/sdk"
)

var (
	tgAlice = telegramtest.User{ID: 2001, FirstName: "Alice", Username: "alice"}
	tgBob   = telegramtest.User{ID: 2002, FirstName: "Bob", Username: "bob"}
	tgCarol = telegramtest.User{ID: 2004, FirstName: "Carol"}
	tgDave  = telegramtest.User{ID: 2005, FirstName: "Dave", Username: "dave"}
	tgGroup = telegramtest.Chat{ID: -1002003, Type: "supergroup", Title: "Tea party"}
)

// telegramAgent starts the daemon with a scripted agent on the fake
// Telegram and returns it with the agent's id.
func telegramAgent(t *testing.T, api *telegramtest.Server, settings map[string]any) (*daemon, string) {
	t.Helper()
	s := map[string]any{"TELEGRAM_BOT_TOKEN": api.Token, "TELEGRAM_API_ROOT": api.URL}
	for k, v := range settings {
		s[k] = v
	}
	char := scriptedCharacter(t, s, "telegram")
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	return d, d.agentID("Scripty")
}

func (d *daemon) agentID(name string) string {
	d.t.Helper()
	_, env := d.get("/api/agents")
	var agents struct {
		Agents []struct{ ID, Name string } `json:"agents"`
	}
	_ = json.Unmarshal(env.Data, &agents)
	for _, a := range agents.Agents {
		if a.Name == name {
			return a.ID
		}
	}
	d.t.Fatalf("no agent %s in %s", name, env.Data)
	return ""
}

// shown is the text a user sees of a message the bot sent.
func shown(c telegramtest.Call) string {
	if c.Params["parse_mode"] == "MarkdownV2" {
		if plain, err := telegramtest.ParseMarkdownV2(c.Params["text"]); err == nil {
			return plain
		}
	}
	return c.Params["text"]
}

// repliesTo counts the messages the bot sent that answer text.
func repliesTo(api *telegramtest.Server, text string) int {
	n := 0
	for _, c := range api.Sent() {
		if shown(c) == "scripted reply to: "+text {
			n++
		}
	}
	return n
}

func TestTelegramMessageInReplyOut(t *testing.T) {
	t.Parallel()
	api := telegramtest.New(t)
	d, agentID := telegramAgent(t, api, nil)
	_, msgID := api.PushText(telegramtest.Private(tgAlice), tgAlice, "Hello from Telegram")
	api.WaitFor(t, 30*time.Second, "the agent's reply", func() bool { return repliesTo(api, "Hello from Telegram") == 1 })

	var reply telegramtest.Call
	for _, c := range api.Sent() {
		reply = c
	}
	var rp struct {
		MessageID int `json:"message_id"`
	}
	_ = reply.JSON("reply_parameters", &rp)
	if reply.Params["chat_id"] != "2001" || reply.Params["parse_mode"] != "MarkdownV2" || rp.MessageID != msgID {
		t.Fatalf("the reply = %v", reply.Params)
	}
	actions := api.Calls("sendChatAction")
	if len(actions) == 0 || actions[0].Params["action"] != "typing" || !actions[0].At.Before(reply.At) {
		t.Errorf("want typing shown while the agent thought, before the reply; got %d chat actions", len(actions))
	}
	// The conversation is stored with elizaOS's ids: the DM's room is
	// createUniqueUuid(agent, chat id).
	room := sdk.CreateUniqueUUID(agentID, "2001")
	mems := d.memories(agentID, room)
	if len(mems) != 2 || mems[1].Content.Text != "Hello from Telegram" || mems[0].Content.Text != "scripted reply to: Hello from Telegram" ||
		mems[1].EntityID != sdk.CreateUniqueUUID(agentID, "2001") || mems[1].ID != sdk.CreateUniqueUUID(agentID, "2001:"+strconv.Itoa(msgID)) {
		t.Fatalf("stored memories = %+v", mems)
	}
	// /start is answered by the connector itself.
	api.PushText(telegramtest.Private(tgBob), tgBob, "/start")
	api.WaitFor(t, 30*time.Second, "the /start answer", func() bool {
		for _, c := range api.Sent() {
			if c.Params["chat_id"] == "2002" && strings.Contains(c.Params["text"], "Hi, I'm Scripty") {
				return true
			}
		}
		return false
	})
}

// TestTelegramPluginSIGKILLLosesNothing kills the telegram plugin twice in
// the middle of a stream of messages: once while it holds updates it has
// not confirmed, once while a reply is on its way to Telegram. Every
// message must be answered exactly once.
func TestTelegramPluginSIGKILLLosesNothing(t *testing.T) {
	t.Parallel()
	api := telegramtest.New(t)
	d, agentID := telegramAgent(t, api, map[string]any{"SCRIPTED_DELAY_MS": "1500"})
	api.WaitFor(t, 30*time.Second, "the bot to poll", func() bool { return api.Polling() > 0 })
	api.SetAdmins(tgGroup.ID, tgAlice)

	// The first message of a new group makes the plugin read the group's
	// admins before handing the message over: the test holds that call and
	// kills the plugin while the updates after it are unconfirmed. Each
	// message goes to a chat of its own: in one chat, the agent drops the
	// answer to a message that a newer one overtook, as elizaOS does.
	admins := api.Hold("getChatAdministrators")
	dms := []string{"one", "two", "four", "five"}
	var oneID int
	var groupUpdate int64
	for _, text := range []string{"one", "two", "three", "four", "five"} {
		from := map[string]telegramtest.User{"one": tgAlice, "two": tgBob, "three": tgAlice, "four": tgCarol, "five": tgDave}[text]
		chat := telegramtest.Private(from)
		if text == "three" {
			chat = tgGroup
		}
		m := api.Message(chat, from, text)
		if text == "one" {
			oneID = m["message_id"].(int)
		}
		if text == "three" {
			m["text"] = "@" + api.Bot.Username + " three"
			m["entities"] = []map[string]any{{"type": "mention", "offset": 0, "length": len(api.Bot.Username) + 1}}
			groupUpdate = api.Push("message", m)
			continue
		}
		api.Push("message", m)
	}
	select {
	case <-admins.Arrived():
	case <-time.After(30 * time.Second):
		t.Fatal("the plugin never asked for the group's admins")
	}
	if c := api.Confirmed(); c > groupUpdate {
		t.Fatalf("update %d was confirmed (offset %d) before it was handled", groupUpdate, c)
	}
	old := pluginPID(t, d, "telegram")
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	admins.Release()
	for _, text := range dms {
		api.WaitFor(t, 60*time.Second, "a reply to "+text, func() bool { return repliesTo(api, text) >= 1 })
	}
	groupRoom := sdk.CreateUniqueUUID(agentID, strconv.FormatInt(tgGroup.ID, 10))
	api.WaitFor(t, 30*time.Second, "the group message stored", func() bool { return len(d.memories(agentID, groupRoom)) > 0 })

	// Telegram sends an update again when it was not confirmed in time:
	// the same message again must not be answered twice.
	again := api.Message(telegramtest.Private(tgAlice), tgAlice, "one")
	again["message_id"] = oneID
	redelivered := api.Push("message", again)
	api.WaitFor(t, 30*time.Second, "the redelivery to be confirmed", func() bool { return api.Confirmed() > redelivered })

	// Now kill it while a reply is on its way: the held sendMessage has
	// reached Telegram, so the host's second try must not send it again.
	// Every message before is handled first, so that the reply held is
	// the one to six, and the only one on its way.
	d.waitInboxEmpty(agentID)
	send := api.Hold("sendMessage")
	api.PushText(telegramtest.Private(tgBob), tgBob, "six")
	select {
	case <-send.Arrived():
	case <-time.After(30 * time.Second):
		t.Fatal("the reply to six never left")
	}
	mid := pluginPID(t, d, "telegram")
	if mid == old {
		t.Fatal("the telegram plugin was not restarted")
	}
	if err := syscall.Kill(mid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	send.Release()
	seven, _ := api.PushText(telegramtest.Private(tgAlice), tgAlice, "seven")
	api.WaitFor(t, 60*time.Second, "a reply to seven", func() bool { return repliesTo(api, "seven") == 1 })
	// Every update was handed over (confirmed), and every message held
	// was handled: a duplicate reply would have been sent by now.
	api.WaitFor(t, 30*time.Second, "every update to be confirmed", func() bool { return api.Confirmed() > seven })
	d.waitInboxEmpty(agentID)

	// The host gave the delivery to the restarted plugin, which knew the
	// reply had left and did not send it again.
	if !d.says("sending again through the restarted plugin", "it may have arrived, so it is not sent twice") {
		t.Errorf("want the host to hand the reply to the restarted plugin, and the plugin to skip the part already sent")
	}
	for _, text := range append(dms, "six", "seven") {
		if n := repliesTo(api, text); n != 1 {
			t.Errorf("%q was answered %d times, want once", text, n)
		}
	}
	if n := repliesTo(api, "@"+api.Bot.Username+" three"); n > 1 {
		t.Errorf("the group message was answered %d times", n)
	}
	groupCount := 0
	for _, m := range d.memories(agentID, groupRoom) {
		if strings.HasSuffix(m.Content.Text, " three") && m.EntityID != agentID {
			groupCount++
		}
	}
	if groupCount != 1 {
		t.Errorf("the group message is stored %d times, want once", groupCount)
	}
	// Each message is stored once.
	room := sdk.CreateUniqueUUID(agentID, "2001")
	count := map[string]int{}
	for _, m := range d.memories(agentID, room) {
		count[m.Content.Text]++
	}
	for _, text := range []string{"one", "seven"} {
		if count[text] != 1 {
			t.Errorf("%q is stored %d times in Alice's chat", text, count[text])
		}
	}
}

func TestTelegramWebhookThroughDaemon(t *testing.T) {
	t.Parallel()
	api := telegramtest.New(t)
	d, agentID := telegramAgent(t, api, map[string]any{"TELEGRAM_WEBHOOK_URL": "https://bot.example.org"})
	api.WaitFor(t, 30*time.Second, "the webhook", func() bool { u, _ := api.Webhook(); return u != "" })
	url, secret := api.Webhook()
	path := "/hooks/telegram/" + agentID
	if url != "https://bot.example.org"+path {
		t.Fatalf("webhook url = %q", url)
	}
	id, _ := api.PushText(telegramtest.Private(tgAlice), tgAlice, "by webhook")
	post := func(secret string) int {
		req, _ := http.NewRequest(http.MethodPost, d.url+path, bytes.NewReader(api.WebhookUpdate(id)))
		req.Header.Set("Content-Type", "application/json")
		if secret != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post("wrong"); code != http.StatusUnauthorized {
		t.Fatalf("a webhook call with a wrong secret: %d", code)
	}
	if code := post(secret); code != http.StatusOK {
		t.Fatalf("webhook call: %d", code)
	}
	// Telegram delivering it twice changes nothing.
	if code := post(secret); code != http.StatusOK {
		t.Fatalf("second webhook call: %d", code)
	}
	api.WaitFor(t, 30*time.Second, "the reply", func() bool { return repliesTo(api, "by webhook") == 1 })
	// Both deliveries were held or refused as duplicates before the daemon
	// answered 200: once the held ones are handled, a second reply would
	// have been sent.
	d.waitInboxEmpty(agentID)
	if n := repliesTo(api, "by webhook"); n != 1 {
		t.Errorf("a webhook update delivered twice was answered %d times", n)
	}
	if n := len(api.Calls("getUpdates")); n != 0 {
		t.Errorf("a webhook bot polled %d times", n)
	}
	res, err := http.Post(d.url+"/hooks/nosuch/"+agentID, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("a hook for a plugin the agent lacks: %d", res.StatusCode)
	}
}

func TestTelegramDefaultAgentFromEnvironment(t *testing.T) {
	t.Parallel()
	api := telegramtest.New(t)
	startDaemon(t, daemonOpts{env: []string{"TELEGRAM_BOT_TOKEN=" + api.Token, "TELEGRAM_API_ROOT=" + api.URL}})
	api.WaitFor(t, 30*time.Second, "the default agent's bot to poll", func() bool { return api.Polling() > 0 })
	api.PushText(telegramtest.Private(tgAlice), tgAlice, "I am feeling sad about my job")
	api.WaitFor(t, 30*time.Second, "Eliza's reply", func() bool { return len(api.Sent()) == 1 })
	if txt := api.Sent()[0].Params["text"]; !strings.Contains(strings.ToLower(txt), "your job") {
		t.Errorf("ELIZA's reply on Telegram = %q", txt)
	}
}

func TestTelegramRevokedTokenStopsTheAgentClearly(t *testing.T) {
	t.Parallel()
	api := telegramtest.New(t)
	api.Revoke()
	char := scriptedCharacter(t, map[string]any{"TELEGRAM_BOT_TOKEN": api.Token, "TELEGRAM_API_ROOT": api.URL}, "telegram")
	d := launch(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	code, out := d.waitExit(60 * time.Second)
	if code == 0 || !strings.Contains(out, "telegram refused the TELEGRAM_BOT_TOKEN of agent Scripty") || !strings.Contains(out, "@BotFather") {
		t.Fatalf("want the daemon to stop saying the token was refused, got exit %d:\n%s", code, tail(out, 3000))
	}
	if strings.Contains(out, api.Token) {
		t.Error("the log shows the bot token")
	}
}
