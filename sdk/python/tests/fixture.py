"""A plugin that uses every part of the SDK, for the tests every language SDK
passes (internal/langsdk): the same plugin, with the same names under its
own prefix, is written with the TypeScript SDK in
sdk/typescript/src/test/fixture.ts. Run it with python3 tests/fixture.py."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from agenthost_sdk import (  # noqa: E402
    Action, ActionResult, Content, Entity, EventHandler, Evaluator, HttpResponse, InvalidError, LogEntry, Memory,
    Model, ModelResponse, Plugin, Provider, ProviderResult, Room, Route, Setting, Source, Target, serve,
)

P = "PYF"
LANG = "Python"
last_slow = ["nothing yet"]


def text(agent, message, state):
    return ProviderResult(text=f"{agent.setting(P + '_GREETING')} from {LANG}", values={"lang": LANG})


def raiser(kind):
    def fn(*_):
        raise RuntimeError(f"{kind} boom")
    return fn


def slow(agent, message, state):
    """Waits for its call to end when the message asks it to."""
    if "wait" not in message.content.text:
        return "not waiting"
    last_slow[0] = "waiting"
    if agent.cancelled.wait(30):
        last_slow[0] = f"aborted: {type(agent.cancel_reason).__name__}"
    else:
        last_slow[0] = "not cancelled"
    agent.log.info("slow provider stopped", outcome=last_slow[0])
    return "too late"


def respond(agent, call):
    settings = agent.get_settings()
    runs = int(agent.get_cache(P + ":runs") or 0) + 1
    agent.set_cache(P + ":runs", str(runs))
    text = (f"{P} responded to {call.message.content.text} for {agent.name} "
            f"(run {runs}, greeting {settings.get(P + '_GREETING', 'unset')})")
    agent.respond(Content(text=text, actions=[P + "_RESPOND"], in_reply_to=call.message.id))
    agent.log.info("responded", runs=runs)
    return ActionResult(text=text, values={"runs": runs})


def model(agent, call):
    return ActionResult(text=agent.generate_text(call.message.content.text, type="TEXT_SMALL"))


def tour(agent, call):
    room_id = call.message.room_id
    agent.upsert_room(Room(id=room_id, name="fixture room", source="test", type="GROUP"))
    room = agent.get_room(room_id)
    agent.upsert_entities([Entity(id="e0000000-0000-4000-8000-000000000001", names=["Ada"], metadata={"lang": LANG})])
    entities = agent.get_entities(["e0000000-0000-4000-8000-000000000001"])
    memory_id, _ = agent.create_memory(
        Memory(room_id=room_id, entity_id=agent.id, content=Content(text=P + " fact", extra={"mood": "curious"}),
               metadata={"lang": LANG}), table="facts")
    facts = agent.get_memories(room_id=room_id, table="facts")
    fact = next((f for f in facts if f.id == memory_id), None)
    embedding = agent.embed("vector me")
    agent.emit_event(P + "_EMITTED", payload={"lang": LANG})
    agent.add_log(LogEntry(type=P + "_log", room_id=room_id, body={"lang": LANG}))
    logs = agent.get_logs(type=P + "_log")
    sent = agent.send_message(Target(source="test", room_id=room_id), P + " says hi")
    return ActionResult(data={
        "room": room.name if room else "",
        "entity": entities[0].names[0] if entities else "",
        "entityLang": entities[0].metadata.get("lang", "") if entities else "",
        "memoryId": memory_id,
        "fact": fact.content.text if fact else "",
        "factMood": fact.content.extra.get("mood", "") if fact else "",
        "dims": len(embedding),
        "logs": len(logs),
        "sent": len(sent),
    })


def stream(agent, request, emit):
    for word in request.prompt.split(" "):
        emit(word + " ")
    return ModelResponse(text=request.prompt, model="fixture")


def broken(agent, request):
    raise InvalidError("bad prompt")


serve(Plugin(
    name="py-fixture",
    version="1.2.3",
    description="Every part of the Python SDK, for its tests.",
    settings=[Setting(P + "_GREETING", "How the fixture greets.", default="hello")],
    providers=[
        Provider(P + "_TEXT", text, position=5),
        Provider(P + "_THROWS", raiser("provider")),
        Provider(P + "_SLOW", slow),
        Provider(P + "_LAST", lambda agent, message, state: f"slow provider saw: {last_slow[0]}", dynamic=True),
    ],
    actions=[
        Action(P + "_RESPOND", respond, description="Answers through the host, counting its runs in the cache.",
               similes=[P + "_ANSWER"]),
        Action(P + "_THROWS", raiser("action")),
        Action(P + "_MODEL", model),
        Action(P + "_TOUR", tour, description="Uses the rest of the agent API."),
    ],
    evaluators=[Evaluator(P + "_EVAL", raiser("evaluator"))],
    models=[
        Model(P + "_ECHO", lambda agent, request: f"echo: {request.prompt}"),
        Model(P + "_STREAM", lambda agent, request: "unused", stream=stream),
        Model(P + "_BROKEN", broken),
    ],
    events=[EventHandler(P + "_EVENT", raiser("event"))],
    sources=[Source("pyf-chat", lambda agent, target, content: [f"sent-to-{target.channel_id}"])],
    routes=[
        Route("/hello", lambda agent, req: HttpResponse(body=f"hello {agent.name} {req.query}"), method="GET"),
        Route("/boom", raiser("route"), method="POST"),
    ],
))
