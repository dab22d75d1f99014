package telegram

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/telegram/telegramtest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/agenthost/agenthost/sdk/storage"
)

const agentID = "3f1c2a9e-0d6b-4c8a-9e21-5b7f0c4d2a11"

var (
	alice = telegramtest.User{ID: 1001, FirstName: "Alice", LastName: "Liddell", Username: "alice"}
	bob   = telegramtest.User{ID: 1002, FirstName: "Bob", Username: "bob"}
	group = telegramtest.Chat{ID: -100500, Type: "supergroup", Title: "Tea party", Username: "teaparty"}
	forum = telegramtest.Chat{ID: -100600, Type: "supergroup", Title: "Forum", IsForum: true}
)

// conn returns the connector of the agent with id agentID, or nil.
func (t *telegram) conn(agentID string) *connector {
	for id, c := range t.conns.All() {
		if id == agentID {
			return c
		}
	}
	return nil
}

type harness struct {
	t   *testing.T
	tg  *telegram
	c   *plugintest.Client
	api *telegramtest.Server
}

func start(t *testing.T, settings map[string]string) *harness {
	t.Helper()
	api := telegramtest.New(t)
	tg := newTelegram()
	c := plugintest.Start(t, tg.definition())
	s := map[string]string{"TELEGRAM_BOT_TOKEN": api.Token, "TELEGRAM_API_ROOT": api.URL}
	for k, v := range settings {
		s[k] = v
	}
	ctx := context.Background()
	if _, err := c.Configure(ctx, agentID, &sdk.Character{Name: "Eliza", Bio: sdk.StringList{"A gentle listener. She asks questions."}}, s); err != nil {
		t.Fatalf("configure: %v", err)
	}
	t.Cleanup(func() { _ = c.Unconfigure(context.Background(), agentID) })
	return &harness{t: t, tg: tg, c: c, api: api}
}

func (h *harness) received(n int) []sdk.IncomingMessage {
	h.t.Helper()
	h.api.WaitFor(h.t, 10*time.Second, strconv.Itoa(n)+" messages handed to the agent", func() bool {
		return len(h.c.Runtime().Received()) >= n
	})
	return h.c.Runtime().Received()
}

func (h *harness) send(target sdk.Target, content sdk.Content) ([]string, error) {
	target.Source = Source
	return h.c.SendMessage(context.Background(), agentID, target, content)
}

func TestConfigureWithoutTokenWarns(t *testing.T) {
	t.Parallel()
	c := plugintest.Start(t, New())
	w, err := c.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza"}, map[string]string{})
	if err != nil || len(w) != 1 || !strings.Contains(w[0], "TELEGRAM_BOT_TOKEN is not set") {
		t.Fatalf("want a warning about the missing token, got %v, %v", w, err)
	}
}

func TestBadSettingStopsTheAgent(t *testing.T) {
	t.Parallel()
	c := plugintest.Start(t, New())
	_, err := c.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza"},
		map[string]string{"TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_SHOULD_RESPOND_ONLY_TO_MENTIONS": "sometimes"})
	if err == nil || !strings.Contains(err.Error(), `TELEGRAM_SHOULD_RESPOND_ONLY_TO_MENTIONS: "sometimes" is not true or false`) {
		t.Fatalf("want an error naming the setting and its value, got %v", err)
	}
}

func TestRevokedTokenIsReportedClearly(t *testing.T) {
	t.Parallel()
	api := telegramtest.New(t)
	api.Revoke()
	c := plugintest.Start(t, New())
	_, err := c.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza"},
		map[string]string{"TELEGRAM_BOT_TOKEN": api.Token, "TELEGRAM_API_ROOT": api.URL})
	if err == nil || !strings.Contains(err.Error(), "refused the TELEGRAM_BOT_TOKEN of agent Eliza") || !strings.Contains(err.Error(), "@BotFather") {
		t.Fatalf("want an error saying the token was refused, got %v", err)
	}
	if strings.Contains(err.Error(), api.Token) {
		t.Fatal("the error shows the token")
	}
}

func TestTokenRevokedWhileRunning(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.api.WaitFor(t, 5*time.Second, "polling", func() bool { return h.api.Polling() > 0 })
	h.api.Revoke()
	h.api.PushText(telegramtest.Private(alice), alice, "hello?")
	h.api.WaitFor(t, 10*time.Second, "the connector to stop", func() bool { return h.tg.conn(agentID).isDead() })
	_, err := h.send(sdk.Target{ChannelID: "1001"}, sdk.Content{Text: "hi"})
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a send after the token was revoked should say so, got %v", err)
	}
	polls := len(h.api.Calls("getUpdates"))
	// Once the connector's loop has returned, nothing polls any more.
	select {
	case <-h.tg.conn(agentID).done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connector's loop did not end with the token revoked")
	}
	if n := len(h.api.Calls("getUpdates")); n != polls {
		t.Errorf("the connector kept polling with a revoked token (%d → %d calls)", polls, n)
	}
}

func TestPrivateMessage(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	upd, msgID := h.api.PushText(telegramtest.Private(alice), alice, "Hello, I feel tired today")
	in := h.received(1)[0]
	if in.Source != "telegram" || in.MessageID != "1001:"+strconv.Itoa(msgID) || in.ChannelID != "1001" || in.ServerID != "1001" ||
		in.UserID != "1001" || in.UserName != "alice" || in.DisplayName != "Alice Liddell" || in.ChannelType != sdk.ChannelDM ||
		in.Content.Text != "Hello, I feel tired today" || in.RoomName != "Alice Liddell" || in.CreatedAt == 0 || in.Wait {
		t.Fatalf("incoming message = %+v", in)
	}
	// Confirmed only after it was handed over.
	h.api.WaitFor(t, 5*time.Second, "the update to be confirmed", func() bool { return h.api.Confirmed() > upd })
	// Typing is shown while the agent thinks.
	h.api.WaitFor(t, 5*time.Second, "typing", func() bool { return len(h.api.Calls("sendChatAction")) > 0 })
	if a := h.api.Calls("sendChatAction")[0]; a.Params["action"] != "typing" || a.Params["chat_id"] != "1001" {
		t.Errorf("chat action = %v", a.Params)
	}
	// A DM world is owned by its user.
	w := h.world(sdk.CreateUniqueUUID(agentID, "1001"))
	if own, _ := w.Metadata["ownership"].(map[string]any); own["ownerId"] != sdk.CreateUniqueUUID(agentID, "1001") {
		t.Errorf("a private chat's world is owned by its user: %+v", w.Metadata)
	}
	memID := sdk.CreateUniqueUUID(agentID, in.MessageID)
	// The reply goes back quoting the message, and typing stops.
	ids, err := h.send(sdk.Target{ChannelID: in.ChannelID, RoomID: sdk.CreateUniqueUUID(agentID, "1001")},
		sdk.Content{Text: "Why do you feel *tired*?", InReplyTo: memID})
	if err != nil || len(ids) != 1 {
		t.Fatalf("send: %v %v", ids, err)
	}
	sent := h.api.Sent()
	if len(sent) != 1 {
		t.Fatalf("want one message sent, got %d", len(sent))
	}
	m := sent[0]
	var rp struct {
		MessageID int `json:"message_id"`
	}
	_ = m.JSON("reply_parameters", &rp)
	if m.Params["chat_id"] != "1001" || m.Params["parse_mode"] != "MarkdownV2" || m.Params["text"] != `Why do you feel _tired_?` || rp.MessageID != msgID {
		t.Fatalf("sent %v", m.Params)
	}
	if n := len(h.tg.conn(agentID).typing.loops); n != 0 {
		t.Errorf("typing still shown after the reply (%d loops)", n)
	}
}

func TestGroupTopicsRepliesMediaEditsReactions(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.api.SetAdmins(group.ID, alice, bob)
	// A group message that mentions the bot.
	m := h.api.Message(group, bob, "hey @test_agent_bot, how are you")
	m["entities"] = []map[string]any{{"type": "mention", "offset": 4, "length": 15}}
	h.api.Push("message", m)
	in := h.received(1)[0]
	if in.ChannelType != sdk.ChannelGroup || in.RoomName != "Tea party" || in.WorldName != "Tea party" || in.Content.Extra["mentionsAgent"] != true ||
		in.Content.URL != "https://t.me/teaparty/"+strconv.Itoa(m["message_id"].(int)) {
		t.Fatalf("group message = %+v", in)
	}
	w := h.world(sdk.CreateUniqueUUID(agentID, "-100500"))
	owner := sdk.CreateUniqueUUID(agentID, "1001")
	if own, _ := w.Metadata["ownership"].(map[string]any); own["ownerId"] != owner {
		t.Errorf("the group's creator should own its world: %+v", w.Metadata)
	}
	if roles, _ := w.Metadata["roles"].(map[string]any); roles[owner] != "OWNER" || roles[sdk.CreateUniqueUUID(agentID, "1002")] != "ADMIN" {
		t.Errorf("roles = %+v", w.Metadata["roles"])
	}
	if !h.hasEvent(sdk.EventWorldJoined) {
		t.Error("no WORLD_JOINED for a new chat")
	}

	// A reply to that message, with a photo and caption.
	r := h.api.Message(group, alice, "")
	r["caption"] = "look at this"
	r["photo"] = []map[string]any{{"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90}, {"file_id": "big", "file_unique_id": "b", "width": 900, "height": 900}}
	r["reply_to_message"] = m
	h.api.Push("message", r)
	in = h.received(2)[1]
	if in.Content.Text != "look at this" || in.InReplyTo != "-100500:"+strconv.Itoa(m["message_id"].(int)) ||
		len(in.Content.Attachments) != 1 || in.Content.Attachments[0].ID != "big" || in.Content.Attachments[0].ContentType != "image" {
		t.Fatalf("reply with photo = %+v", in)
	}
	if in.Content.Extra["mentionsAgent"] == true {
		t.Error("a reply to a user is not a mention of the bot")
	}

	// A document.
	d := h.api.Message(group, alice, "")
	d["document"] = map[string]any{"file_id": "doc1", "file_unique_id": "d1", "file_name": "report.pdf", "mime_type": "application/pdf"}
	h.api.Push("message", d)
	in = h.received(3)[2]
	if len(in.Content.Attachments) != 1 || in.Content.Attachments[0].Title != "report.pdf" || in.Content.Attachments[0].ContentType != "document" {
		t.Fatalf("document = %+v", in.Content.Attachments)
	}

	// An edit is a new version of the message.
	e := map[string]any{}
	for k, v := range m {
		e[k] = v
	}
	e["text"] = "hey @test_agent_bot, how are you today"
	e["edit_date"] = time.Now().Unix() + 5
	h.api.Push("edited_message", e)
	in = h.received(4)[3]
	if !strings.HasPrefix(in.MessageID, "-100500:"+strconv.Itoa(m["message_id"].(int))+":edit:") || in.Content.Extra["edited"] != true ||
		in.Content.Text != "hey @test_agent_bot, how are you today" {
		t.Fatalf("edit = %+v", in)
	}

	// A forum topic is its own room.
	topicRoot := h.api.Message(forum, alice, "")
	topicRoot["forum_topic_created"] = map[string]any{"name": "Recipes", "icon_color": 1}
	tm := h.api.Message(forum, alice, "scones or muffins?")
	tm["message_thread_id"] = topicRoot["message_id"]
	tm["is_topic_message"] = true
	tm["reply_to_message"] = topicRoot
	h.api.Push("message", tm)
	in = h.received(5)[4]
	wantThread := "-100600-" + strconv.Itoa(topicRoot["message_id"].(int))
	if in.ThreadID != wantThread || in.RoomName != "Recipes" || in.InReplyTo != "" || in.ChannelID != "-100600" {
		t.Fatalf("topic message = %+v", in)
	}
	ids, err := h.send(sdk.Target{ChannelID: in.ChannelID, ThreadID: in.ThreadID}, sdk.Content{Text: "Scones."})
	if err != nil || len(ids) != 1 {
		t.Fatal(err)
	}
	if last := h.api.Sent()[len(h.api.Sent())-1]; last.Params["message_thread_id"] != strconv.Itoa(topicRoot["message_id"].(int)) {
		t.Errorf("a reply in a topic goes to the topic: %v", last.Params)
	}

	// A reaction is stored as a memory answering the message.
	h.api.Push("message_reaction", map[string]any{"chat": group, "message_id": m["message_id"], "user": alice, "date": time.Now().Unix(),
		"old_reaction": []any{}, "new_reaction": []any{map[string]any{"type": "emoji", "emoji": "👍"}}})
	h.api.WaitFor(t, 5*time.Second, "the reaction", func() bool { return h.hasEvent(sdk.EventReactionReceived) })
	var found bool
	for _, mem := range h.c.Runtime().Memories() {
		if mem.Content.Text == "👍" && mem.Content.InReplyTo == sdk.CreateUniqueUUID(agentID, "-100500:"+strconv.Itoa(m["message_id"].(int))) {
			found = true
		}
	}
	if !found {
		t.Error("the reaction is not stored as a memory answering the message")
	}
	var allowed []string
	_ = h.api.Calls("getUpdates")[0].JSON("allowed_updates", &allowed)
	if !strings.Contains(strings.Join(allowed, ","), "message_reaction") {
		t.Errorf("reactions must be asked for: allowed_updates = %v", allowed)
	}

	// A channel post is a FEED.
	ch := telegramtest.Chat{ID: -100700, Type: "channel", Title: "News"}
	post := map[string]any{"message_id": 1, "date": time.Now().Unix(), "chat": ch, "sender_chat": ch, "text": "Breaking news"}
	h.api.Push("channel_post", post)
	in = h.received(6)[5]
	if in.ChannelType != sdk.ChannelFeed || in.UserID != "-100700" || in.DisplayName != "News" {
		t.Fatalf("channel post = %+v", in)
	}
}

func (h *harness) world(id string) sdk.World {
	h.t.Helper()
	for _, w := range h.c.Runtime().Worlds() {
		if w.ID == id && (w.AgentID == "" || w.AgentID == agentID) {
			return sdk.World{ID: w.ID, Name: w.Name, ServerID: w.ServerID, Metadata: w.Metadata}
		}
	}
	h.t.Fatalf("world %s is not stored", id)
	return sdk.World{}
}

func (h *harness) hasEvent(typ string) bool {
	for _, e := range h.c.Runtime().Events() {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func TestAllowedChatsAndMentionsOnly(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"TELEGRAM_ALLOWED_CHATS": "[-100500]", "TELEGRAM_SHOULD_RESPOND_ONLY_TO_MENTIONS": "true"})
	h.api.PushText(telegramtest.Private(alice), alice, "not allowed here")
	h.api.PushText(group, bob, "chatter that is not for the bot")
	m := h.api.Message(group, bob, "@test_agent_bot hello")
	m["entities"] = []map[string]any{{"type": "mention", "offset": 0, "length": 15}}
	last := h.api.Push("message", m)
	h.api.WaitFor(t, 5*time.Second, "all updates confirmed", func() bool { return h.api.Confirmed() > last })
	got := h.c.Runtime().Received()
	if len(got) != 1 || got[0].Content.Text != "@test_agent_bot hello" {
		t.Fatalf("want only the mention in the allowed chat, got %+v", got)
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, id := h.api.PushText(telegramtest.Private(alice), alice, "/start")
	h.api.WaitFor(t, 5*time.Second, "the /start answer", func() bool { return len(h.api.Sent()) == 1 })
	s := h.api.Sent()[0]
	if !strings.Contains(s.Params["text"], "I'm Eliza") || !strings.Contains(s.Params["text"], "A gentle listener") {
		t.Errorf("/start answer = %q", s.Params["text"])
	}
	var rp struct {
		MessageID int `json:"message_id"`
	}
	_ = s.JSON("reply_parameters", &rp)
	if rp.MessageID != id {
		t.Errorf("/start answer should reply to the command")
	}
	h.api.PushText(group, bob, "/help@test_agent_bot")
	h.api.WaitFor(t, 5*time.Second, "the /help answer", func() bool { return len(h.api.Sent()) == 2 })
	if txt := h.api.Sent()[1].Params["text"]; !strings.Contains(txt, "@test\\_agent\\_bot") {
		t.Errorf("/help answer = %q", txt)
	}
	last, _ := h.api.PushText(group, bob, "/start@other_bot")
	h.api.WaitFor(t, 5*time.Second, "confirmed", func() bool { return h.api.Confirmed() > last })
	if n := len(h.api.Sent()); n != 2 {
		t.Errorf("a command for another bot was answered")
	}
	if n := len(h.c.Runtime().Received()); n != 0 {
		t.Errorf("commands went to the agent: %d", n)
	}
	var cmds []map[string]string
	h.api.WaitFor(t, 5*time.Second, "setMyCommands", func() bool { return len(h.api.Calls("setMyCommands")) > 0 })
	_ = h.api.Calls("setMyCommands")[0].JSON("commands", &cmds)
	if len(cmds) != 2 {
		t.Errorf("commands menu = %v", cmds)
	}
}

func TestLongReplyIsSplitAndEscaped(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	para := "Tea (with milk) costs 1.50 - or **less**! See [menu](https://example.com/menu_1). "
	text := strings.Repeat(para, 150)
	ids, err := h.send(sdk.Target{ChannelID: "1001"}, sdk.Content{Text: text,
		Extra: map[string]any{"buttons": []any{map[string]any{"text": "Menu", "url": "https://example.com/menu"},
			map[string]any{"kind": "callback", "text": "More", "data": "more please"}}}})
	if err != nil {
		t.Fatal(err)
	}
	sent := h.api.Sent()
	if len(sent) < 3 || len(ids) != len(sent) {
		t.Fatalf("want the reply in several messages, got %d (ids %v)", len(sent), ids)
	}
	var joined strings.Builder
	for i, s := range sent {
		plain, err := telegramtest.ParseMarkdownV2(s.Params["text"])
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		joined.WriteString(plain)
		_, markup := s.Params["reply_markup"]
		if markup != (i == len(sent)-1) {
			t.Errorf("message %d: buttons belong on the last message only", i)
		}
	}
	if want := spansText(parseMarkdown(text)); joined.String() != want {
		t.Fatal("the messages do not add up to the reply")
	}
	var kb struct {
		InlineKeyboard [][]map[string]any `json:"inline_keyboard"`
	}
	if err := sent[len(sent)-1].JSON("reply_markup", &kb); err != nil || len(kb.InlineKeyboard) != 2 ||
		kb.InlineKeyboard[0][0]["url"] != "https://example.com/menu" || kb.InlineKeyboard[1][0]["callback_data"] != "more please" {
		t.Fatalf("keyboard = %+v (%v)", kb, err)
	}
	if _, ok := kb.InlineKeyboard[0][0]["copy_text"]; ok {
		t.Error("a url button must not carry copy_text")
	}
}

func TestMediaAndEdit(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	png := base64.StdEncoding.EncodeToString([]byte("\x89PNG fake"))
	_, err := h.send(sdk.Target{ChannelID: "1001"}, sdk.Content{Text: "Here you go.", Attachments: []sdk.Media{
		{URL: "https://example.com/cat.jpg", ContentType: "image", Description: "A cat."},
		{URL: "data:application/pdf;base64," + png, Title: "menu.pdf"},
		{URL: "/etc/passwd", Title: "secret"},
	}})
	if err == nil || !strings.Contains(err.Error(), "only http(s) URLs") {
		t.Fatalf("a local path must be refused, got %v", err)
	}
	photos, docs := h.api.Calls("sendPhoto"), h.api.Calls("sendDocument")
	if len(photos) != 1 || photos[0].Params["photo"] != "https://example.com/cat.jpg" || photos[0].Params["caption"] != `A cat\.` {
		t.Fatalf("photo = %+v", photos)
	}
	if len(docs) != 1 || string(docs[0].Files["document"]) != "\x89PNG fake" {
		t.Fatalf("document = %+v", docs)
	}
	ids, err := h.send(sdk.Target{ChannelID: "1001"}, sdk.Content{Text: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.send(sdk.Target{ChannelID: "1001"}, sdk.Content{Text: "second!", Extra: map[string]any{"edit": ids[0]}}); err != nil {
		t.Fatal(err)
	}
	ed := h.api.Calls("editMessageText")
	if len(ed) != 1 || ed[0].Params["text"] != `second\!` || ed[0].Params["message_id"] != strings.Split(ids[0], ":")[1] {
		t.Fatalf("edit = %+v", ed)
	}
}

func TestRateLimitNetworkErrorsAndServerErrors(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.api.Fail("sendMessage", 1, telegramtest.Fault{Code: 429, Description: "Too Many Requests: retry after 1", RetryAfter: 1})
	h.api.Fail("sendMessage", 1, telegramtest.Fault{Drop: true})
	h.api.Fail("sendMessage", 1, telegramtest.Fault{Code: 502, Description: "Bad Gateway"})
	began := time.Now()
	ids, err := h.send(sdk.Target{ChannelID: "1001"}, sdk.Content{Text: "persistent"})
	if err != nil || len(ids) != 1 {
		t.Fatalf("send through faults: %v %v", ids, err)
	}
	if took := time.Since(began); took < time.Second {
		t.Errorf("retry_after 1 was not honoured: took %s", took)
	}
	if n := len(h.api.Sent()); n != 1 {
		t.Errorf("want the message sent once, got %d", n)
	}
	// A refused chat fails for good, at once.
	h.api.Fail("sendMessage", 1, telegramtest.Fault{Code: 403, Description: "Forbidden: bot was blocked by the user"})
	if _, err := h.send(sdk.Target{ChannelID: "1001"}, sdk.Content{Text: "blocked"}); err == nil || !strings.Contains(err.Error(), "blocked by the user") {
		t.Fatalf("want the 403 reported, got %v", err)
	}
	// Polling survives dropped connections and 5xx answers.
	h.api.Fail("getUpdates", 1, telegramtest.Fault{Drop: true})
	h.api.Fail("getUpdates", 1, telegramtest.Fault{Code: 500, Description: "Internal Server Error"})
	h.api.Fail("getUpdates", 1, telegramtest.Fault{Code: 429, Description: "Too Many Requests: retry after 1", RetryAfter: 1})
	h.api.PushText(telegramtest.Private(bob), bob, "still there?")
	if in := h.received(1)[0]; in.Content.Text != "still there?" {
		t.Fatalf("got %+v", in)
	}
}

func TestDeliveryIsSentOnce(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	c := h.tg.conn(agentID)
	ctx := context.Background()
	target := sdk.Target{Source: Source, ChannelID: "1001"}
	long := strings.Repeat("word ", 1000) // two messages
	ids, err := c.deliver(ctx, "d1", target, sdk.Content{Text: long}, 0)
	if err != nil || len(ids) != 2 {
		t.Fatalf("deliver: %v %v", ids, err)
	}
	again, err := c.deliver(ctx, "d1", target, sdk.Content{Text: long}, 0)
	if err != nil || strings.Join(again, ",") != strings.Join(ids, ",") || len(h.api.Sent()) != 2 {
		t.Fatalf("a repeated delivery sent again: %v, %d sent, %v", again, len(h.api.Sent()), err)
	}
	// The plugin died while part 0 of d2 was on its way: it may have
	// arrived, so only part 1 goes.
	st, _ := json.Marshal(delivery{Next: 0, InFlight: true})
	if err := storage.For(c.agent).SetCache(ctx, deliveryKey("d2"), st, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.deliver(ctx, "d2", target, sdk.Content{Text: long}, 0); err != nil {
		t.Fatal(err)
	}
	if n := len(h.api.Sent()); n != 3 {
		t.Fatalf("want only the second part of d2 sent, %d messages in all", n)
	}
}

func TestWebhookMode(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"TELEGRAM_WEBHOOK_URL": "https://bot.example.org"})
	h.api.WaitFor(t, 5*time.Second, "setWebhook", func() bool { u, _ := h.api.Webhook(); return u != "" })
	u, secret := h.api.Webhook()
	if u != "https://bot.example.org/hooks/telegram/"+agentID || len(secret) < 32 {
		t.Fatalf("webhook = %q, secret %q", u, secret)
	}
	if n := len(h.api.Calls("getUpdates")); n != 0 {
		t.Errorf("a webhook bot must not poll (%d getUpdates)", n)
	}
	c := h.tg.conn(agentID)
	id, _ := h.api.PushText(telegramtest.Private(alice), alice, "via webhook")
	body := h.api.WebhookUpdate(id)
	ctx := context.Background()
	res, _ := h.tg.serveHTTP(ctx, c.agent, &sdk.HTTPRequest{Method: "POST", Path: "/", Body: body, Header: http.Header{}})
	if res.Status != http.StatusUnauthorized {
		t.Fatalf("a call without the secret: %d", res.Status)
	}
	res, _ = h.tg.serveHTTP(ctx, c.agent, &sdk.HTTPRequest{Method: "POST", Path: "/", Body: body,
		Header: http.Header{"X-Telegram-Bot-Api-Secret-Token": {secret}}})
	if res.Status != http.StatusOK {
		t.Fatalf("webhook call: %d %s", res.Status, res.Body)
	}
	if in := h.received(1)[0]; in.Content.Text != "via webhook" {
		t.Fatalf("got %+v", in)
	}
}

func TestPollingRemovesAWebhook(t *testing.T) {
	t.Parallel()
	api := telegramtest.New(t)
	// A webhook left from another setup blocks getUpdates with 409.
	cl := &http.Client{Timeout: 5 * time.Second}
	res, err := cl.Post(api.URL+"/bot"+api.Token+"/setWebhook?url=https://old.example.org/hook", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	tg := newTelegram()
	c := plugintest.Start(t, tg.definition())
	if _, err := c.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza"},
		map[string]string{"TELEGRAM_BOT_TOKEN": api.Token, "TELEGRAM_API_ROOT": api.URL}); err != nil {
		t.Fatal(err)
	}
	defer c.Unconfigure(context.Background(), agentID)
	api.PushText(telegramtest.Private(alice), alice, "after the webhook")
	api.WaitFor(t, 10*time.Second, "the message", func() bool { return len(c.Runtime().Received()) == 1 })
	if len(api.Calls("deleteWebhook")) != 1 {
		t.Error("want the old webhook removed once")
	}
}

func TestParseAllowedChats(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`["-100123", 456]`:      "-100123,456",
		`-100123, 456,@Chan`:    "-100123,456,@chan",
		``:                      "",
		`[]`:                    "",
		`["not a number"]`:      "error",
		`[-1001234567890123]`:   "-1001234567890123",
		`{"a": 1}`:              "error",
		`12,abc`:                "error",
		` [ "@MyChannel" ] `:    "@mychannel",
		`["-100123","-100123"]`: "-100123",
	} {
		m, err := parseAllowedChats(in)
		got := ""
		if err != nil {
			got = "error"
		} else {
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			got = strings.Join(keys, ",")
		}
		if got != want {
			t.Errorf("parseAllowedChats(%q) = %q, want %q", in, got, want)
		}
	}
}
