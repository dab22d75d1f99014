"""Conversion between the protocol's messages (_proto) and the plain values
of _types. Free-form maps travel as JSON in bytes fields; names become
elizaOS's (inReplyTo) inside those, and snake_case in the dataclasses."""

import json

from ._proto.agenthost.plugin.v1 import types_pb2 as pb
from ._types import (
    ActionOutcome,
    ActionResult,
    Content,
    Entity,
    LogEntry,
    Media,
    Memory,
    ModelRequest,
    ModelResponse,
    Room,
    State,
    Target,
    Usage,
)

_bad_json = [lambda field, err: None]


def on_bad_json(fn):
    """Says where JSON that does not parse is reported (the plugin's log)."""
    _bad_json[0] = fn


def encode_json(v):
    if v is None or v == {}:
        return b""
    return json.dumps(v, separators=(",", ":"), default=str).encode()


def decode_object(b, field):
    """A JSON object from a *_json field: {} when empty, or when it is not an object (reported)."""
    if not b:
        return {}
    try:
        v = json.loads(b)
    except ValueError as err:
        _bad_json[0](field, err)
        return {}
    if isinstance(v, dict):
        return v
    _bad_json[0](field, ValueError("not a JSON object"))
    return {}


def _decode_any(b, field):
    if not b:
        return None
    try:
        return json.loads(b)
    except ValueError as err:
        _bad_json[0](field, err)
        return None


_CONTENT_KEYS = {"text", "thought", "actions", "providers", "source", "target", "url", "inReplyTo", "attachments", "channelType"}


def content_to_proto(c):
    if c is None:
        c = Content()
    elif isinstance(c, str):
        c = Content(text=c)
    extra = {k: v for k, v in (c.extra or {}).items() if k not in _CONTENT_KEYS}
    return pb.Content(
        text=c.text, thought=c.thought, actions=list(c.actions), providers=list(c.providers), source=c.source,
        target=c.target, url=c.url, in_reply_to=c.in_reply_to,
        attachments=[pb.Media(id=m.id, url=m.url, title=m.title, source=m.source, description=m.description,
                              text=m.text, content_type=m.content_type) for m in c.attachments],
        channel_type=c.channel_type, extra_json=encode_json(extra))


def content_from_proto(c):
    extra = {k: v for k, v in decode_object(c.extra_json, "content.extra_json").items() if k not in _CONTENT_KEYS}
    return Content(
        text=c.text, thought=c.thought, actions=list(c.actions), providers=list(c.providers), source=c.source,
        target=c.target, url=c.url, in_reply_to=c.in_reply_to,
        attachments=[Media(id=m.id, url=m.url, title=m.title, source=m.source, description=m.description,
                           text=m.text, content_type=m.content_type) for m in c.attachments],
        channel_type=c.channel_type, extra=extra)


def memory_to_proto(m):
    if m is None:
        return None
    return pb.Memory(
        id=m.id, entity_id=m.entity_id, agent_id=m.agent_id, room_id=m.room_id, world_id=m.world_id,
        created_at=m.created_at, content=content_to_proto(m.content), embedding=list(m.embedding), unique=m.unique,
        similarity=m.similarity, metadata_json=encode_json(m.metadata), table=m.table)


def memory_from_proto(m):
    return Memory(
        content=content_from_proto(m.content), id=m.id, entity_id=m.entity_id, agent_id=m.agent_id,
        room_id=m.room_id, world_id=m.world_id, created_at=m.created_at, embedding=list(m.embedding),
        unique=m.unique, similarity=m.similarity, metadata=decode_object(m.metadata_json, "memory.metadata_json"),
        table=m.table)


def state_from_proto(s):
    return State(values=decode_object(s.values_json, "state.values_json"),
                 data=decode_object(s.data_json, "state.data_json"), text=s.text)


def action_result_to_proto(r):
    return pb.ActionResult(success=bool(r.success), text=r.text, values_json=encode_json(r.values),
                           data_json=encode_json(r.data), error=r.error)


def action_result_from_proto(r):
    return ActionResult(success=r.success, text=r.text, values=decode_object(r.values_json, "action_result.values_json"),
                        data=decode_object(r.data_json, "action_result.data_json"), error=r.error)


def outcome_from_proto(o):
    return ActionOutcome(name=o.name, result=action_result_from_proto(o.result))


def entity_to_proto(e):
    return pb.Entity(id=e.id, names=list(e.names), metadata_json=encode_json(e.metadata), agent_id=e.agent_id)


def entity_from_proto(e):
    return Entity(id=e.id, names=list(e.names), metadata=decode_object(e.metadata_json, "entity.metadata_json"),
                  agent_id=e.agent_id)


def room_to_proto(r):
    return pb.Room(id=r.id, name=r.name, agent_id=r.agent_id, source=r.source, type=r.type, channel_id=r.channel_id,
                   server_id=r.server_id, world_id=r.world_id, metadata_json=encode_json(r.metadata))


def room_from_proto(r):
    return Room(id=r.id, name=r.name, agent_id=r.agent_id, source=r.source, type=r.type, channel_id=r.channel_id,
                server_id=r.server_id, world_id=r.world_id, metadata=decode_object(r.metadata_json, "room.metadata_json"))


def target_to_proto(t):
    return pb.Target(source=t.source, room_id=t.room_id, channel_id=t.channel_id, server_id=t.server_id,
                     entity_id=t.entity_id, thread_id=t.thread_id)


def target_from_proto(t):
    return Target(source=t.source, room_id=t.room_id, channel_id=t.channel_id, server_id=t.server_id,
                  entity_id=t.entity_id, thread_id=t.thread_id)


def log_to_proto(agent_id, e):
    return pb.LogEntry(id=e.id, agent_id=agent_id, entity_id=e.entity_id, room_id=e.room_id, type=e.type,
                       body_json=json.dumps(e.body or {}, default=str).encode(), created_at=e.created_at)


def log_from_proto(e):
    return LogEntry(type=e.type, body=decode_object(e.body_json, "log.body_json"), id=e.id, entity_id=e.entity_id,
                    room_id=e.room_id, created_at=e.created_at)


def model_request_to_proto(agent_id, r):
    out = pb.ModelRequest(
        agent_id=agent_id, type=r.type, run_id=r.run_id, prompt=r.prompt, system=r.system, max_tokens=r.max_tokens,
        stop_sequences=list(r.stop_sequences), text=r.text, probe=r.probe, params_json=encode_json(r.params),
        provider=r.provider)
    # Optional fields: unset is not 0.
    for name in ("temperature", "frequency_penalty", "presence_penalty"):
        if getattr(r, name) is not None:
            setattr(out, name, getattr(r, name))
    return out


def model_request_from_proto(r):
    def opt(name):
        return getattr(r, name) if r.HasField(name) else None

    return ModelRequest(
        type=r.type, run_id=r.run_id, prompt=r.prompt, system=r.system, temperature=opt("temperature"),
        max_tokens=r.max_tokens, stop_sequences=list(r.stop_sequences), frequency_penalty=opt("frequency_penalty"),
        presence_penalty=opt("presence_penalty"), text=r.text, probe=r.probe,
        params=decode_object(r.params_json, "model_request.params_json"), provider=r.provider)


def model_response_to_proto(r):
    if r is None:
        r = ModelResponse()
    elif isinstance(r, str):
        r = ModelResponse(text=r)
    out = pb.ModelResponse(
        text=r.text, embedding=list(r.embedding), json=b"" if r.json is None else json.dumps(r.json).encode(),
        data=bytes(r.data or b""), content_type=r.content_type, model=r.model, provider=r.provider)
    if r.usage is not None:
        out.usage.CopyFrom(pb.Usage(prompt_tokens=r.usage.prompt_tokens, completion_tokens=r.usage.completion_tokens,
                                    total_tokens=r.usage.total_tokens))
    return out


def model_response_from_proto(r):
    usage = None
    if r.HasField("usage"):
        usage = Usage(prompt_tokens=r.usage.prompt_tokens, completion_tokens=r.usage.completion_tokens,
                      total_tokens=r.usage.total_tokens)
    return ModelResponse(text=r.text, embedding=list(r.embedding), json=_decode_any(r.json, "model_response.json"),
                         data=bytes(r.data), content_type=r.content_type, usage=usage, model=r.model,
                         provider=r.provider)
