package contract

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"sync"
	"time"
	"unicode/utf8"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// NewID is a new random id that sorts by the time it was made (a version 7
// UUID, RFC 9562): rows stored one after another with such ids land side
// by side in a database's index of ids, where random ones (version 4) each
// dirty a page of their own, a page written again for every row. Ids made
// in one millisecond count up in the 12 bits after the time, so each sorts
// after the one made before it in this process.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail (it crashes the program first)
	ms, seq := v7clock.next(time.Now().UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6], b[7] = 0x70|byte(seq>>8), byte(seq)
	b[8] = b[8]&0x3f | 0x80
	return uuidFormat(b[:])
}

// idClock hands NewID a time and a count that never go back.
type idClock struct {
	sync.Mutex
	ms  int64
	seq uint16
}

var v7clock idClock

func (c *idClock) next(now int64) (int64, uint16) {
	c.Lock()
	defer c.Unlock()
	if now > c.ms {
		c.ms, c.seq = now, 0
	} else if c.seq++; c.seq > 0xfff {
		// 4096 ids in one millisecond: borrow the next one.
		c.ms, c.seq = c.ms+1, 0
	}
	return c.ms, c.seq
}

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
func StringToUUID(s string) string {
	if IsUUID(s) {
		return s
	}
	sum := sha1.Sum([]byte(jsEncodeURIComponent(s)))
	b := sum[:16]
	b[6] &= 0x0f
	b[8] = b[8]&0x3f | 0x80
	return uuidFormat(b)
}

// CreateUniqueUUID scopes a platform id (a user, channel, server or message
// id) to one agent, like elizaOS's createUniqueUuid: base itself when it is
// the agent's id, else StringToUUID(base + ":" + agentID). Two agents in one
// database therefore never share ids for the same platform object.
func CreateUniqueUUID(agentID, base string) string {
	if base == agentID {
		return agentID
	}
	return StringToUUID(base + ":" + agentID)
}

// IsUUID reports whether s is a UUID as elizaOS validates one: 36
// characters, hex digits of either case in groups of 8-4-4-4-12 separated by
// hyphens. Version and variant digits are not checked.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !uuidHexDigit(c) {
				return false
			}
		}
	}
	return true
}

func uuidHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// uuidFormat prints 16 bytes as 8-4-4-4-12 lowercase hex.
func uuidFormat(b []byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// jsEncodeURIComponent escapes s like JavaScript's function of that name:
// A-Z a-z 0-9 and - _ . ! ~ * ' ( ) are kept, every other character is
// written as the %XX escapes (uppercase hex) of its UTF-8 bytes. Invalid
// UTF-8 bytes are escaped as U+FFFD, one per byte (see StringToUUID).
func jsEncodeURIComponent(s string) string {
	const upperHex = "0123456789ABCDEF"
	out := make([]byte, 0, len(s)*3)
	var buf [utf8.UTFMax]byte
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if uriUnreserved(c) {
				out = append(out, c)
			} else {
				out = append(out, '%', upperHex[c>>4], upperHex[c&0x0f])
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size // size is 1 for an invalid byte, and r is then U+FFFD
		n := utf8.EncodeRune(buf[:], r)
		for _, b := range buf[:n] {
			out = append(out, '%', upperHex[b>>4], upperHex[b&0x0f])
		}
	}
	return string(out)
}

// uriUnreserved reports whether encodeURIComponent leaves the ASCII byte c
// as it is.
func uriUnreserved(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '!', '~', '*', '\'', '(', ')':
		return true
	}
	return false
}

// Incoming are the agent's ids of an incoming message, made from the
// platform's ids with CreateUniqueUUID, so that the same user in the same
// chat is the same entity and room across restarts and connectors.
type Incoming struct {
	// Entity is the author: the platform's user id, else its user name.
	Entity string
	// Room is the thread, else the channel, else (a direct message with no
	// channel) the author.
	Room string
	// World is the server, else the source itself.
	World string
	// Message is the platform's message id made the agent's, or "" when the
	// platform gave none (the caller then makes a fresh id).
	Message string
	// InReplyTo is the platform's id of the message answered, made the
	// agent's, or "".
	InReplyTo string
}

// IncomingIDs maps the platform's ids of req to the agent's.
func IncomingIDs(agentID string, req *pb.ReceiveMessageRequest) Incoming {
	user := req.GetUserId()
	if user == "" {
		user = req.GetUserName()
	}
	room := req.GetChannelId()
	if req.GetThreadId() != "" {
		room = req.GetThreadId()
	}
	if room == "" {
		room = user
	}
	server := req.GetServerId()
	if server == "" {
		server = req.GetSource()
	}
	in := Incoming{Entity: CreateUniqueUUID(agentID, user), Room: CreateUniqueUUID(agentID, room),
		World: CreateUniqueUUID(agentID, server)}
	if req.GetMessageId() != "" {
		in.Message = CreateUniqueUUID(agentID, req.GetMessageId())
	}
	if req.GetInReplyTo() != "" {
		in.InReplyTo = CreateUniqueUUID(agentID, req.GetInReplyTo())
	}
	return in
}
