"""The plain values a plugin author works with: what a plugin declares and
what its handlers receive and return. Protobuf types never appear here;
_convert translates at the edge."""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

JSON = Dict[str, Any]


# ---- what handlers receive and return ------------------------------------


@dataclass
class Media:
    """An attachment of a message."""

    id: str = ""
    url: str = ""
    title: str = ""
    source: str = ""
    description: str = ""
    text: str = ""
    #: image, video, audio, document or link.
    content_type: str = ""


@dataclass
class Content:
    """The payload of every message and memory, as in elizaOS. Keys beyond
    the named ones travel in ``extra`` (by their elizaOS names)."""

    text: str = ""
    #: The agent's private reasoning; never shown to users.
    thought: str = ""
    actions: List[str] = field(default_factory=list)
    providers: List[str] = field(default_factory=list)
    #: The platform tag: api, telegram, discord, ...
    source: str = ""
    target: str = ""
    url: str = ""
    in_reply_to: str = ""
    attachments: List[Media] = field(default_factory=list)
    channel_type: str = ""
    extra: JSON = field(default_factory=dict)


@dataclass
class Memory:
    """A stored message, fact, document or fragment."""

    content: Content = field(default_factory=Content)
    id: str = ""
    #: The author.
    entity_id: str = ""
    agent_id: str = ""
    room_id: str = ""
    world_id: str = ""
    #: Unix milliseconds.
    created_at: int = 0
    embedding: List[float] = field(default_factory=list)
    unique: bool = False
    #: Set on search results only.
    similarity: float = 0.0
    metadata: JSON = field(default_factory=dict)
    #: The table: messages, facts, documents, fragments, ...
    table: str = ""


@dataclass
class State:
    """What providers produce and prompts consume."""

    values: JSON = field(default_factory=dict)
    data: JSON = field(default_factory=dict)
    text: str = ""


@dataclass
class Entity:
    """A user, a bot or the agent itself."""

    id: str
    names: List[str] = field(default_factory=list)
    metadata: JSON = field(default_factory=dict)
    agent_id: str = ""


@dataclass
class Room:
    """A channel, a DM, a thread."""

    id: str
    name: str = ""
    agent_id: str = ""
    source: str = ""
    #: SELF, DM, GROUP, VOICE_DM, VOICE_GROUP, FEED, THREAD, WORLD, FORUM or API.
    type: str = ""
    channel_id: str = ""
    server_id: str = ""
    world_id: str = ""
    metadata: JSON = field(default_factory=dict)


@dataclass
class Target:
    """Where an outgoing message goes; source picks the plugin."""

    source: str
    room_id: str = ""
    channel_id: str = ""
    server_id: str = ""
    entity_id: str = ""
    thread_id: str = ""


@dataclass
class ActionResult:
    """What an action hands to the next one in its chain."""

    success: bool = True
    text: str = ""
    values: JSON = field(default_factory=dict)
    data: JSON = field(default_factory=dict)
    error: str = ""


@dataclass
class ActionOutcome:
    """One finished action of a chain."""

    name: str
    result: ActionResult


@dataclass
class ProviderResult:
    """A provider's contribution to the state; a provider may return a str (its text)."""

    text: str = ""
    values: JSON = field(default_factory=dict)
    data: JSON = field(default_factory=dict)


@dataclass
class Usage:
    """The tokens of one model call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass
class ModelRequest:
    """A request for a model. Text calls use prompt, system and the sampling
    fields; TEXT_EMBEDDING uses text; other types put their parameters in
    params."""

    #: TEXT_SMALL, TEXT_LARGE, TEXT_EMBEDDING, OBJECT_SMALL, IMAGE, ...
    type: str
    run_id: str = ""
    prompt: str = ""
    system: str = ""
    temperature: Optional[float] = None
    max_tokens: int = 0
    stop_sequences: List[str] = field(default_factory=list)
    frequency_penalty: Optional[float] = None
    presence_penalty: Optional[float] = None
    text: str = ""
    probe: bool = False
    params: JSON = field(default_factory=dict)
    #: Ask for one plugin's handler instead of the highest priority.
    provider: str = ""


@dataclass
class ModelResponse:
    """A model's answer: one of text, embedding, json or data. A model
    handler may return a str (the text)."""

    text: str = ""
    embedding: List[float] = field(default_factory=list)
    json: Any = None
    data: bytes = b""
    content_type: str = ""
    usage: Optional[Usage] = None
    #: The model that answered, e.g. gpt-4o-mini.
    model: str = ""
    #: The plugin that answered; set by the host.
    provider: str = ""


@dataclass
class Event:
    """What an event handler receives."""

    type: str
    run_id: str = ""
    source: str = ""
    #: Set for the message events.
    message: Optional[Memory] = None
    payload: JSON = field(default_factory=dict)


@dataclass
class HttpRequest:
    """A request the daemon received for the plugin at /hooks/{plugin}/{agentId}/..."""

    method: str
    #: What follows /hooks/{plugin}/{agentId}, starting with "/".
    path: str
    #: The query string, without "?".
    query: str = ""
    #: Header names in lower case; several values of one header joined with ", ".
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    remote_addr: str = ""


@dataclass
class HttpResponse:
    """A route's answer. A route may return a str or bytes (a 200 with that body)."""

    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)
    body: Any = b""


@dataclass
class LogEntry:
    """A timeline entry: a run, a model call, an action, an evaluator."""

    type: str
    body: JSON = field(default_factory=dict)
    id: str = ""
    entity_id: str = ""
    room_id: str = ""
    #: Unix milliseconds.
    created_at: int = 0


@dataclass
class ActionCall:
    """What an action handler receives about its run."""

    message: Memory
    state: State
    responses: List[Memory]
    run_id: str
    #: The results of the earlier actions of this chain.
    previous: List[ActionOutcome]
    options: JSON


@dataclass
class EvaluatorCall:
    """What an evaluator handler receives."""

    message: Memory
    state: State
    did_respond: bool
    responses: List[Memory]
    run_id: str


@dataclass
class Host:
    """What Init tells the plugin about its host."""

    version: str
    #: The protocol minor the host and this SDK both speak.
    protocol_minor: int
    #: Every method the plugin may call, by full gRPC name.
    features: List[str]
    #: The plugin's own folder (DATA_DIR/plugins/NAME).
    data_dir: str

    def offers(self, feature):
        """Whether the host offers a feature, e.g. "/agenthost.plugin.v1.Database/GetMemories"."""
        return feature in self.features


# ---- what a plugin declares ------------------------------------------------


@dataclass
class Setting:
    """A setting the plugin reads. The host sends a plugin only the settings
    it declares (and those a character grants it)."""

    name: str
    description: str = ""
    #: An agent without it does not start; the error names the setting.
    required: bool = False
    #: A credential: a key or a token.
    secret: bool = False
    #: What agent.setting() answers when the setting is not set.
    default: Optional[str] = None
    #: An address the plugin sends its secrets to, such as a base URL.
    endpoint: bool = False


@dataclass
class ExampleMessage:
    """One line of an example conversation."""

    name: str
    content: Content


@dataclass
class Provider:
    """Adds text and values to the state a prompt is built from:
    ``get(agent, message, state)`` returns a ProviderResult or a str."""

    name: str
    get: Callable[..., Any]
    description: str = ""
    #: Runs only when asked for by name.
    dynamic: bool = False
    #: Never in the default set and not advertised.
    private: bool = False
    #: Orders providers; lower first.
    position: int = 0


@dataclass
class Action:
    """Something the agent can do in answer to a message:
    ``handler(agent, call)`` returns an ActionResult, or None for success;
    ``validate(agent, message, state)`` says whether it is offered."""

    name: str
    handler: Callable[..., Any]
    description: str = ""
    similes: Sequence[str] = ()
    examples: Sequence[Sequence[ExampleMessage]] = ()
    validate: Optional[Callable[..., Any]] = None


@dataclass
class Evaluator:
    """Runs after the agent has responded (or chosen not to):
    ``handler(agent, call)``."""

    name: str
    handler: Callable[..., Any]
    description: str = ""
    similes: Sequence[str] = ()
    #: Runs even when the agent did not respond.
    always_run: bool = False
    validate: Optional[Callable[..., Any]] = None


@dataclass
class Model:
    """Serves one model type: ``handler(agent, request)`` returns a
    ModelResponse or a str. ``stream(agent, request, emit)``, if set,
    answers streamed calls: it emits text as it is made and returns the
    whole answer."""

    type: str
    handler: Callable[..., Any]
    #: Decides between plugins serving the same type; higher wins.
    priority: int = 0
    stream: Optional[Callable[..., Any]] = None


@dataclass
class EventHandler:
    """Handles one event type: ``handler(agent, event)``."""

    type: str
    handler: Callable[..., Any]


@dataclass
class Source:
    """A platform the plugin can send messages to: ``send(agent, target,
    content)`` delivers and returns the platform's message ids."""

    name: str
    send: Callable[..., Any]


@dataclass
class Route:
    """An HTTP route the daemon forwards to the plugin: requests to
    /hooks/{plugin}/{agentId}{path}. The daemon checks no API key there:
    authenticate the caller yourself. ``handler(agent, request)`` returns an
    HttpResponse, a str or bytes. method None means any."""

    path: str
    handler: Callable[..., Any]
    method: Optional[str] = None


@dataclass
class Plugin:
    """Everything a plugin offers. Names of actions, providers, evaluators
    and sources are the contract with characters and prompts: keep them
    stable.

    ``init(host)`` runs once per process. ``configure(agent)`` runs once per
    agent that uses the plugin and may return warnings; what it raises stops
    the agent; the agent it gets lives until the agent stops.
    ``unconfigure(agent)`` runs when an agent stops."""

    name: str
    version: str = ""
    description: str = ""
    aliases: Sequence[str] = ()
    settings: Sequence[Setting] = ()
    providers: Sequence[Provider] = ()
    actions: Sequence[Action] = ()
    evaluators: Sequence[Evaluator] = ()
    models: Sequence[Model] = ()
    events: Sequence[EventHandler] = ()
    sources: Sequence[Source] = ()
    routes: Sequence[Route] = ()
    init: Optional[Callable[..., Any]] = None
    configure: Optional[Callable[..., Any]] = None
    unconfigure: Optional[Callable[..., Any]] = None
