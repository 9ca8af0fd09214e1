"""Pydantic AI agent, instrumented with Pydantic AI's own OpenTelemetry GenAI instrumentation.

The model is Pydantic AI's offline ``FunctionModel``, driven by the script in ``scenario.py``.

    python pydantic_ai_agent.py --trace OUT --format otlp-json|otlp-jsonl|protobuf-json [--no-content] [--fixed]
    python pydantic_ai_agent.py --replay [--guard]

``--no-content`` is ``InstrumentationSettings(include_content=False)``.

``--replay`` is the same agent as it runs in production: its model is OpenAI's chat
completions API (``OpenAIChatModel``, base URL and key from ``OPENAI_BASE_URL`` and
``OPENAI_API_KEY``, which agent-replay sets), no tracing. ``--guard`` is the fixed build: it
does not take the model's word for the saved report, and writes the report itself when the
file the answer names is missing.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import otlp_file  # noqa: E402
import scenario  # noqa: E402
from pydantic_ai import Agent, ToolFailed  # noqa: E402
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402
from pydantic_ai.models.instrumented import InstrumentationSettings  # noqa: E402
from pydantic_ai.usage import RequestUsage  # noqa: E402


def scripted_model(fixed: bool):
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        turn = sum(isinstance(m, ModelResponse) for m in messages)
        step = scenario.next_step(turn, fixed)
        if step.tool_calls:
            parts = [ToolCallPart(c.name, dict(c.arguments), tool_call_id=c.call_id) for c in step.tool_calls]
        else:
            parts = [TextPart(step.text)]
        prompt_chars = sum(
            len(p.args_as_json_str()) if isinstance(p, ToolCallPart) else len(str(getattr(p, "content", "")))
            for m in messages
            for p in m.parts
        )
        input_tokens, output_tokens = scenario.usage(prompt_chars, step)
        return ModelResponse(parts=parts, usage=RequestUsage(input_tokens=input_tokens, output_tokens=output_tokens))

    return FunctionModel(respond, model_name=scenario.MODEL_NAME)


def read_file(path: str) -> str:
    """Read a text file from the workspace.

    Args:
        path: Path of the file, relative to the workspace.
    """
    # An uncaught exception would abort the whole run in Pydantic AI; ToolFailed is its documented
    # way to hand a terminal tool failure back to the model (the tool span records it as an error).
    try:
        return scenario.read_file(path)
    except FileNotFoundError as e:
        raise ToolFailed(str(e)) from e


def replay(guard: bool) -> None:
    from pydantic_ai.models.openai import OpenAIChatModel

    agent = Agent(
        OpenAIChatModel(scenario.MODEL_NAME),
        name=scenario.AGENT_NAME,
        instructions=scenario.INSTRUCTIONS,
        tools=[scenario.search_web, read_file, scenario.write_file],
    )
    result = agent.run_sync(scenario.USER_PROMPT)
    scenario.finish_replay(result.output, guard)


def main() -> None:
    if "--replay" in sys.argv[1:]:
        replay(guard="--guard" in sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    otlp_file.add_arguments(parser)
    args = parser.parse_args()

    provider = otlp_file.tracer_provider(args, "research-agent-pydantic-ai")
    Agent.instrument_all(InstrumentationSettings(tracer_provider=provider, include_content=not args.no_content))
    agent = Agent(
        scripted_model(args.fixed),
        name=scenario.AGENT_NAME,
        instructions=scenario.INSTRUCTIONS,
        tools=[scenario.search_web, read_file, scenario.write_file],
    )
    result = agent.run_sync(scenario.USER_PROMPT)
    provider.shutdown()
    print(result.output)


if __name__ == "__main__":
    main()
