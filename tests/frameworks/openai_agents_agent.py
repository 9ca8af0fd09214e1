"""OpenAI Agents SDK agent, traced by OpenInference's OpenAI Agents instrumentation.

The Agents SDK has no OpenTelemetry of its own: it traces through its own ``TracingProcessor``
interface, and ``openinference-instrumentation-openai-agents`` is a ``TracingProcessor`` that turns
those spans into OpenTelemetry spans (it replaces the SDK's default processor, which would upload
traces to OpenAI).

The SDK ships no offline test model, and its LLM spans are made by the model classes themselves
(``OpenAIResponsesModel`` opens the ``response`` span), so a hand-written ``Model`` would emit only
what it chose to put in its span. Instead the agent uses the SDK's real default model class,
``OpenAIResponsesModel("gpt-4.1")``, over an ``AsyncOpenAI`` client whose HTTP transport is an
in-process ``MockTransport``: ``responses_api`` below answers ``POST /v1/responses`` from the script
in ``scenario.py``. Nothing leaves the process.

    python openai_agents_agent.py --trace OUT --format otlp-json|otlp-jsonl|protobuf-json [--no-content] [--fixed]

``--no-content`` is OpenInference's ``TraceConfig(hide_inputs=True, hide_outputs=True)`` (the
``OPENINFERENCE_HIDE_INPUTS`` / ``OPENINFERENCE_HIDE_OUTPUTS`` settings), as for LangGraph: content
becomes ``"__REDACTED__"``. ``--no-sensitive-data`` is the SDK's own switch instead,
``RunConfig(trace_include_sensitive_data=False)`` (``OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA=false``):
the SDK then keeps the data out of its spans, so OpenInference has nothing to record.

    python openai_agents_agent.py ... [--no-sensitive-data]
    python openai_agents_agent.py --replay [--guard]

``--replay`` is the same agent as it runs in production: the same ``OpenAIResponsesModel`` over a
plain ``AsyncOpenAI`` client (base URL and key from ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``,
which agent-replay sets; no retries), non-streaming, and no tracing: ``set_tracing_disabled(True)``,
so the SDK never tries to upload traces. ``--guard`` is the fixed build: it does not take the
model's word for the saved report, and writes the report itself when the file the answer names is
missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import otlp_file  # noqa: E402
import scenario  # noqa: E402

CREATED_AT = 1767225600  # fixed, so that the recorded responses are deterministic


def responses_api(fixed: bool):
    """The handler of the mock transport: a scripted stand-in for ``POST /v1/responses``."""
    import httpx2

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST" or not request.url.path.endswith("/responses"):
            return httpx2.Response(404, json={"error": {"message": f"not scripted: {request.url.path}"}})
        body = json.loads(request.content)
        items = body["input"] if isinstance(body["input"], list) else []
        turn = sum(1 for item in items if item.get("type") == "function_call")
        step = scenario.next_step(turn, fixed)
        if step.tool_calls:
            output: list[dict[str, Any]] = [
                {
                    "type": "function_call",
                    "id": f"fc_{c.call_id.removeprefix('call_')}",
                    "call_id": c.call_id,
                    "name": c.name,
                    "arguments": json.dumps(c.arguments),
                    "status": "completed",
                }
                for c in step.tool_calls
            ]
        else:
            output = [
                {
                    "type": "message",
                    "id": f"msg_{turn + 1}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": step.text, "annotations": []}],
                }
            ]
        input_tokens, output_tokens = scenario.usage(len(json.dumps(items)), step)
        response = {
            "id": f"resp_{turn + 1}",
            "object": "response",
            "created_at": CREATED_AT + turn,
            "status": "completed",
            "model": body["model"],
            "instructions": body.get("instructions"),
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "temperature": 1.0,
            "top_p": 1.0,
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "error": None,
            "incomplete_details": None,
            "metadata": {},
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
        }
        return httpx2.Response(200, json=response, headers={"x-request-id": f"req_{turn + 1}"})

    return handle


def replay(guard: bool) -> None:
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    agent = Agent(
        name=scenario.AGENT_NAME,
        instructions=scenario.INSTRUCTIONS,
        model=OpenAIResponsesModel(model=scenario.MODEL_NAME, openai_client=AsyncOpenAI(max_retries=0)),
        tools=[function_tool(f) for f in scenario.TOOLS],
    )
    result = Runner.run_sync(agent, scenario.USER_PROMPT)
    scenario.finish_replay(str(result.final_output), guard)


def main() -> None:
    if "--replay" in sys.argv[1:]:
        replay(guard="--guard" in sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    otlp_file.add_arguments(parser)
    parser.add_argument(
        "--no-sensitive-data",
        action="store_true",
        help="RunConfig(trace_include_sensitive_data=False): the SDK records no inputs or outputs",
    )
    args = parser.parse_args()

    provider = otlp_file.tracer_provider(args, "research-agent-openai-agents")
    from openinference.instrumentation import TraceConfig
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    config = TraceConfig(hide_inputs=True, hide_outputs=True) if args.no_content else TraceConfig()
    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider, config=config)

    import httpx2
    from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        api_key=os.environ["OPENAI_API_KEY"],
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(responses_api(args.fixed))),
        max_retries=0,
    )
    agent = Agent(
        name=scenario.AGENT_NAME,
        instructions=scenario.INSTRUCTIONS,
        model=OpenAIResponsesModel(model=scenario.MODEL_NAME, openai_client=client),
        # The SDK's default failure_error_function hands a tool's exception back to the model as
        # the tool's output and marks the function span as errored.
        tools=[function_tool(f) for f in scenario.TOOLS],
    )
    result = Runner.run_sync(
        agent,
        scenario.USER_PROMPT,
        run_config=RunConfig(trace_include_sensitive_data=not args.no_sensitive_data, workflow_name="research"),
    )
    OpenAIAgentsInstrumentor().uninstrument()  # ends the processor's open spans, if any
    provider.shutdown()
    print(result.final_output)


if __name__ == "__main__":
    main()
