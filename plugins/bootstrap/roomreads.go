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
	v, err := cached(roomReadKey("people", a, roomID), func() (any, error) { return b.roomEntities(ctx, a, roomID) })
	ents, _ := v.([]sdk.Entity)
	return ents, err
}

// cachedKnownFacts is the room's latest facts, reused.
func cachedKnownFacts(ctx context.Context, a *sdk.Agent, roomID string) ([]sdk.Memory, error) {
	v, err := cached(roomReadKey("facts", a, roomID), func() (any, error) {
		return storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableFacts, RoomID: roomID, Count: knownFactsCount, OmitEmbeddings: true})
	})
	ms, _ := v.([]sdk.Memory)
	return ms, err
}

// forgetKnownFacts drops the room's facts once this plugin stored one.
func forgetKnownFacts(a *sdk.Agent, roomID string) { forget(roomReadKey("facts", a, roomID)) }

// cachedRelationships is the entity's relationships, reused.
func (b *bootstrap) cachedRelationships(ctx context.Context, a *sdk.Agent, entityID string) ([]Relationship, error) {
	v, err := cached(roomReadKey("rels", a, entityID), func() (any, error) { return b.store.Relationships(ctx, a, entityID) })
	rs, _ := v.([]Relationship)
	return rs, err
}
