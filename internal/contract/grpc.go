package contract

import (
	"runtime"

	"google.golang.org/grpc"
)

// StreamWorkers is how many goroutines of a gRPC server, the host's or a
// plugin's, take calls in turn (grpc.NumStreamWorkers). Without them every
// call starts a goroutine whose stack then grows through the handler's
// deep frames, a few percent of a plugin's time; a call that finds them
// all busy still gets a goroutine of its own.
func StreamWorkers() uint32 { return uint32(max(16, 4*runtime.GOMAXPROCS(0))) }

// flowWindow is the HTTP/2 flow-control window of every connection between
// the host and its plugins. A window set explicitly turns off gRPC's
// bandwidth-delay probing, which on a connection carrying one call at a
// time sends a PING, and waits for its answer, after nearly every reply:
// two more writes and two more wake-ups per call, to measure a local
// socket.
const flowWindow = 1 << 20

// ServerWindow and DialWindow set the window on a server and a client.
func ServerWindow() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InitialWindowSize(flowWindow), grpc.InitialConnWindowSize(flowWindow)}
}

func DialWindow() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(flowWindow), grpc.WithInitialConnWindowSize(flowWindow)}
}
