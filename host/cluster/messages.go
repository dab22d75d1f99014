package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// ErrNoAnswer: the message is in the stream, but its answer did not come
// while the caller waited. It is handled all the same.
var ErrNoAnswer = errors.New("the message was accepted, but its answer did not come in time")

// Deliver puts a message for an agent in the stream, under msgID (the
// stream keeps one copy of an id within its dedup window), and returns
// once NATS has stored it. With wait, it also waits for the answer of the
// node that handles it. dup says that the stream had the id already: a
// caller that does not wait has nothing more to do.
func (n *Node) Deliver(ctx context.Context, agentID, msgID string, data []byte, wait bool) (answer []byte, dup bool, err error) {
	m := &nats.Msg{Subject: n.subject("msg", agentID), Header: nats.Header{}, Data: data}
	var ch chan []byte
	var tok string
	if wait {
		tok = nuid.Next()
		ch = make(chan []byte, 1)
		n.waitMu.Lock()
		n.waiters[tok] = ch
		n.waitMu.Unlock()
		defer func() {
			n.waitMu.Lock()
			delete(n.waiters, tok)
			n.waitMu.Unlock()
		}()
		m.Header.Set(hdrReply, n.subject("reply", n.cfg.NodeID, tok))
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	ack, err := n.js.PublishMsg(pctx, m, jetstream.WithMsgID(msgID))
	cancel()
	if err != nil {
		return nil, false, fmt.Errorf("keep the message in the cluster's stream: %w", err)
	}
	if ack.Duplicate {
		if !wait {
			return nil, true, nil
		}
		// Sent again by a client that waits (a retry through another
		// node, say): it goes through once more under a new id, and the
		// database's message id makes the agent answer with the replies
		// it stored the first time.
		m.Header.Del(nats.MsgIdHdr)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = n.js.PublishMsg(pctx, m, jetstream.WithMsgID(msgID+"/"+tok))
		cancel()
		if err != nil {
			return nil, true, fmt.Errorf("keep the message in the cluster's stream: %w", err)
		}
		dup = true
	}
	if !wait {
		return nil, dup, nil
	}
	// An answer is a plain NATS message: one sent while this node was
	// reconnecting is lost. After a reconnect the message goes once more
	// (a new stream id, the same message id): the agent's node answers
	// it with the replies it stored, or, while it still has it in hand,
	// when it is done.
	reconnects := n.nc.Stats().Reconnects
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for again := 1; ; {
		select {
		case a := <-ch:
			return a, dup, nil
		case <-ctx.Done():
			return nil, dup, fmt.Errorf("%w: %w", ErrNoAnswer, ctx.Err())
		case <-t.C:
		}
		if r := n.nc.Stats().Reconnects; r != reconnects && n.nc.IsConnected() {
			reconnects = r
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := n.js.PublishMsg(pctx, m, jetstream.WithMsgID(fmt.Sprintf("%s/%s/%d", msgID, tok, again)))
			cancel()
			if err == nil {
				again++
			}
		}
	}
}

// consume starts the agent's durable consumer on this node.
func (n *Node) consume(id string, l *lease) error {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	// The consumer is made anew: the messages the last holder took and
	// did not acknowledge (it died, or stopped the agent before its lease
	// expired) come at once instead of after AckWait. Only the lease's
	// holder does this, and the last one no longer handles them.
	if err := n.stream.DeleteConsumer(ctx, "agent_"+id); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	cons, err := n.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "agent_" + id, FilterSubject: n.subject("msg", id), AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: ackWait, MaxAckPending: 64, DeliverPolicy: jetstream.DeliverAllPolicy,
		// An agent removed leaves its consumer; NATS drops it after a day unused.
		InactiveThreshold: 24 * time.Hour,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		n.mu.Lock()
		if n.held[id] != l || l.stopped {
			n.mu.Unlock()
			_ = m.NakWithDelay(250 * time.Millisecond)
			return
		}
		l.busy++
		n.mu.Unlock()
		go n.handle(id, l, m)
	}, jetstream.PullMaxMessages(16))
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held[id] != l || l.stopped {
		cc.Stop()
		return nil
	}
	l.cons = cc
	return nil
}

// handle runs one message of the stream through the agent, answers the
// node that waits, and only then acknowledges it to NATS.
func (n *Node) handle(id string, l *lease, m jetstream.Msg) {
	defer func() {
		n.mu.Lock()
		l.busy--
		n.mu.Unlock()
	}()
	redelivered := false
	if meta, err := m.Metadata(); err == nil {
		redelivered = meta.NumDelivered > 1
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	ans, err := n.host.HandleMessage(context.Background(), id, m.Data(), redelivered)
	close(done)
	if errors.Is(err, ErrNotNow) {
		_ = m.NakWithDelay(time.Minute)
		return
	}
	if err != nil {
		// Not handled here (the agent stopped meanwhile): the next holder
		// gets it.
		_ = m.NakWithDelay(250 * time.Millisecond)
		return
	}
	if to := m.Headers().Get(hdrReply); to != "" {
		if err := n.nc.Publish(to, ans); err != nil {
			n.log.Warn("could not send an answer to the node that waits for it", "agent", id, "error", err)
		}
	}
	if err := m.Ack(); err != nil {
		n.log.Warn("could not acknowledge a handled message; NATS gives it again and the database answers it as handled", "agent", id, "error", err)
	}
}

// Forward sends an API request to the node that holds its agent and
// returns that node's answer.
func (n *Node) Forward(ctx context.Context, node string, req *nats.Msg) (*nats.Msg, error) {
	req.Subject = n.subject("http", node)
	return n.nc.RequestMsgWithContext(ctx, req)
}

// MaxPayload is the largest message NATS carries.
func (n *Node) MaxPayload() int { return int(n.nc.MaxPayload()) }

// PublishEvent sends a WebSocket event to the other nodes.
func (n *Node) PublishEvent(data []byte) {
	m := &nats.Msg{Subject: n.subject("events"), Header: nats.Header{hdrOrigin: []string{n.cfg.NodeID}}, Data: data}
	if err := n.nc.PublishMsg(m); err != nil {
		n.log.Debug("could not publish a WebSocket event to the cluster", "error", err)
	}
}

// AgentsChanged tells every node that the stored agents changed.
func (n *Node) AgentsChanged() {
	m := &nats.Msg{Subject: n.subject("agents"), Header: nats.Header{hdrOrigin: []string{n.cfg.NodeID}}}
	if err := n.nc.PublishMsg(m); err != nil {
		n.log.Warn("could not tell the cluster that the agents changed; the other nodes see it at their next resync", "error", err)
	}
}

// Destroy deletes the cluster's stream and buckets: for tests, which make
// a cluster each.
func (n *Node) Destroy(ctx context.Context) error {
	return errors.Join(n.js.DeleteStream(ctx, n.cfg.Name+"_messages"),
		n.js.DeleteKeyValue(ctx, n.cfg.Name+"_nodes"), n.js.DeleteKeyValue(ctx, n.cfg.Name+"_leases"))
}
