"""agenthost_sdk: write agenthost plugins in Python.

A plugin is a plain value — the providers, actions, evaluators, models,
event handlers, message sources and HTTP routes it offers and the settings
it reads — and one ``serve()`` call::

    from agenthost_sdk import Plugin, Provider, serve

    serve(Plugin(name="hello", providers=[Provider("HELLO", lambda agent, message, state: "Say hello.")]))

serve() does the rest: go-plugin's handshake with AutoMTLS, the health,
controller and stdio services, and the agenthost protocol. Handlers are
plain functions (or coroutine functions) and receive an Agent bound to the
call they serve, through which they reach the host. README.md has the whole
API.
"""

from ._agent import DEFAULT_CALL_TIMEOUT, DEFAULT_MODEL_TIMEOUT, Agent
from ._errors import (
    AgentHostError,
    CancelledError,
    DeadlineExceededError,
    InvalidError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from ._log import Logger
from ._serve import CORE_PROTOCOL_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, PROTOCOL_VERSIONS, negotiate_version, serve
from ._server import MAX_MESSAGE_SIZE, PROTOCOL_MINOR
from ._types import (
    Action,
    ActionCall,
    ActionOutcome,
    ActionResult,
    Content,
    Entity,
    Evaluator,
    EvaluatorCall,
    Event,
    EventHandler,
    ExampleMessage,
    Host,
    HttpRequest,
    HttpResponse,
    LogEntry,
    Media,
    Memory,
    Model,
    ModelRequest,
    ModelResponse,
    Plugin,
    Provider,
    ProviderResult,
    Room,
    Route,
    Setting,
    Source,
    State,
    Target,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "Action", "ActionCall", "ActionOutcome", "ActionResult", "Agent", "AgentHostError", "CancelledError", "Content",
    "CORE_PROTOCOL_VERSION", "DeadlineExceededError", "DEFAULT_CALL_TIMEOUT", "DEFAULT_MODEL_TIMEOUT", "Entity",
    "Evaluator", "EvaluatorCall", "Event", "EventHandler", "ExampleMessage", "Host", "HttpRequest", "HttpResponse",
    "InvalidError", "LogEntry", "Logger", "MAGIC_COOKIE_KEY", "MAGIC_COOKIE_VALUE", "MAX_MESSAGE_SIZE", "Media",
    "Memory", "Model", "ModelRequest", "ModelResponse", "negotiate_version", "NotFoundError",
    "PermissionDeniedError", "Plugin", "PROTOCOL_MINOR", "PROTOCOL_VERSIONS", "Provider", "ProviderResult", "Room",
    "Route", "serve", "Setting", "Source", "State", "Target", "UnauthenticatedError", "UnavailableError",
    "UnimplementedError", "Usage",
]
