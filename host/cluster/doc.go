// Package cluster makes agenthost daemons one cluster over NATS JetStream
// and a shared PostgreSQL: every node knows every agent (they live in the
// database), each agent runs on exactly one node at a time, and any node
// answers for any agent. The daemon calls it through Node and answers its
// calls through Host; a daemon without AGENTHOST_NATS_URL never builds one.
//
// # Names
//
// AGENTHOST_CLUSTER (default "agenthost") prefixes everything: subjects
// NAME.http.NODE (forwarded API requests), NAME.msg.AGENT (the message
// stream's subjects), NAME.reply.NODE.* (answers to a waiting node),
// NAME.events (WebSocket room events), NAME.agents (agent changes) and
// NAME.nudge (placement hints); the stream NAME_messages; the key-value
// buckets NAME_nodes and NAME_leases. Several clusters share one NATS.
//
// # Membership
//
// Each node puts its record (id, HTTP address, agents held) in NAME_nodes
// every half second and watches the bucket. A node is live while its
// record keeps changing: one not heard from for NodeTimeout is taken for
// dead, one that stops gracefully deletes its record at once.
//
// # Leases
//
// An agent runs on the node that holds its key in NAME_leases. The key is
// created with a revision check (KV Create: it succeeds only if no live
// lease exists) and renewed by its holder with a revision-checked Update,
// every LeaseTTL/6. The lease's expiry is the bucket's MaxAge (LeaseTTL):
// the server drops a key not renewed for LeaseTTL, and only then can
// another node create it. NATS 2.9 has no per-key TTL; the alternative, an
// expiry time written in the value and compared on takeover, would compare
// the clocks of two machines, where MaxAge is measured by the one server.
//
// # Fencing
//
// The holder counts from the moment it sent its last successful renewal:
// the server stored that renewal no earlier, so the lease cannot expire
// before that moment plus LeaseTTL. A node whose renewals fail for
// FenceAfter (two thirds of LeaseTTL) stops the agent, its connectors
// included, and forgets the lease, leaving a third of LeaseTTL for the
// stop to finish before another node may take the agent. Timers are this
// node's monotonic clock; the only assumption is that two machines' clocks
// run at about the same rate over a few seconds, not that they agree. The
// limit: a plugin that ignores the stop (Unconfigure) for longer than that
// third keeps doing whatever it does, as it would on a single node.
//
// # Placement
//
// Each node computes the same owner for each enabled agent by rendezvous
// hashing over the live nodes, and only the owner creates the lease. A
// node that holds an agent whose owner is another live node (a node that
// joined) hands it over: it stops consuming its messages, lets the ones in
// hand finish (bounded), stops the agent and deletes the lease with a
// revision check; the owner takes it at once. A node that stops does the
// same for all its agents before it exits. A dead node's agents wait for
// their leases to expire (LeaseTTL) and start on their new owners. An
// agent that fails to start keeps its lease (it is not tried on every node
// in turn): its node lists it failed in its heartbeat and answers its
// messages that it failed, until a start or a change of the agent tries
// it again.
//
// # Messages
//
// Every message (API, WebSocket, connector) is published to the stream
// NAME_messages on the subject of its agent, with its message id as
// Nats-Msg-Id (the stream drops a second copy within its dedup window),
// before it is acknowledged. The agent's holder consumes it with the
// agent's durable consumer, keeps it in progress while the agent works,
// answers the node that waits (if any) and only then acknowledges it to
// NATS. A holder that dies mid-message leaves it unacknowledged; the next
// holder makes the agent's consumer anew when it takes the lease, so that
// such messages come at once rather than after AckWait. The database's
// message ids make the second handling answer with the replies already
// stored instead of answering again, and a message stored but neither
// answered nor ignored is answered then, once (the lease says no other
// node has it in hand). An answer is a plain NATS message: a node that
// reconnected while it waited sends the message again, to the same end.
//
// # Forwarding
//
// Other API requests for an agent held elsewhere travel as NATS requests
// to the holder's NAME.http.NODE subject and are served by its handler
// without a second authentication (the first node checked it: whoever can
// publish on the cluster's subjects is trusted, so protect NATS with its
// own credentials in the URL). While an agent has no holder (it is
// moving) a request waits for one, MoveWait at most, then the daemon
// answers 503 with Retry-After.
package cluster
