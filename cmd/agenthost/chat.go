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
Type /history [N] to see more, /quit (or Ctrl-D) to leave.`,
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
			who := userName
			if m.EntityID == a.ID {
				who = a.Name
			}
			fmt.Fprintf(out, "%s %s: %s\n", time.UnixMilli(m.CreatedAt).Format("15:04"), who, m.Content.Text)
		}
	}
	showHistory(history)
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
			fmt.Fprintln(out, "/history [N]  show the last N messages (default 20)\n/quit         leave")
		case line == "/history" || strings.HasPrefix(line, "/history "):
			n := 20
			if f := strings.Fields(line); len(f) > 1 {
				if v, err := strconv.Atoi(f[1]); err == nil && v > 0 && v <= 1000 {
					n = v
				}
			}
			showHistory(n)
		default:
			stop := spinner(errOut, a.Name)
			var data struct {
				Messages []struct {
					Text string `json:"text"`
				} `json:"messages"`
			}
			err := c.do(ctx, "POST", "/api/agents/"+url.PathEscape(a.ID)+"/messages",
				map[string]string{"text": line, "userName": userName, "roomId": room}, &data)
			stop()
			if err != nil {
				fmt.Fprintln(errOut, "error:", err)
				break
			}
			if len(data.Messages) == 0 {
				fmt.Fprintf(out, "(%s did not answer)\n", a.Name)
			}
			for _, m := range data.Messages {
				fmt.Fprintf(out, "%s: %s\n", a.Name, m.Text)
			}
		}
		prompt()
	}
	fmt.Fprintln(out)
	return sc.Err()
}

// spinner shows "⠋ NAME is thinking…" on a terminal until stop is called;
// elsewhere it shows nothing.
func spinner(w io.Writer, name string) (stop func()) {
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
			fmt.Fprintf(f, "\r%c %s is thinking…", frames[i%len(frames)], name)
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
