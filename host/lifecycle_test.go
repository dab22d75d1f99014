package host

import (
	"errors"
	"fmt"
	"testing"
)

// TestAgentListKeepsItsOrder: agents are listed in the order they came, an
// agent listed again keeps its place, one unlisted leaves no gap, and each
// is found by id, through the index that spares listing one more a look
// at all the others.
func TestAgentListKeepsItsOrder(t *testing.T) {
	d := &Daemon{byID: map[string]*AgentRuntime{}, listedAt: map[string]int{}}
	agent := func(i int) *AgentRuntime {
		return &AgentRuntime{ID: fmt.Sprintf("id-%d", i), Name: fmt.Sprintf("a%d", i)}
	}
	var as []*AgentRuntime
	for i := range 5 {
		as = append(as, agent(i))
	}
	d.addAgents(as[:3])
	d.addAgent(as[3])
	d.addAgent(as[4])
	again := agent(1)
	d.addAgent(again)  // replaces a1 in its place
	d.unlist(as[2])    // a2 goes
	d.unlist(agent(3)) // another runtime under a3's id: a3 stays
	d.dropAgent(agent(4), errors.New("broken"))
	order := func() string {
		s := ""
		for _, a := range d.Agents() {
			s += a.ID + " "
		}
		return s
	}
	if got, want := order(), "id-0 id-1 id-3 id-4 "; got != want {
		t.Fatalf("order = %q, want %q", got, want)
	}
	if d.Agents()[1] != again || d.agentByID("id-1") != again {
		t.Error("the agent listed again is not in its predecessor's place")
	}
	if st, err := as[4].Status(); st != AgentFailed || err == nil {
		t.Errorf("the listed agent whose restart failed is %s (%v), want failed", st, err)
	}
	for i, a := range d.Agents() {
		if d.listedAt[a.ID] != i {
			t.Errorf("%s is listed at %d, indexed at %d", a.ID, i, d.listedAt[a.ID])
		}
	}
	if len(d.listedAt) != len(d.agents) {
		t.Errorf("%d indexed, %d listed", len(d.listedAt), len(d.agents))
	}
	d.addAgent(as[2])
	if got, want := order(), "id-0 id-1 id-3 id-4 id-2 "; got != want {
		t.Fatalf("after listing a2 again: order = %q, want %q", got, want)
	}
}
