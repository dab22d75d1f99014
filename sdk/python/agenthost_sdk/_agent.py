"""The agent a handler runs for, and its way back to the host.

Every handler gets an Agent bound to the call it serves: the Runtime calls
it makes carry the plugin's runtime token (which tells the host who calls),
end by the call's deadline, and are cancelled with the call. The host serves
storage (memories, entities, rooms, cache, logs) as the Database service on
the same connection; it checks each call and forwards it to the agent's
database plugin.
"""

import math
import threading
import time

import grpc

from . import _convert as cv
from ._errors import CancelledError, DeadlineExceededError, UnavailableError, error_from_rpc
from ._proto.agenthost.plugin.v1 import database_pb2 as db
from ._proto.agenthost.plugin.v1 import plugin_pb2 as pp
from ._proto.agenthost.plugin.v1 import runtime_pb2 as rt
from ._types import Content, ModelRequest

#: An ordinary Runtime call (storage, respond) gets this long, in seconds,
#: unless the call it serves has less.
DEFAULT_CALL_TIMEOUT = 30.0
#: A model call gets this long unless the call it serves has less.
DEFAULT_MODEL_TIMEOUT = 300.0


class CallScope:
    """The call an Agent is bound to: its run, its deadline (time.time()
    seconds, or None) and its cancellation."""

    def __init__(self, run_id="", deadline=None):
        self.run_id = run_id
        self.deadline = deadline
        self.cancelled = threading.Event()
        self.reason = None
        self._lock = threading.Lock()
        self._calls = set()

    def cancel(self, reason):
        """Cancels the call, and every Runtime call made for it, once."""
        with self._lock:
            if self.cancelled.is_set():
                return
            self.reason = reason
            self.cancelled.set()
            calls = list(self._calls)
        for c in calls:
            c.cancel()

    def _track(self, call):
        with self._lock:
            if self.cancelled.is_set():
                return False
            self._calls.add(call)
            return True

    def _untrack(self, call):
        with self._lock:
            self._calls.discard(call)


class AgentState:
    """What stays the same for an agent across calls."""

    def __init__(self, agent_id, name, character, settings, declared, link, log, undeclared):
        self.id = agent_id
        self.name = name
        self.character = character
        self.settings = settings
        self.declared = declared
        #: Set when the agent is unconfigured or the plugin stops.
        self.lifetime = CallScope()
        self.link = link
        self.log = log
        self.undeclared = undeclared


def _abort_error(scope, what):
    reason = scope.reason
    if isinstance(reason, DeadlineExceededError):
        return DeadlineExceededError(f"{what}: {reason}")
    return CancelledError(f"{what}: {reason or 'cancelled'}")


def _content(c):
    return Content(text=c) if isinstance(c, str) else c


class Agent:
    """One agent as the plugin sees it, bound to the call being served: its
    id, character and settings, and the host's Runtime for it. One plugin
    process serves every agent that uses the plugin."""

    def __init__(self, state, scope):
        self._state = state
        self._scope = scope
        #: The agent's id.
        self.id = state.id
        #: The character's name.
        self.name = state.name
        #: The character, in elizaOS's JSON shape, without its secrets.
        self.character = state.character
        #: The settings the plugin declares, as resolved for this agent.
        self.settings = state.settings
        #: The run the call belongs to ("" when it has none).
        self.run_id = scope.run_id
        #: When the call must be answered (time.time() seconds), or None.
        self.deadline = scope.deadline
        fields = {"agent_id": state.id}
        if state.name:
            fields["agent_name"] = state.name
        if scope.run_id:
            fields["run_id"] = scope.run_id
        #: The plugin's logger with agent_id, agent_name and run_id on every line.
        self.log = state.log.bind(**fields)

    @property
    def cancelled(self):
        """A threading.Event set when the host cancels the call, its deadline
        passes or the plugin stops: ``agent.cancelled.wait(5)`` sleeps five
        seconds unless the call ends first."""
        return self._scope.cancelled

    @property
    def cancel_reason(self):
        """Why the call ended early: a CancelledError or a DeadlineExceededError; None while it runs."""
        return self._scope.reason

    def time_left(self):
        """The seconds left before the call's deadline; math.inf without one."""
        if self.deadline is None:
            return math.inf
        return max(0.0, self.deadline - time.time())

    def setting(self, name):
        """A setting's value, or its declared default when the agent does
        not have it, or None. Only declared settings are ever set."""
        decl = self._state.declared.get(name)
        if decl is None and name not in self._state.undeclared:
            self._state.undeclared.add(name)
            self._state.log.warn(
                f"the plugin reads setting {name}, which its manifest does not declare: "
                "the host never sends it; add it to the plugin's settings", setting=name)
        v = self._state.settings.get(name, "")
        if v != "":
            return v
        return decl.default if decl is not None else None

    # ---- models ------------------------------------------------------------

    def use_model(self, type, **request):
        """Calls the agent's model of a type (the highest priority one,
        unless provider= names one); request holds ModelRequest's fields."""
        req = ModelRequest(type=type, **{"run_id": self.run_id, **request})
        res = self._call(f"UseModel {type}", DEFAULT_MODEL_TIMEOUT, "runtime", "UseModel",
                         cv.model_request_to_proto(self.id, req))
        return cv.model_response_from_proto(res)

    def generate_text(self, prompt, type="TEXT_LARGE", **options):
        """Asks a text model for a completion."""
        return self.use_model(type, prompt=prompt, **options).text

    def embed(self, text):
        """The TEXT_EMBEDDING vector of a text."""
        res = self.use_model("TEXT_EMBEDDING", text=text)
        if not res.embedding:
            raise UnavailableError(f"model {res.provider or 'TEXT_EMBEDDING'} returned no embedding")
        return res.embedding

    # ---- messages and events ----------------------------------------------

    def respond(self, content, run_id=None, memory_id="", last=False):
        """Sends content (a Content or a str) back to where the run's message
        came from. The host stores it among the room's messages unless
        memory_id names a memory the plugin stored. With last=True no other
        reply of the run follows: the host answers whoever waits for the
        run (an HTTP client) at once, while the handler goes on. Returns the
        platform's ids."""
        res = self._call("Respond", DEFAULT_CALL_TIMEOUT, "runtime", "Respond", rt.RespondRequest(
            agent_id=self.id, run_id=self.run_id if run_id is None else run_id,
            content=cv.content_to_proto(_content(content)), memory_id=memory_id, last=last))
        return list(res.message_ids)

    def send_message(self, target, content):
        """Sends content to a target; target.source picks the plugin that delivers it."""
        res = self._call("SendMessage", DEFAULT_CALL_TIMEOUT, "runtime", "SendMessage", pp.SendMessageRequest(
            agent_id=self.id, target=cv.target_to_proto(target), content=cv.content_to_proto(_content(content))))
        return list(res.message_ids)

    def emit_event(self, type, payload=None, message=None, source="", run_id=None):
        """Hands an event to the plugins subscribed to its type."""
        self._call(f"EmitEvent {type}", DEFAULT_CALL_TIMEOUT, "runtime", "EmitEvent", rt.EmitEventRequest(
            agent_id=self.id, type=type, source=source, message=cv.memory_to_proto(message),
            payload_json=cv.encode_json(payload), run_id=self.run_id if run_id is None else run_id))

    def get_settings(self):
        """Asks the host for the agent's settings, as Configure carried them."""
        res = self._call("GetSettings", DEFAULT_CALL_TIMEOUT, "runtime", "GetSettings",
                         rt.GetSettingsRequest(agent_id=self.id))
        return dict(res.settings)

    # ---- memories ----------------------------------------------------------

    def create_memory(self, memory, table=None, unique=False):
        """Stores a memory (in table, else memory.table, else messages) and
        returns (id, created)."""
        res = self._call("CreateMemory", DEFAULT_CALL_TIMEOUT, "database", "CreateMemory", db.CreateMemoryRequest(
            agent_id=self.id, memory=cv.memory_to_proto(memory), table=table or memory.table or "messages",
            unique=unique))
        return res.id, res.created

    def get_memories(self, table="messages", room_id="", room_ids=(), entity_id="", world_id="", count=0,
                     unique=False, start=0, end=0, omit_embeddings=False):
        """Memories, newest first."""
        res = self._call("GetMemories", DEFAULT_CALL_TIMEOUT, "database", "GetMemories", db.GetMemoriesRequest(
            agent_id=self.id, table=table, room_id=room_id, room_ids=list(room_ids), entity_id=entity_id,
            world_id=world_id, count=count, unique=unique, start=start, end=end, omit_embeddings=omit_embeddings))
        return [cv.memory_from_proto(m) for m in res.memories]

    def search_memories(self, embedding, table="messages", threshold=0.0, count=0, unique=False, room_id="",
                        world_id="", entity_id=""):
        """The memories most similar to an embedding, best first."""
        res = self._call("SearchMemories", DEFAULT_CALL_TIMEOUT, "database", "SearchMemories",
                         db.SearchMemoriesRequest(agent_id=self.id, table=table, embedding=list(embedding),
                                                  threshold=threshold, count=count, unique=unique, room_id=room_id,
                                                  world_id=world_id, entity_id=entity_id))
        return [cv.memory_from_proto(m) for m in res.memories]

    def count_memories(self, room_id, table="messages", unique=False):
        """Counts a room's memories in a table."""
        res = self._call("CountMemories", DEFAULT_CALL_TIMEOUT, "database", "CountMemories", db.CountMemoriesRequest(
            agent_id=self.id, room_id=room_id, table=table, unique=unique))
        return res.count

    def delete_memory(self, memory_id):
        """Deletes one memory."""
        self._call("DeleteMemory", DEFAULT_CALL_TIMEOUT, "database", "DeleteMemory",
                   db.DeleteMemoryRequest(agent_id=self.id, id=memory_id))

    # ---- entities and rooms ------------------------------------------------

    def get_entities(self, ids):
        """The entities with these ids that exist."""
        res = self._call("GetEntities", DEFAULT_CALL_TIMEOUT, "database", "GetEntities",
                         db.GetEntitiesRequest(agent_id=self.id, ids=list(ids)))
        return [cv.entity_from_proto(e) for e in res.entities]

    def get_entities_for_room(self, room_id):
        """The entities that take part in a room."""
        res = self._call("GetEntitiesForRoom", DEFAULT_CALL_TIMEOUT, "database", "GetEntitiesForRoom",
                         db.GetEntitiesForRoomRequest(agent_id=self.id, room_id=room_id))
        return [cv.entity_from_proto(e) for e in res.entities]

    def upsert_entities(self, entities):
        """Creates or replaces entities."""
        self._call("UpsertEntities", DEFAULT_CALL_TIMEOUT, "database", "UpsertEntities", db.UpsertEntitiesRequest(
            agent_id=self.id, entities=[cv.entity_to_proto(e) for e in entities]))

    def get_rooms(self, ids=(), participant_id="", participant_ids=(), world_id=""):
        """Rooms by ids, by participant or by world."""
        res = self._call("GetRooms", DEFAULT_CALL_TIMEOUT, "database", "GetRooms", db.GetRoomsRequest(
            agent_id=self.id, ids=list(ids), participant_id=participant_id, participant_ids=list(participant_ids),
            world_id=world_id))
        return [cv.room_from_proto(r) for r in res.rooms]

    def get_room(self, room_id):
        """One room, or None when there is none with that id."""
        rooms = self.get_rooms(ids=[room_id])
        return rooms[0] if rooms else None

    def upsert_room(self, room):
        """Creates or replaces a room."""
        self._call("UpsertRoom", DEFAULT_CALL_TIMEOUT, "database", "UpsertRoom",
                   db.UpsertRoomRequest(agent_id=self.id, room=cv.room_to_proto(room)))

    def get_participants(self, room_id):
        """The ids of the entities that take part in a room."""
        res = self._call("GetParticipants", DEFAULT_CALL_TIMEOUT, "database", "GetParticipants",
                         db.GetParticipantsRequest(agent_id=self.id, room_id=room_id))
        return list(res.entity_ids)

    # ---- cache and timeline ------------------------------------------------

    def get_cache(self, key):
        """The agent's cached value of a key (a str), or None."""
        res = self._call("GetCache", DEFAULT_CALL_TIMEOUT, "database", "GetCache",
                         db.GetCacheRequest(agent_id=self.id, key=key))
        return res.value.decode("utf-8", "replace") if res.found else None

    def set_cache(self, key, value, ttl_ms=0):
        """Caches a str for the agent; ttl_ms makes it expire."""
        self._call("SetCache", DEFAULT_CALL_TIMEOUT, "database", "SetCache", db.SetCacheRequest(
            agent_id=self.id, key=key, value=str(value).encode(), ttl_ms=ttl_ms))

    def delete_cache(self, key):
        """Forgets a cached key."""
        self._call("DeleteCache", DEFAULT_CALL_TIMEOUT, "database", "DeleteCache",
                   db.DeleteCacheRequest(agent_id=self.id, key=key))

    def add_log(self, entry):
        """Adds a LogEntry to the agent's timeline (GET /api/agents/{id}/logs)."""
        self._call("AddLog", DEFAULT_CALL_TIMEOUT, "database", "AddLog",
                   db.AddLogRequest(log=cv.log_to_proto(self.id, entry)))

    def get_logs(self, room_id="", type="", entity_id="", count=0, offset=0):
        """The agent's timeline entries, newest first."""
        res = self._call("GetLogs", DEFAULT_CALL_TIMEOUT, "database", "GetLogs", db.GetLogsRequest(
            agent_id=self.id, room_id=room_id, type=type, entity_id=entity_id, count=count, offset=offset))
        return [cv.log_from_proto(e) for e in res.logs]

    # ---- plumbing ------------------------------------------------------------

    def _call(self, what, timeout, service, method, request):
        """One unary call on the Runtime connection, ended by the served
        call's deadline (or timeout, whichever comes first) and cancelled
        with it."""
        label = f"runtime {what}"
        link = self._state.link()
        if link is None:
            raise UnavailableError(f"{label}: the plugin has no Runtime connection yet (the host has not called Init)")
        scope = self._scope
        if scope.cancelled.is_set():
            raise _abort_error(scope, label)
        if scope.deadline is not None:
            timeout = min(timeout, scope.deadline - time.time())
            if timeout <= 0:
                raise DeadlineExceededError(f"{label}: the call's deadline passed")
        stub = link.runtime if service == "runtime" else link.database
        call = getattr(stub, method).future(request, timeout=timeout, metadata=link.metadata)
        if not scope._track(call):
            call.cancel()
            raise _abort_error(scope, label)
        try:
            return call.result()
        except grpc.FutureCancelledError:
            raise _abort_error(scope, label) from None
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED and scope.cancelled.is_set():
                raise _abort_error(scope, label) from None
            raise error_from_rpc(label, err) from None
        finally:
            scope._untrack(call)


class HostLink:
    """The plugin's connection to the host, made at Init."""

    def __init__(self, channel, runtime, database, token):
        self.channel = channel
        self.runtime = runtime
        self.database = database
        #: Who calls: every call presents the runtime token.
        self.metadata = (("authorization", f"Bearer {token}"),)
