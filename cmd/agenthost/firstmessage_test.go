package main

import (
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
)

// TestFirstMessageCrossings counts the calls between processes of the
// first message a freshly started agent answers against those of the
// messages after it. The first finds nothing read yet in bootstrap's
// process: the agent's state in the room, the room, its world, the
// sender's name and rooms, the room's action results and choices. Each is
// a round trip through the host to the database plugin; bootstrap starts
// them side by side as the run begins, and the providers that ask for the
// same record at once share one read. What the agent is made of
// (DescribeAgent) is asked while it starts, not on its first message.
// Before, the first message made 43 crossings (4 reads of the world, 3 of
// DescribeAgent), 32 more than a warm one; now 31, 20 more. Reflection is
// off, so that every warm message costs the same.
//
// The sum leaves out the calls that come on timers of their own: the
// host's health checks, the task service's looks and the timeline's
// batches. A CI run once caught two of each in the first message's window
// and none in the warm ones. The first message also arms the embedding
// marker (one CreateTask, two crossings), which a warm one never does.
func TestFirstMessageCrossings(t *testing.T) {
	char := writeCharacter(t, map[string]any{"name": "Eliza", "bio": "A test agent.",
		"plugins": []string{"sql", "bootstrap", "offline"}, "settings": map[string]any{"DISABLE_REFLECTION": "true"}})
	d := startDaemon(t, daemonOpts{characters: []string{char}, env: []string{"AGENTHOST_LOG_LEVEL=warn"}})
	// The task service's first look, a moment after the agent starts, is
	// not the message's.
	testwait.For(t, 10*time.Second, "the task service's first look", func() bool {
		return scrapeCrossings(t, d.url)["plugin→host bootstrap Database.GetTasks"] >= 1
	})
	before := settledCrossings(t, d.url)
	d.say("Eliza", "hello there")
	after := settledCrossings(t, d.url)
	first := withoutTimers(before, after)
	const n = 10
	warmBefore, warmAfter, _ := countMessages(t, d, "Eliza", n)
	warm := withoutTimers(warmBefore, warmAfter) / n
	t.Logf("first message: %.0f crossings\n%s\nwarm message: %.2f crossings\n%s",
		first, crossingsTable(before, after, 1), warm, crossingsTable(warmBefore, warmAfter, n))
	// 21 more today: the reads of the first look (two crossings each), the
	// marker, and the room's recent messages, which a warm message takes
	// from the window the one before left (19 before it did). One to
	// spare.
	const most = 22
	if extra := first - warm; extra > most {
		t.Errorf("the first message costs %.0f crossings, %.1f more than a warm one (%.1f); want at most %d more", first, extra, warm, most)
	}
	for _, c := range []struct {
		key  string
		most float64
	}{
		{"plugin→host bootstrap Runtime.DescribeAgent", 0},
		{"plugin→host offline Runtime.DescribeAgent", 0},
		{"plugin→host bootstrap Database.GetWorlds", 1},
		{"plugin→host bootstrap Database.GetParticipantState", 1},
	} {
		if got := after[c.key] - before[c.key]; got > c.most {
			t.Errorf("%s: %.0f calls in the first message, want at most %.0f", c.key, got, c.most)
		}
	}
}

// withoutTimers sums the crossings from before to after but the calls
// that come on timers of their own and fall into a window now and then:
// the host's health checks of its plugins (3 of them in a CI run), the
// task service's looks (which the run's end pokes) and the timeline's
// batched AddLogs.
func withoutTimers(before, after map[string]float64) float64 {
	var sum float64
	for k, v := range after {
		if strings.HasSuffix(k, " Check") || strings.HasSuffix(k, "GetTasks") || strings.HasSuffix(k, "AddLogs") {
			continue
		}
		sum += v - before[k]
	}
	return sum
}
