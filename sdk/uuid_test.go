package sdk

import (
	"strings"
	"testing"
)

// The vectors below were produced by the real elizaOS code: @elizaos/core
// 1.7.2 (the newest 1.x release), calling its exported stringToUuid and
// createUniqueUuid from a small Node 20 script. Nothing here was computed by
// the Go code under test.

// elizaLong is the long input: the pangram repeated 40 times (1800 bytes).
var elizaLong = strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)

// elizaAgent is stringToUuid("Eliza") in @elizaos/core 1.7.2.
const elizaAgent = "b850bc30-45f8-0041-a00a-83df46d8555d"

var stringToUUIDVectors = []struct{ in, want string }{
	{"Eliza", "b850bc30-45f8-0041-a00a-83df46d8555d"},
	{"eliza", "f43a79df-d424-05a8-a56f-99967c2caaf6"},
	{"", "da39a3ee-5e6b-0b0d-b255-bfef95601890"},
	{"hello world", "f0355dd5-2823-054c-ae66-a0b12842c215"},
	{"a/b?c=d&e", "9db0c9df-05ab-008b-b2a8-5938c339125a"},
	{"émoji 🎉 café", "beab067a-d8ba-045f-a1e7-3e356f538b3d"},
	{"Ünïcödé", "29ee457a-398a-0863-9774-91498cb91812"},
	{"日本語", "783fc0ab-b904-0759-a125-627bcd50aed7"},
	{"!~*'()-_.", "870143c7-0226-0746-9693-eaa516cb5247"},
	{"user-123:456", "bda28f02-712d-088d-9448-9e38163d63a2"},
	// Already a UUID: returned as it is, upper case included.
	{"b850bc30-45f8-0041-a00a-83df46d8555d", "b850bc30-45f8-0041-a00a-83df46d8555d"},
	{"B850BC30-45F8-0041-A00A-83DF46D8555D", "B850BC30-45F8-0041-A00A-83DF46D8555D"},
	// Near misses of a UUID are hashed.
	{"not-a-uuid-but-36-characters-long!!", "c40204b9-71f5-0f72-88f4-5bac795005dd"},
	{"b850bc30-45f8-0041-a00a-83df46d8555d ", "95ecf2d3-d737-06a0-8e53-140dfa97a076"},
	{"{b850bc30-45f8-0041-a00a-83df46d8555d}", "81fb2c41-2062-072e-95da-28b03a334937"},
	{"b850bc3045f80041a00a83df46d8555d", "3b4a140c-d90b-0ef7-857e-3b83c27334d7"},
	{"tab\there", "3fb5fef6-bc82-0645-b9d2-6919ad72d046"},
	{"line\nbreak", "3e2b1928-a64b-08f6-9aae-1e42948a364b"},
	{"100%", "c35a02a1-4edf-05e2-a3a6-7491f7e5fda6"},
	{"a+b=c", "222dce1a-0b89-0090-b525-4bfbc653e48e"},
	{"#hash", "f19d4925-f531-0b4b-9217-0f2109b4f7fa"},
	{"~user", "5c268317-c82b-00d7-8a7c-4a7aaf77ae84"},
	{"123456789", "f7c3bc1d-808e-0473-aadf-679965ccc34c"}, // also stringToUuid(123456789)
	{"1.5", "aa8f289e-be6d-0db1-b4a1-038b8931ec8c"},       // stringToUuid(1.5)
	{"\x00", "70f640c4-bd53-00fc-8241-05a39bff2de8"},
	{"\x7f", "1d07cdc4-3863-0757-8d1e-0f220df487dc"},
	{"\u00a0", "766b828d-63c1-0844-a75a-5c18100dc765"},
	{"\U0010ffff", "bb451cf9-5219-0df1-bf25-587f1e5a895a"},
	{"\ufffd", "90124fa6-8904-08f5-8193-aece3cb4fd2d"},
	{"Ⅻ", "703facf4-e82d-0059-9e7a-f0e668363e29"},
	{"[x]", "c9949e6e-30c0-0aa5-952c-3ceb9a2c4bff"},
	{"@everyone", "681edd27-e61a-06fe-9370-2765b0359a4e"},
	{"`q`", "4217d678-eb08-0862-a7c1-e549c790c807"},
	{"$dollar", "d55b0cc7-be91-0c5b-9a31-7c4bf992f1e2"},
	{"a,b;c", "18273c26-6b6d-0003-9558-1a1837aa6826"},
	{elizaLong, "1cd86568-2a2d-018c-b597-7ab96bc24b60"},
}

var createUniqueUUIDVectors = []struct{ agent, base, want string }{
	{elizaAgent, "Eliza", "b28cdf86-a523-085a-9f13-12ed6b0a083a"},
	{elizaAgent, elizaAgent, elizaAgent}, // base is the agent: unchanged
	{elizaAgent, "123456789", "f69b3d69-5a9c-044a-845f-111e7e6306ee"},
	{elizaAgent, "987654321098765432", "eebe9cac-2d38-0aa5-b0c5-0b27dd97e45a"},
	{elizaAgent, "-1001234567890", "748989b6-305b-04ae-80b5-a70d3851cafa"},
	{elizaAgent, "general", "3d4dc0ca-9441-0da4-9811-1d81e18afa8a"},
	{elizaAgent, "default", "d84c1e4b-1112-0425-80bf-7b0f94ff0c18"},
	{elizaAgent, "00000000-0000-0000-0000-000000000000", "740de269-82a9-0d4f-9889-c87fb8884f7f"},
	{elizaAgent, "", "af8538cd-76ed-0482-a76f-612fd3bfe66a"},
	// The comparison is exact: an upper-case agent id is another string.
	{strings.ToUpper(elizaAgent), elizaAgent, "dab7a266-d2ab-0a7b-a8a0-1e81e74605de"},
	{strings.ToUpper(elizaAgent), strings.ToUpper(elizaAgent), strings.ToUpper(elizaAgent)},
	// Agent "Spartan" (stringToUuid("Spartan") = 479233fd-b0e7-0f50-9d88-d4c9ea5b0de0).
	{"479233fd-b0e7-0f50-9d88-d4c9ea5b0de0", "123456789", "40537e52-c672-09bb-9991-24671d25322d"},
}

func TestStringToUUIDElizaVectors(t *testing.T) {
	for _, v := range stringToUUIDVectors {
		if got := StringToUUID(v.in); got != v.want {
			t.Errorf("StringToUUID(%+q) = %s, want %s", uuidAbbrev(v.in), got, v.want)
		}
	}
	if got := StringToUUID("Spartan"); got != "479233fd-b0e7-0f50-9d88-d4c9ea5b0de0" {
		t.Errorf(`StringToUUID("Spartan") = %s`, got)
	}
}

func TestCreateUniqueUUIDElizaVectors(t *testing.T) {
	for _, v := range createUniqueUUIDVectors {
		if got := CreateUniqueUUID(v.agent, v.base); got != v.want {
			t.Errorf("CreateUniqueUUID(%s, %+q) = %s, want %s", v.agent, v.base, got, v.want)
		}
	}
}

func TestStringToUUIDInvalidUTF8(t *testing.T) {
	// Each invalid byte stands for one U+FFFD.
	want := StringToUUID("\ufffd")
	for _, in := range []string{"\xff", "\x80", "\xc3"} {
		if got := StringToUUID(in); got != want {
			t.Errorf("StringToUUID(%q) = %s, want %s (as U+FFFD)", in, got, want)
		}
	}
	if got, want := StringToUUID("a\xe6\x97b"), StringToUUID("a\ufffd\ufffdb"); got != want {
		t.Errorf("truncated sequence: got %s, want %s", got, want)
	}
	if got, want := StringToUUID("\xed\xa0\x80"), StringToUUID("\ufffd\ufffd\ufffd"); got != want {
		t.Errorf("encoded surrogate: got %s, want %s", got, want)
	}
}

func TestIsUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"b850bc30-45f8-0041-a00a-83df46d8555d":   true,
		"B850BC30-45F8-0041-A00A-83DF46D8555D":   true,
		"00000000-0000-0000-0000-000000000000":   true,
		"b850bc30-45f8-0041-a00a-83df46d8555":    false,
		"b850bc30-45f8-0041-a00a-83df46d8555d0":  false,
		"b850bc30x45f8-0041-a00a-83df46d8555d":   false,
		"g850bc30-45f8-0041-a00a-83df46d8555d":   false,
		"b850bc3045f80041a00a83df46d8555d":       false,
		"{b850bc30-45f8-0041-a00a-83df46d8555d}": false,
		"b850bc30-45f8-0041-a00a-83df46d8555d\n": false,
		"":                                       false,
	} {
		if got := IsUUID(s); got != want {
			t.Errorf("IsUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzStringToUUID(f *testing.F) {
	for _, v := range stringToUUIDVectors {
		f.Add(v.in)
	}
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		got := StringToUUID(s)
		if !IsUUID(got) {
			t.Fatalf("StringToUUID(%q) = %q: not a UUID", s, got)
		}
		if IsUUID(s) {
			if got != s {
				t.Fatalf("StringToUUID(%q) = %q: a UUID must come back unchanged", s, got)
			}
			return
		}
		if got != strings.ToLower(got) {
			t.Fatalf("StringToUUID(%q) = %q: not lower case", s, got)
		}
		if got[14] != '0' {
			t.Fatalf("StringToUUID(%q) = %q: version digit %c, want 0", s, got, got[14])
		}
		if !strings.ContainsRune("89ab", rune(got[19])) {
			t.Fatalf("StringToUUID(%q) = %q: variant digit %c, want one of 8 9 a b", s, got, got[19])
		}
		if again := StringToUUID(s); again != got {
			t.Fatalf("StringToUUID(%q) not deterministic: %q then %q", s, got, again)
		}
		if StringToUUID(got) != got {
			t.Fatalf("StringToUUID of its own output %q changed it", got)
		}
	})
}

func uuidAbbrev(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
