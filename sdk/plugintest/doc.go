// Package plugintest runs a plugin over the real gRPC path inside a test,
// without building a binary: the plugin is served by the SDK's own gRPC
// server (the one [sdk.Serve] runs) on a unix socket, exactly as in
// production minus the process boundary, and an in-memory [Runtime] plays
// the host.
//
//	func TestGreet(t *testing.T) {
//		c := plugintest.Start(t, greet.New())
//		ctx := context.Background()
//		if _, err := c.Configure(ctx, "agent-1", &sdk.Character{Name: "Eliza"}, nil); err != nil {
//			t.Fatal(err)
//		}
//		msg := &sdk.Memory{RoomID: "room-1", Content: sdk.Content{Text: "hello"}}
//		res, err := c.RunAction(ctx, "agent-1", "GREET", msg, nil)
//		if err != nil || !res.Success || len(c.Runtime().Responses()) != 1 {
//			t.Fatalf("GREET: %+v, %v", res, err)
//		}
//	}
//
// The [Client] calls the plugin as the host would, with the SDK's plain
// types; errors the plugin returns are gRPC status errors, so a test can
// check their code with status.Code. The [Runtime] records what the plugin
// sends to the host (responses, messages, events, logs, model calls), and
// calls back into the plugins started with it for ComposeState,
// ProcessActions, Evaluate and ValidateActions with the host's own rules
// (internal/contract): providers chosen and merged, action names resolved
// (similes, unambiguous parts), results chained, as in the daemon. Storage
// goes to a database plugin started with the same Runtime (the sql plugin:
// every storage call, as in the daemon), or else to memory (memories,
// entities, rooms, worlds, participants, logs, cache; any other storage call
// fails with sdk.ErrUnimplemented). Set [Runtime.Model] to answer the
// plugin's model calls.
package plugintest
