package sdk

import "github.com/agenthost/agenthost/internal/contract"

// StringToUUID derives a deterministic id from s exactly as elizaOS's
// stringToUuid does, so that ids made here match rows written by elizaOS:
//
//   - s that already is a UUID (see IsUUID; any letter case) is returned
//     unchanged, case included;
//   - otherwise s is escaped like JavaScript's encodeURIComponent, hashed
//     with SHA-1, and the first 16 bytes of the digest are printed as
//     8-4-4-4-12 lowercase hex after clearing the high nibble of byte 6
//     (so the version digit is always 0) and setting the RFC 4122 variant
//     bits of byte 8.
//
// JavaScript strings cannot hold invalid UTF-8, so that case is ours to
// define: each byte of s that is not part of a valid UTF-8 sequence is
// treated as U+FFFD, the replacement character (escaped "%EF%BF%BD"). A
// truncated multi-byte sequence thus becomes one U+FFFD per byte, and
// StringToUUID("\xff") == StringToUUID("\uFFFD").
func StringToUUID(s string) string { return contract.StringToUUID(s) }

// CreateUniqueUUID scopes a platform id (a user, channel, server or message
// id) to one agent, like elizaOS's createUniqueUuid: base itself when it is
// the agent's id, else StringToUUID(base + ":" + agentID). Two agents in one
// database therefore never share ids for the same platform object.
func CreateUniqueUUID(agentID, base string) string { return contract.CreateUniqueUUID(agentID, base) }

// IsUUID reports whether s is a UUID as elizaOS validates one: 36
// characters, hex digits of either case in groups of 8-4-4-4-12 separated by
// hyphens. Version and variant digits are not checked.
func IsUUID(s string) bool { return contract.IsUUID(s) }

// NewID is a new id for a memory, task or other stored row: random, and
// ordered by the time it was made (a version 7 UUID), so that rows stored
// one after another land side by side in the database's index of ids.
func NewID() string { return contract.NewID() }
