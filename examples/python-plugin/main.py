"""An agenthost plugin in Python: one provider and one action."""
from agenthost_sdk import Action, ActionResult, Content, Plugin, Provider, Setting, serve


def greeting(agent, message, state):
    return f"The Python example provider says {agent.setting('PY_EXAMPLE_GREETING')}."


def run(agent, call):
    # The agent's storage, through the host: how often the action ran for it.
    runs = int(agent.get_cache("py-example:runs") or 0) + 1
    agent.set_cache("py-example:runs", str(runs))
    text = f"PY_EXAMPLE_ACTION ran in Python for {agent.name} (run {runs})"
    agent.respond(Content(text=text, actions=["PY_EXAMPLE_ACTION"], in_reply_to=call.message.id))
    return ActionResult(text=text, values={"pyExampleRuns": runs})


serve(Plugin(
    name="python-example",
    version="0.1.0",
    description="An agenthost plugin written in Python: one provider and one action.",
    # The host sends a plugin only the settings it declares.
    settings=[Setting("PY_EXAMPLE_GREETING", "What the provider says.", default="hello from Python")],
    providers=[Provider("PY_EXAMPLE", greeting, description="A greeting from the Python example plugin.", position=10)],
    actions=[Action("PY_EXAMPLE_ACTION", run, similes=["PYTHON_EXAMPLE"],
                    description="Replies with a line from the Python example plugin, through the host.")],
))
