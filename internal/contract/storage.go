package contract

import (
	"context"
	"fmt"
	"sort"
	"sync"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // the "proto" codec Codec falls back on
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// StorageMethod is one method of the Database service as plugins may reach
// it, read from database.proto and its (storage) options: a new method
// needs nothing here.
type StorageMethod struct {
	// Name is the method's name, e.g. GetMemories; FullName its gRPC name,
	// /agenthost.plugin.v1.Database/GetMemories.
	Name, FullName string
	// Plugins: plugins may call it (StorageAccess.plugins); else it is the
	// host's alone.
	Plugins bool
	// DeletesConnections: it deletes worlds, rooms, entities or
	// participations (StorageAccess.deletes_connections).
	DeletesConnections bool

	input protoreflect.MessageType
}

// storageMethods is read from database.proto at its first use, by the
// daemon: it fully decodes the file's descriptors (a quarter of a MiB of
// heap), which the plugin processes, running the same executable, never
// need.
var storageMethods = sync.OnceValues(loadStorageMethods)

func loadStorageMethods() ([]*StorageMethod, map[string]*StorageMethod) {
	sd := pb.File_agenthost_plugin_v1_database_proto.Services().ByName("Database")
	var list []*StorageMethod
	byName := map[string]*StorageMethod{}
	for i := 0; i < sd.Methods().Len(); i++ {
		md := sd.Methods().Get(i)
		if md.IsStreamingClient() || md.IsStreamingServer() {
			// Plugins reach unary storage calls only; a stream would need a
			// forwarder of its own.
			continue
		}
		in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
		if err != nil {
			panic(fmt.Sprintf("contract: the request of Database.%s is not registered: %v", md.Name(), err))
		}
		access, _ := proto.GetExtension(md.Options(), pb.E_Storage).(*pb.StorageAccess)
		// A request that cannot name an agent is never a plugin's to make,
		// whatever its option says (a test says so to whoever wrote it).
		m := &StorageMethod{Name: string(md.Name()), FullName: "/" + string(sd.FullName()) + "/" + string(md.Name()),
			Plugins: access.GetPlugins() && namesAgent(md.Input()), DeletesConnections: access.GetDeletesConnections(), input: in}
		list = append(list, m)
		byName[m.Name] = m
	}
	return list, byName
}

// StorageMethods lists the Database service's unary methods in the order
// database.proto declares them.
func StorageMethods() []*StorageMethod { list, _ := storageMethods(); return list }

// LookupStorageMethod finds a Database method by name (GetMemories).
func LookupStorageMethod(name string) *StorageMethod {
	_, byName := storageMethods()
	return byName[name]
}

// NewRequest is an empty request of the method.
func (m *StorageMethod) NewRequest() proto.Message { return m.input.New().Interface() }

// Agents returns the agents a request of a plugin names, and makes the
// messages it carries the first one's: a request names its agent in
// agent_id, and the host sets the agent_id of every message the request
// carries (a memory, an entity, a room...) to it. A request without an
// agent_id of its own (AddLog, AddLogs) names the agents of the entries it
// carries, each of which must name one. A request that names no agent is
// refused.
func (m *StorageMethod) Agents(req proto.Message) ([]string, error) {
	msg := req.ProtoReflect()
	if fd := agentField(msg.Descriptor()); fd != nil {
		id := msg.Get(fd).String()
		if id == "" {
			return nil, fmt.Errorf("%s: agent_id is empty: %w", m.Name, ErrInvalid)
		}
		eachCarried(msg, func(_ protoreflect.FieldDescriptor, carried protoreflect.Message) {
			if afd := agentField(carried.Descriptor()); afd != nil {
				carried.Set(afd, protoreflect.ValueOfString(id))
			}
		})
		return []string{id}, nil
	}
	var ids []string
	seen := map[string]bool{}
	var err error
	eachCarried(msg, func(fd protoreflect.FieldDescriptor, carried protoreflect.Message) {
		afd := agentField(carried.Descriptor())
		if afd == nil || err != nil {
			return
		}
		id := carried.Get(afd).String()
		if id == "" {
			err = fmt.Errorf("%s: %s.agent_id is empty: %w", m.Name, fd.Name(), ErrInvalid)
			return
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	})
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: the request names no agent: %w", m.Name, ErrInvalid)
	}
	return ids, nil
}

// PluginAgents is what a plugin's call of the method may do, as a status:
// PERMISSION_DENIED for the host's own methods, INVALID_ARGUMENT for a
// request that names no agent; else the agents it names (see Agents). The
// caller still checks that each uses the calling plugin. Fields of the
// request this protocol does not know are dropped: what goes on to the
// database plugin is what was checked.
func (m *StorageMethod) PluginAgents(req proto.Message) ([]string, error) {
	if !m.Plugins {
		return nil, status.Errorf(codes.PermissionDenied, "Database.%s is the host's own: plugins may not call it", m.Name)
	}
	discardUnknown(req.ProtoReflect())
	ids, err := m.Agents(req)
	return ids, Status(err)
}

// discardUnknown drops the fields m and the messages in it do not know.
func discardUnknown(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
					discardUnknown(v.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := 0; i < v.List().Len(); i++ {
					discardUnknown(v.List().Get(i).Message())
				}
			}
		case fd.Message() != nil:
			discardUnknown(v.Message())
		}
		return true
	})
	if len(m.GetUnknown()) > 0 {
		m.SetUnknown(nil)
	}
}

// agentField is a message's string field agent_id, or nil.
func agentField(md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	fd := md.Fields().ByName("agent_id")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return nil
	}
	return fd
}

// eachCarried calls f with every message msg carries directly: each set
// singular message field and each element of a repeated one.
func eachCarried(msg protoreflect.Message, f func(protoreflect.FieldDescriptor, protoreflect.Message)) {
	fields := msg.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Message() == nil || fd.IsMap() || !msg.Has(fd) {
			continue
		}
		if fd.IsList() {
			l := msg.Mutable(fd).List()
			for j := 0; j < l.Len(); j++ {
				f(fd, l.Get(j).Message())
			}
			continue
		}
		f(fd, msg.Mutable(fd).Message())
	}
}

// namesAgent reports whether a request type can name an agent by the rule
// of Agents; plugins may reach only methods whose requests do.
func namesAgent(md protoreflect.MessageDescriptor) bool {
	if agentField(md) != nil {
		return true
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if m := fields.Get(i).Message(); m != nil && !fields.Get(i).IsMap() && agentField(m) != nil {
			return true
		}
	}
	return false
}

// StorageHandler answers a Database call that reached a Runtime
// connection, with a proto.Message or a *Frame.
type StorageHandler func(ctx context.Context, m *StorageMethod, req proto.Message) (any, error)

// StorageService is the Database service as served on a Runtime
// connection: every unary method of database.proto, each decoded into its
// request type and handed to h through the server's interceptors (which
// authenticate the caller). Serve it with Codec (grpc.ForceServerCodecV2),
// so that h may answer with the database plugin's bytes as they came.
func StorageService(h StorageHandler) *grpc.ServiceDesc {
	sd := &grpc.ServiceDesc{ServiceName: pb.Database_ServiceDesc.ServiceName, HandlerType: (*any)(nil),
		Metadata: pb.Database_ServiceDesc.Metadata}
	for _, m := range StorageMethods() {
		sd.Methods = append(sd.Methods, grpc.MethodDesc{MethodName: m.Name,
			Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				req := m.NewRequest()
				if err := dec(req); err != nil {
					return nil, err
				}
				call := func(ctx context.Context, req any) (any, error) { return h(ctx, m, req.(proto.Message)) }
				if icpt == nil {
					return call(ctx, req)
				}
				return icpt(ctx, req, &grpc.UnaryServerInfo{FullMethod: m.FullName}, call)
			}})
	}
	return sd
}

// Forward calls the method on conn (the database plugin) with req and
// returns its answer as the bytes that came, undecoded.
func (m *StorageMethod) Forward(ctx context.Context, conn grpc.ClientConnInterface, req proto.Message) (*Frame, error) {
	out := &Frame{}
	if err := conn.Invoke(ctx, m.FullName, req, out, grpc.ForceCodecV2(Codec{})); err != nil {
		return nil, err
	}
	return out, nil
}

// Frame is a message as bytes, passed through without decoding.
type Frame struct{ b []byte }

// NewFrame is a message made of b, sent as it is.
func NewFrame(b []byte) *Frame { return &Frame{b: b} }

// Codec is gRPC's proto codec that also passes a *Frame through as it is.
type Codec struct{}

var protoCodec = encoding.GetCodecV2("proto")

// Name is "proto": on the wire nothing changes.
func (Codec) Name() string { return "proto" }

// Marshal writes a *Frame's bytes, or marshals a message.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*Frame); ok {
		return mem.BufferSlice{mem.SliceBuffer(f.b)}, nil
	}
	return protoCodec.Marshal(v)
}

// Unmarshal keeps the bytes in a *Frame, or unmarshals a message.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*Frame); ok {
		f.b = data.Materialize()
		return nil
	}
	return protoCodec.Unmarshal(data, v)
}

// Features are what a host offers a plugin (InitRequest.features): the
// full gRPC name of every method it may call on its Runtime connection,
// the Runtime's and the Database methods marked for plugins, sorted.
func Features() []string {
	var out []string
	for _, m := range pb.Runtime_ServiceDesc.Methods {
		out = append(out, "/"+pb.Runtime_ServiceDesc.ServiceName+"/"+m.MethodName)
	}
	for _, s := range pb.Runtime_ServiceDesc.Streams {
		out = append(out, "/"+pb.Runtime_ServiceDesc.ServiceName+"/"+s.StreamName)
	}
	for _, m := range StorageMethods() {
		if m.Plugins {
			out = append(out, m.FullName)
		}
	}
	sort.Strings(out)
	return out
}
