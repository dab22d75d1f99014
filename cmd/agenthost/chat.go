package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/spf13/cobra"
)

// chatCmd is `agenthost chat`: a terminal conversation with an agent of a
// running daemon. It shows the conversation so far, then sends each line
// and prints the replies, with a spinner while the agent thinks.
func chatCmd() *cobra.Command {
	var agent, userName string
	var history int
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "Talk to an agent of a running daemon from the terminal",
		Long: `Talk to an agent of a running daemon (AGENTHOST_URL, default ` + defaultURL + `).
The conversation is the same as the web page's and the API's for the same
user name, and it is kept: "chat" starts by showing its last messages.
Type /history [N] to see more, /quit (or Ctrl-D) to leave. When the agent
could not answer (a plugin stopped responding and the daemon is restarting
it), /retry waits for its plugins to run again and sends the message again.`,
		Example: `  agenthost chat
  agenthost chat --agent Bob --user ann
  agenthost chat --history 50
  AGENTHOST_URL=http://10.0.0.5:3000 agenthost chat`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			if userName == "" {
				userName = defaultUserName()
			}
			return runChat(cmd.Context(), c, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), agent, userName, history)
		},
	}
	cmd.Flags().StringVarP(&agent, "agent", "a", "", "the agent: name or id (default: the first running agent)")
	cmd.Flags().StringVarP(&userName, "user", "u", "", "your name in the conversation (default: your login name)")
	cmd.Flags().IntVar(&history, "history", 10, "how many earlier messages to show first")
	cmd.Flags().String("url", "", "the daemon's URL (default AGENTHOST_URL or "+defaultURL+")")
	return cmd
}

func defaultUserName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "user"
}

type chatMemory struct {
	ID       string `json:"id"`
	EntityID string `json:"entityId"`
	Content  struct {
		Text string `json:"text"`
	} `json:"content"`
	CreatedAt int64 `json:"createdAt"`
}

func runChat(ctx context.Context, c *apiClient, in io.Reader, out, errOut io.Writer, agentKey, userName string, history int) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var agents struct {
		Agents []agentRow `json:"agents"`
	}
	if err := c.do(ctx, "GET", "/api/agents", nil, &agents); err != nil {
		return err
	}
	var a *agentRow
	for i := range agents.Agents {
		x := &agents.Agents[i]
		if agentKey == "" && x.Status == "running" || agentKey != "" && (strings.EqualFold(x.Name, agentKey) || x.ID == agentKey) {
			a = x
			break
		}
	}
	if a == nil {
		if agentKey == "" {
			return errors.New("the daemon has no running agent; start one with `agenthost agent start NAME`")
		}
		var names []string
		for _, x := range agents.Agents {
			names = append(names, x.Name)
		}
		return fmt.Errorf("no agent %q; the agents are: %s", agentKey, strings.Join(names, ", "))
	}
	if a.Status != "running" {
		fmt.Fprintf(errOut, "%s is %s; start it with `agenthost agent start %s`\n", a.Name, a.Status, a.Name)
	}
	room := host.UserRoomID(a.ID, userName)
	fmt.Fprintf(out, "Talking to %s as %s. /quit to leave, /history [N] for earlier messages.\n", a.Name, userName)
	showHistory := func(n int) {
		if n <= 0 {
			return
		}
		var data struct {
			Memories []chatMemory `json:"memories"`
		}
		path := fmt.Sprintf("/api/memory/%s/memories?roomId=%s&count=%d", url.PathEscape(a.ID), room, n)
		if err := c.do(ctx, "GET", path, nil, &data); err != nil {
			fmt.Fprintln(errOut, "history:", err)
			return
		}
		for i := len(data.Memories) - 1; i >= 0; i-- {
			m := data.Memories[i]
			if m.Content.Text == "" {
				continue // a decision not to answer: nothing was said
			}
			who := userName
			if m.EntityID == a.ID {
				who = a.Name
			}
			fmt.Fprintf(out, "%s %s: %s\n", time.UnixMilli(m.CreatedAt).Format("15:04"), who, m.Content.Text)
		}
	}
	showHistory(history)
	// failed is the last message the agent could not answer, for /retry.
	var failed string
	send := func(text string) {
		stop := spinner(errOut, a.Name+" is thinking…")
		var data struct {
			Messages []struct {
				Text string `json:"text"`
			} `json:"messages"`
		}
		err := c.do(ctx, "POST", "/api/agents/"+url.PathEscape(a.ID)+"/messages",
			map[string]string{"text": text, "userName": userName, "roomId": room}, &data)
		stop()
		if err != nil {
			failed = text
			fmt.Fprintln(errOut, sendFailure(ctx, c, a.Name, err))
			return
		}
		failed = ""
		if len(data.Messages) == 0 {
			fmt.Fprintf(out, "(%s did not answer)\n", a.Name)
		}
		for _, m := range data.Messages {
			fmt.Fprintf(out, "%s: %s\n", a.Name, m.Text)
		}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prompt := func() { fmt.Fprintf(out, "%s> ", userName) }
	prompt()
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case line == "/quit" || line == "/exit":
			return nil
		case line == "/help":
			fmt.Fprintln(out, "/history [N]  show the last N messages (default 20)\n/retry        send the last message again after the agent could not answer\n/quit         leave")
		case line == "/retry":
			if failed == "" {
				fmt.Fprintln(out, "(nothing to send again: the last message was answered)")
				break
			}
			if err := waitForPlugins(ctx, c, a.Name, errOut); err != nil {
				fmt.Fprintln(errOut, err)
				break
			}
			send(failed)
		case line == "/history" || strings.HasPrefix(line, "/history "):
			n := 20
			if f := strings.Fields(line); len(f) > 1 {
				if v, err := strconv.Atoi(f[1]); err == nil && v > 0 && v <= 1000 {
					n = v
				}
			}
			showHistory(n)
		default:
			send(line)
		}
		prompt()
	}
	fmt.Fprintln(out)
	return sc.Err()
}

// sendFailure says in one sentence why a message got no answer and what to
// do. A plugin that stopped responding is the common case: the daemon
// restarts it, and /retry sends the message again once it runs.
func sendFailure(ctx context.Context, c *apiClient, agent string, err error) string {
	var ae *apiError
	if !errors.As(err, &ae) {
		return fmt.Sprintf("%s could not be reached: %v; type /retry to send your message again.", agent, err)
	}
	switch ae.Code {
	case "PLUGIN_UNAVAILABLE", "PLUGIN_CRASHED":
		down, _ := pluginsNotRunning(ctx, c, agent)
		if len(down) == 0 {
			return fmt.Sprintf("%s could not answer because one of its plugins stopped responding (the daemon has restarted it); type /retry to send your message again.", agent)
		}
		what := fmt.Sprintf("its plugin %q stopped responding and the daemon is restarting it", down[0])
		if len(down) > 1 {
			what = fmt.Sprintf("its plugins %s stopped responding and the daemon is restarting them", quoteList(down))
		}
		return fmt.Sprintf("%s could not answer because %s; type /retry to send your message again when it runs (/retry waits for that).", agent, what)
	case "TIMEOUT":
		return fmt.Sprintf("%s did not answer in time (a plugin may be slow or stuck); type /retry to send your message again.", agent)
	case "AGENT_NOT_RUNNING":
		return fmt.Sprintf("%s is not running; start it with `agenthost agent start %s`, then type /retry.", agent, agent)
	}
	return fmt.Sprintf("%s could not answer: %s; type /retry to send your message again.", agent, ae.Message)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// pluginsNotRunning names the agent's plugins whose process does not run
// at the moment (restarting, starting, failed), and why the failed ones
// failed.
func pluginsNotRunning(ctx context.Context, c *apiClient, agent string) (down []string, failed map[string]string) {
	var data struct {
		Plugins []struct {
			Name   string   `json:"name"`
			State  string   `json:"state"`
			Error  string   `json:"error"`
			Agents []string `json:"agents"`
		} `json:"plugins"`
	}
	if c.do(ctx, "GET", "/api/plugins", nil, &data) != nil {
		return nil, nil
	}
	failed = map[string]string{}
	for _, p := range data.Plugins {
		if p.State == "running" || p.State == "stopped" {
			continue
		}
		// A restarting plugin is used by no running agent for the moment:
		// its agents list may be empty, so it counts for every agent.
		if len(p.Agents) > 0 && !slices.ContainsFunc(p.Agents, func(n string) bool { return strings.EqualFold(n, agent) }) {
			continue
		}
		down = append(down, p.Name)
		if p.State == "failed" {
			failed[p.Name] = p.Error
		}
	}
	return down, failed
}

// waitForPlugins waits, with a spinner, until every plugin of the daemon
// that the agent may use runs again, for at most a minute. A plugin the
// daemon gave up on is not waited for.
func waitForPlugins(ctx context.Context, c *apiClient, agent string, errOut io.Writer) error {
	deadline := time.Now().Add(time.Minute)
	var stop func()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		down, failed := pluginsNotRunning(ctx, c, agent)
		if len(down) == 0 {
			return nil
		}
		for _, name := range down {
			if why, ok := failed[name]; ok {
				return fmt.Errorf("plugin %q failed and the daemon no longer restarts it (%s); see the daemon's log, fix it and restart the daemon", name, why)
			}
		}
		if stop == nil {
			stop = spinner(errOut, "waiting for "+quoteList(down)+" to run again…")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still not running after a minute; see the daemon's log, then type /retry again", quoteList(down))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// spinner shows "⠋ what" (e.g. "Eliza is thinking…") on a terminal until
// stop is called; elsewhere it shows nothing.
func spinner(w io.Writer, what string) (stop func()) {
	f, ok := w.(*os.File)
	if !ok {
		return func() {}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(f, "\r%c %s", frames[i%len(frames)], what)
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}
