package sdk

import (
	"slices"
	"testing"

	"github.com/agenthost/agenthost/sdk/internal/charjson"
)

// The character validator sits below this package and lists the channel
// types by value: they must be ChannelType's.
func TestCharacterChannelTypesAgree(t *testing.T) {
	want := []string{string(ChannelSelf), string(ChannelDM), string(ChannelGroup), string(ChannelVoiceDM),
		string(ChannelVoiceGroup), string(ChannelFeed), string(ChannelThread), string(ChannelWorld),
		string(ChannelForum), string(ChannelAPI)}
	if !slices.Equal(charjson.ChannelTypes, want) {
		t.Errorf("charjson.ChannelTypes = %q, want sdk's %q", charjson.ChannelTypes, want)
	}
}
