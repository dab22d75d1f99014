package bootstrap

import (
	"context"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// An evaluation reads who is in the room, what is known about it and the
// sender's relationships: three crossings to the host and on to the
// database, one after another, for things that change only when someone
// joins, a fact is learned or a relationship noted. They are reused like
// the room's other reads (roomReadKey): this plugin's own writes drop
// them at once, another plugin's show within lookupTTL. What they return
// is shared: callers read it and never change it.

// knownFactsCount is how many of the room's facts reflection reads, to
// tell the model what it knows already.
const knownFactsCount = 30

// cachedRoomEntities is roomEntities, reused.
func (b *bootstrap) cachedRoomEntities(ctx context.Context, a *sdk.Agent, roomID string) ([]sdk.Entity, error) {
	return cachedAs(roomReadKey("people", a, roomID), func() ([]sdk.Entity, error) { return b.roomEntities(ctx, a, roomID) })
}

// cachedKnownFacts is the room's latest facts, reused.
func cachedKnownFacts(ctx context.Context, a *sdk.Agent, roomID string) ([]sdk.Memory, error) {
	return cachedAs(roomReadKey("facts", a, roomID), func() ([]sdk.Memory, error) {
		return storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableFacts, RoomID: roomID, Count: knownFactsCount, OmitEmbeddings: true})
	})
}

// forgetKnownFacts drops the room's facts once this plugin stored one.
func forgetKnownFacts(a *sdk.Agent, roomID string) { forget(roomReadKey("facts", a, roomID)) }

// cachedRelationships is the entity's relationships, reused.
func (b *bootstrap) cachedRelationships(ctx context.Context, a *sdk.Agent, entityID string) ([]Relationship, error) {
	return cachedAs(roomReadKey("rels", a, entityID), func() ([]Relationship, error) { return b.store.Relationships(ctx, a, entityID) })
}
