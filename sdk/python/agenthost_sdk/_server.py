"""The Plugin service: converts the protocol's messages to plain values,
finds the author's handler, and converts its answer back.

A handler that raises never takes the process down: a provider's error
becomes its result's error, an action's a failed result, an evaluator's its
outcome's error, and for the other calls (models, events, routes, sources,
configure) the call's gRPC error, of the raised error's kind. Each names
the handler.
"""

import asyncio
import inspect
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from . import _convert as cv
from ._agent import Agent, AgentState, CallScope, HostLink
from ._errors import CancelledError, DeadlineExceededError, InvalidError, NotFoundError, code_of, message_of
from ._proto.agenthost.plugin.v1 import database_pb2_grpc, plugin_pb2, plugin_pb2_grpc, runtime_pb2_grpc
from ._proto.agenthost.plugin.v1 import types_pb2
from ._types import ActionCall, ActionResult, Event, EvaluatorCall, Host, HttpRequest, HttpResponse, ProviderResult

#: The minor of agenthost.plugin.v1 this SDK speaks (the Go side's contract.ProtocolMinor).
PROTOCOL_MINOR = 3
#: Bounds every message, both ways (the Go side's contract.MaxMessageSize).
MAX_MESSAGE_SIZE = 64 << 20
GRPC_SIZE_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
    ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
]


#: A cancellation this close to the deadline (seconds) is the deadline's.
_DEADLINE_SLACK = 0.1


class _Failure(Exception):
    """A call's gRPC error, with the message that names the handler."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _run(fn, *args):
    """Calls a handler; a coroutine function's coroutine is run to its end."""
    out = fn(*args)
    if inspect.isawaitable(out):
        async def wait():
            return await out
        out = asyncio.run(wait())
    return out


def validate_plugin(p):
    """Catches definition mistakes at start rather than at the first message."""
    if not getattr(p, "name", "") or not str(p.name).strip():
        raise ValueError("plugin definition: name is empty")
    seen = set()

    def check(kind, name, fn, fn_name):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"plugin {p.name}: a {kind} has an empty name")
        if (kind, name) in seen:
            raise ValueError(f"plugin {p.name}: {kind} {name} is defined twice")
        seen.add((kind, name))
        if not callable(fn):
            raise ValueError(f"plugin {p.name}: {kind} {name} has no {fn_name} function")

    for s in p.settings:
        check("setting", s.name, len, "")
        if s.required and s.default:
            raise ValueError(f"plugin {p.name}: setting {s.name} is required and has a default; keep one of them")
    for a in p.actions:
        check("action", a.name, a.handler, "handler")
    for pr in p.providers:
        check("provider", pr.name, pr.get, "get")
    for e in p.evaluators:
        check("evaluator", e.name, e.handler, "handler")
    for m in p.models:
        check("model", m.type, m.handler, "handler")
    for s in p.sources:
        check("source", s.name, s.send, "send")
    for e in p.events:
        if not isinstance(e.type, str) or not e.type.strip() or not callable(e.handler):
            raise ValueError(f"plugin {p.name}: an event handler needs a type and a handler function")
    for r in p.routes:
        if not isinstance(r.path, str) or not r.path.startswith("/") or not callable(r.handler):
            raise ValueError(f"plugin {p.name}: a route needs a path starting with \"/\" and a handler function")


class PluginServicer(plugin_pb2_grpc.PluginServicer):
    """agenthost.plugin.v1.Plugin for a Plugin definition."""

    def __init__(self, plugin, log):
        validate_plugin(plugin)
        self.plugin = plugin
        self.log = log
        self._actions = {a.name: a for a in plugin.actions}
        self._providers = {p.name: p for p in plugin.providers}
        self._evaluators = {e.name: e for e in plugin.evaluators}
        self._models = {m.type: m for m in plugin.models}
        self._events = {}
        for e in plugin.events:
            self._events.setdefault(e.type, []).append(e)
        self._sources = {s.name: s for s in plugin.sources}
        self._declared = {s.name: s for s in plugin.settings}
        self._undeclared = set()
        self._agents = {}
        self._link = None
        self._lock = threading.Lock()
        self._active = set()
        self._stopping = False
        # Providers, validations and evaluators of one call run side by side.
        self._fanout = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fanout")
        cv.on_bad_json(lambda field, err: log.warn(
            "a JSON field from the host does not parse; it is read as {}", field=field, error=message_of(err)))

    # ---- lifecycle -------------------------------------------------------------

    def stop(self):
        """Cancels every call in flight and every agent's background work (Shutdown)."""
        with self._lock:
            self._stopping = True
            scopes = list(self._active) + [a.lifetime for a in self._agents.values()]
        for s in scopes:
            s.cancel(CancelledError("the plugin is stopping"))

    def close(self):
        """Closes the Runtime connection."""
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            link.channel.close()

    def _scope(self, context, run_id):
        """Binds a served call: its scope is cancelled when the host cancels
        the call, when its deadline passes, and when the plugin stops."""
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.time() + remaining
        scope = CallScope(run_id, deadline)

        def ended():
            # Also runs when the call completes; by then nobody is waiting.
            # gRPC reports a passed deadline as a cancellation too, and the
            # host's side of it passes a little before ours (ours counts
            # from when the call arrived).
            if deadline is not None and time.time() >= deadline - _DEADLINE_SLACK:
                scope.cancel(DeadlineExceededError("the call's deadline passed"))
            else:
                scope.cancel(CancelledError("the host cancelled the call"))

        context.add_callback(ended)
        with self._lock:
            stopping = self._stopping
            self._active.add(scope)
        if stopping:
            scope.cancel(CancelledError("the plugin is stopping"))
        return scope

    def _done(self, scope):
        with self._lock:
            self._active.discard(scope)

    def _agent_state(self, agent_id):
        if not agent_id:
            raise _Failure(grpc.StatusCode.INVALID_ARGUMENT, "agent_id is empty")
        with self._lock:
            state = self._agents.get(agent_id)
        if state is None:
            raise _Failure(grpc.StatusCode.FAILED_PRECONDITION,
                           f"agent {json.dumps(agent_id)} is not configured in plugin {self.plugin.name}")
        return state

    def _served(self, request, context, run_id, fn):
        """Runs fn(agent) with the agent bound to the call; what it raises becomes the call's error."""
        try:
            state = self._agent_state(request.agent_id)
        except _Failure as f:
            context.abort(f.code, str(f))
        scope = self._scope(context, run_id)
        try:
            return fn(Agent(state, scope))
        except _Failure as f:
            context.abort(f.code, str(f))
        except Exception as err:  # noqa: BLE001 - every error becomes the call's
            context.abort(code_of(err), message_of(err))
        finally:
            self._done(scope)

    def _failed(self, kind, name, err, agent=None):
        """Logs what a handler raised, with its traceback, and returns the message naming it."""
        (agent.log if agent is not None else self.log).error(f"{kind} failed", **{kind.replace(" ", "_"): name, "error": err})
        return f"{kind} {name} failed: {message_of(err)}"

    def _guard(self, kind, name, agent, fn, *args):
        try:
            return _run(fn, *args)
        except Exception as err:  # noqa: BLE001
            raise _Failure(code_of(err), self._failed(kind, name, err, agent)) from None

    def _validates(self, kind, name, agent, fn, *args):
        try:
            return bool(_run(fn, *args))
        except Exception as err:  # noqa: BLE001
            self._failed(f"{kind} validate", name, err, agent)
            return False

    def _fan(self, fn, items):
        items = list(items)
        if len(items) <= 1:
            return [fn(i) for i in items]
        return list(self._fanout.map(fn, items))

    # ---- the service -------------------------------------------------------------

    def manifest(self):
        p = self.plugin
        events = list(dict.fromkeys(e.type for e in p.events))
        return plugin_pb2.Manifest(
            name=p.name, version=p.version, description=p.description, protocol_minor=PROTOCOL_MINOR,
            aliases=list(p.aliases), http=len(p.routes) > 0, events=events,
            message_sources=[s.name for s in p.sources],
            actions=[plugin_pb2.ActionSpec(
                name=a.name, description=a.description, similes=list(a.similes),
                examples=[plugin_pb2.Conversation(messages=[
                    plugin_pb2.ExampleMessage(name=m.name, content=cv.content_to_proto(m.content)) for m in conv])
                    for conv in a.examples]) for a in p.actions],
            providers=[plugin_pb2.ProviderSpec(name=pr.name, description=pr.description, dynamic=pr.dynamic,
                                               private=pr.private, position=pr.position) for pr in p.providers],
            evaluators=[plugin_pb2.EvaluatorSpec(name=e.name, description=e.description, similes=list(e.similes),
                                                 always_run=e.always_run) for e in p.evaluators],
            models=[plugin_pb2.ModelSpec(type=m.type, priority=m.priority) for m in p.models],
            settings=[plugin_pb2.SettingSpec(name=s.name, description=s.description, required=s.required,
                                             secret=s.secret, default_value=s.default or "", endpoint=s.endpoint)
                      for s in p.settings])

    def Describe(self, request, context):
        return self.manifest()

    def Init(self, request, context):
        if request.runtime_address:
            self.close()
            target = request.runtime_address
            if target.startswith("/"):
                target = "unix://" + target
            # The Runtime socket is the host's private unix socket: no TLS.
            # The token says which plugin calls.
            channel = grpc.insecure_channel(target, options=GRPC_SIZE_OPTIONS)
            link = HostLink(channel, runtime_pb2_grpc.RuntimeStub(channel), database_pb2_grpc.DatabaseStub(channel),
                            request.runtime_token)
            with self._lock:
                self._link = link
        if self.plugin.init is not None:
            host = Host(version=request.host_version, protocol_minor=min(request.protocol_minor, PROTOCOL_MINOR),
                        features=list(request.features), data_dir=request.data_dir)
            try:
                _run(self.plugin.init, host)
            except Exception as err:  # noqa: BLE001
                context.abort(code_of(err), self._failed("init of plugin", self.plugin.name, err))
        self.log.debug("initialised", host_version=request.host_version, host_protocol_minor=request.protocol_minor)
        return plugin_pb2.InitResponse()

    def Configure(self, request, context):
        agent_id = request.agent_id
        if not agent_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "configure: agent_id is empty")
        character = {}
        if request.character_json:
            try:
                character = json.loads(request.character_json)
            except ValueError as err:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"configure agent {agent_id}: the character is not JSON: {err}")
            if not isinstance(character, dict):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"configure agent {agent_id}: the character is not a JSON object")
        name = character.get("name") if isinstance(character.get("name"), str) else ""
        label = f"{name} ({agent_id})" if name and name != agent_id else agent_id
        settings = dict(request.settings)
        for s in self.plugin.settings:
            if s.required and not settings.get(s.name, "").strip():
                what = f" ({s.description.rstrip('.')})" if s.description else ""
                where = "secrets" if s.secret else "settings"
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"the setting {s.name}{what} is required, and agent {label} does not have it: "
                              f"set it in the character's {where} or in the daemon's environment (.env)")
        state = AgentState(agent_id, name, character, settings, self._declared, lambda: self._link, self.log,
                           self._undeclared)
        warnings = []
        if self.plugin.configure is not None:
            try:
                warnings = _run(self.plugin.configure, Agent(state, state.lifetime)) or []
            except Exception as err:  # noqa: BLE001
                state.lifetime.cancel(CancelledError("the agent did not start"))
                self.log.error("configure failed", agent_id=agent_id, error=err)
                context.abort(code_of(err), f"configure agent {label} in plugin {self.plugin.name}: {message_of(err)}")
        with self._lock:
            old = self._agents.get(agent_id)
            self._agents[agent_id] = state
        if old is not None:
            old.lifetime.cancel(CancelledError("the agent was configured again"))
        return plugin_pb2.ConfigureResponse(warnings=[str(w) for w in warnings])

    def Unconfigure(self, request, context):
        with self._lock:
            state = self._agents.pop(request.agent_id, None)
        if state is not None:
            state.lifetime.cancel(CancelledError("the agent stopped"))
            if self.plugin.unconfigure is not None:
                agent = Agent(state, CallScope())
                try:
                    _run(self.plugin.unconfigure, agent)
                except Exception as err:  # noqa: BLE001
                    self._failed("unconfigure of agent", request.agent_id, err, agent)
        return plugin_pb2.UnconfigureResponse()

    def GetProviders(self, request, context):
        message = cv.memory_from_proto(request.message)
        state = cv.state_from_proto(request.state)

        def serve(agent):
            def one(name):
                out = plugin_pb2.ProviderResult(name=name)
                p = self._providers.get(name)
                if p is None:
                    out.error = f"plugin {self.plugin.name} has no provider {json.dumps(name)}"
                    return out
                try:
                    r = _run(p.get, agent, message, state)
                except Exception as err:  # noqa: BLE001
                    out.error = self._failed("provider", name, err, agent)
                    return out
                r = ProviderResult(text=r) if isinstance(r, str) else (r or ProviderResult())
                out.text = r.text
                out.values_json = cv.encode_json(r.values)
                out.data_json = cv.encode_json(r.data)
                return out

            return plugin_pb2.GetProvidersResponse(results=self._fan(one, request.names))

        return self._served(request, context, request.run_id, serve)

    def ValidateActions(self, request, context):
        message = cv.memory_from_proto(request.message)
        state = cv.state_from_proto(request.state)

        def serve(agent):
            def one(name):
                a = self._actions.get(name)
                if a is None:
                    return False
                if a.validate is None:
                    return True
                return self._validates("action", name, agent, a.validate, agent, message, state)

            ok = self._fan(one, request.names)
            return plugin_pb2.ValidateActionsResponse(valid=[n for n, v in zip(request.names, ok) if v])

        return self._served(request, context, "", serve)

    def RunAction(self, request, context):
        def serve(agent):
            a = self._actions.get(request.name)
            if a is None:
                raise NotFoundError(f"plugin {self.plugin.name} has no action {json.dumps(request.name)}")
            call = ActionCall(
                message=cv.memory_from_proto(request.message), state=cv.state_from_proto(request.state),
                responses=[cv.memory_from_proto(m) for m in request.responses], run_id=request.run_id,
                previous=[cv.outcome_from_proto(o) for o in request.previous],
                options=cv.decode_object(request.options_json, "run_action.options_json"))
            try:
                result = _run(a.handler, agent, call)
            except Exception as err:  # noqa: BLE001
                # An action that fails is a result, not a broken call: the
                # chain goes on and the failure is recorded.
                result = ActionResult(success=False, error=self._failed("action", request.name, err, agent))
            return plugin_pb2.RunActionResponse(result=cv.action_result_to_proto(result or ActionResult()))

        return self._served(request, context, request.run_id, serve)

    def RunEvaluators(self, request, context):
        call = EvaluatorCall(
            message=cv.memory_from_proto(request.message), state=cv.state_from_proto(request.state),
            did_respond=request.did_respond, responses=[cv.memory_from_proto(m) for m in request.responses],
            run_id=request.run_id)

        def serve(agent):
            def one(name):
                e = self._evaluators.get(name)
                if e is None:
                    return plugin_pb2.EvaluatorOutcome(name=name, error=f"plugin {self.plugin.name} has no evaluator {json.dumps(name)}")
                if not call.did_respond and not e.always_run:
                    return plugin_pb2.EvaluatorOutcome(name=name)
                if e.validate is not None and not self._validates("evaluator", name, agent, e.validate, agent, call.message, call.state):
                    return plugin_pb2.EvaluatorOutcome(name=name)
                try:
                    _run(e.handler, agent, call)
                except Exception as err:  # noqa: BLE001
                    return plugin_pb2.EvaluatorOutcome(name=name, ran=True, error=self._failed("evaluator", name, err, agent))
                return plugin_pb2.EvaluatorOutcome(name=name, ran=True)

            return plugin_pb2.RunEvaluatorsResponse(outcomes=self._fan(one, request.names))

        return self._served(request, context, request.run_id, serve)

    def HandleEvent(self, request, context):
        def serve(agent):
            handlers = self._events.get(request.type)
            if not handlers:
                raise NotFoundError(f"plugin {self.plugin.name} does not handle event {request.type}")
            ev = Event(type=request.type, run_id=request.run_id, source=request.source,
                       message=cv.memory_from_proto(request.message) if request.HasField("message") else None,
                       payload=cv.decode_object(request.payload_json, "handle_event.payload_json"))
            failures = []
            # One handler's failure must not skip the others.
            for h in handlers:
                try:
                    self._guard("event handler", request.type, agent, h.handler, agent, ev)
                except _Failure as f:
                    failures.append(f)
            if failures:
                raise _Failure(failures[0].code, "; ".join(str(f) for f in failures))
            return plugin_pb2.HandleEventResponse()

        return self._served(request, context, request.run_id, serve)

    def UseModel(self, request, context):
        def serve(agent):
            m = self._models.get(request.type)
            if m is None:
                raise NotFoundError(f"plugin {self.plugin.name} has no model of type {request.type}")
            res = self._guard("model", request.type, agent, m.handler, agent, cv.model_request_from_proto(request))
            return cv.model_response_to_proto(res)

        return self._served(request, context, request.run_id, serve)

    def StreamModel(self, request, context):
        try:
            state = self._agent_state(request.agent_id)
        except _Failure as f:
            context.abort(f.code, str(f))
        m = self._models.get(request.type)
        if m is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"plugin {self.plugin.name} has no model of type {request.type}")
        scope = self._scope(context, request.run_id)
        agent = Agent(state, scope)
        req = cv.model_request_from_proto(request)
        # The handler runs on its own thread and hands its pieces over; this
        # generator sends them as they come.
        pieces = []
        cond = threading.Condition()
        outcome = {}

        def emit(text):
            if text:
                with cond:
                    pieces.append(text)
                    cond.notify()

        def produce():
            try:
                if m.stream is not None:
                    outcome["res"] = self._guard("model", request.type, agent, m.stream, agent, req, emit)
                else:
                    res = self._guard("model", request.type, agent, m.handler, agent, req)
                    emit(res if isinstance(res, str) else getattr(res, "text", ""))
                    outcome["res"] = res
            except _Failure as f:
                outcome["err"] = f
            with cond:
                outcome["done"] = True
                cond.notify()

        threading.Thread(target=produce, name="stream-model", daemon=True).start()
        try:
            while True:
                with cond:
                    while not pieces and "done" not in outcome:
                        cond.wait()
                    batch, pieces[:] = list(pieces), []
                    done = "done" in outcome
                for text in batch:
                    yield types_pb2.ModelChunk(text=text)
                if done:
                    break
            if "err" in outcome:
                context.abort(outcome["err"].code, str(outcome["err"]))
            yield types_pb2.ModelChunk(final=cv.model_response_to_proto(outcome.get("res")))
        finally:
            self._done(scope)

    def SendMessage(self, request, context):
        def serve(agent):
            target = cv.target_from_proto(request.target)
            src = self._sources.get(target.source)
            if src is None:
                raise NotFoundError(f"plugin {self.plugin.name} cannot send to source {json.dumps(target.source)}")
            ids = self._guard("source", target.source, agent, src.send, agent, target, cv.content_from_proto(request.content))
            return plugin_pb2.SendMessageResponse(message_ids=list(ids or []))

        return self._served(request, context, "", serve)

    def HandleHTTP(self, request, context):
        def serve(agent):
            routes = self.plugin.routes
            if not routes:
                raise NotFoundError(f"plugin {self.plugin.name} serves no HTTP requests")
            path = request.path or "/"
            on_path = [r for r in routes if r.path == path]
            route = next((r for r in on_path if not r.method or r.method.upper() == request.method.upper()), None)
            if route is None:
                status, body = (404, f"no route {path}") if not on_path else (405, f"{request.method} is not allowed on {path}")
                return plugin_pb2.HandleHTTPResponse(status=status, headers={"content-type": "text/plain; charset=utf-8"},
                                                     body=(body + "\n").encode())
            req = HttpRequest(method=request.method, path=path, query=request.raw_query,
                              headers={k.lower(): v for k, v in request.headers.items()}, body=bytes(request.body),
                              remote_addr=request.remote_addr)
            res = self._guard("http route", f"{route.method or request.method} {route.path}", agent, route.handler, agent, req)
            if isinstance(res, (str, bytes)):
                res = HttpResponse(body=res)
            res = res or HttpResponse()
            body = res.body.encode() if isinstance(res.body, str) else bytes(res.body or b"")
            return plugin_pb2.HandleHTTPResponse(status=res.status or 200, headers=dict(res.headers or {}), body=body)

        return self._served(request, context, "", serve)

    def Shutdown(self, request, context):
        """Cancels every call in flight; the host then stops the process through the controller."""
        self.stop()
        return plugin_pb2.ShutdownResponse()
