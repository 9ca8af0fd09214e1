"""LangGraph ReAct agent, traced by OpenInference's LangChain instrumentation.

The graph is the canonical LangGraph tool loop (``StateGraph(MessagesState)``, a model node, a
``ToolNode`` and ``tools_condition``). The chat model is an offline ``BaseChatModel`` subclass with
``bind_tools`` whose answers come from the script in ``scenario.py``.

    python langgraph_agent.py --trace OUT --format otlp-json|otlp-jsonl|protobuf-json [--no-content] [--fixed]
    python langgraph_agent.py --replay [--guard]

``--no-content`` is OpenInference's ``TraceConfig(hide_inputs=True, hide_outputs=True)`` (the
``OPENINFERENCE_HIDE_INPUTS`` / ``OPENINFERENCE_HIDE_OUTPUTS`` settings).

``--replay`` is the same graph as it runs in production: its model is langchain-openai's
``ChatOpenAI("gpt-4.1")`` on OpenAI's chat completions API (base URL and key from
``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``, which agent-replay sets), not streaming, no retries,
no tracing. ``--guard`` is the fixed build: it does not take the model's word for the saved
report, and writes the report itself when the file the answer names is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import otlp_file  # noqa: E402
import scenario  # noqa: E402
from openinference.instrumentation import TraceConfig  # noqa: E402
from openinference.instrumentation.langchain import LangChainInstrumentor  # noqa: E402


def build_graph(fixed: bool, replay: bool = False):
    """The agent's graph. Its model is the scripted one, or with ``replay`` the real ``ChatOpenAI``."""
    # Imported after instrumenting, as an application would.
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import tool
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    class ScriptedChatModel(BaseChatModel):
        """An offline chat model: answers from ``scenario.next_step``, calls tools like an OpenAI model."""

        model_name: str = scenario.MODEL_NAME
        fixed: bool = False

        @property
        def _llm_type(self) -> str:
            return "scripted-chat"

        @property
        def _identifying_params(self) -> dict[str, Any]:
            return {"model_name": self.model_name}

        def bind_tools(self, tools, **kwargs: Any):
            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> ChatResult:
            turn = sum(isinstance(m, AIMessage) for m in messages)
            step = scenario.next_step(turn, self.fixed)
            input_tokens, output_tokens = scenario.usage(sum(len(str(m.content)) for m in messages), step)
            message = AIMessage(
                content=step.text or "",
                tool_calls=[
                    {"name": c.name, "args": dict(c.arguments), "id": c.call_id, "type": "tool_call"}
                    for c in step.tool_calls
                ],
                usage_metadata={
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "total_tokens": input_tokens + output_tokens,
                },
                response_metadata={
                    "model_name": self.model_name,
                    "finish_reason": "tool_calls" if step.tool_calls else "stop",
                },
                id=f"run-scripted-{turn}",
            )
            return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": self.model_name})

    tools = [tool(f) for f in scenario.TOOLS]
    if replay:
        from langchain_openai import ChatOpenAI

        # use_responses_api=False: chat completions, as recorded; disable_streaming: one plain
        # (non-streamed) request per model turn, whatever callbacks are attached.
        chat_model = ChatOpenAI(
            model=scenario.MODEL_NAME,
            use_responses_api=False,
            streaming=False,
            disable_streaming=True,
            max_retries=0,
        )
    else:
        chat_model = ScriptedChatModel(fixed=fixed)
    model = chat_model.bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke([SystemMessage(scenario.INSTRUCTIONS), *state["messages"]])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    # handle_tool_errors=True: a tool's exception goes back to the model as an error ToolMessage
    # (LangGraph's default re-raises anything but argument errors, which would end the run).
    builder.add_node("tools", ToolNode(tools, handle_tool_errors=True))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(name=scenario.AGENT_NAME)


def replay(guard: bool) -> None:
    from langchain_core.messages import HumanMessage

    graph = build_graph(fixed=False, replay=True)
    result = graph.invoke({"messages": [HumanMessage(scenario.USER_PROMPT)]})
    scenario.finish_replay(str(result["messages"][-1].text), guard)


def main() -> None:
    if "--replay" in sys.argv[1:]:
        replay(guard="--guard" in sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    otlp_file.add_arguments(parser)
    args = parser.parse_args()

    provider = otlp_file.tracer_provider(args, "research-agent-langgraph")
    config = TraceConfig(hide_inputs=True, hide_outputs=True) if args.no_content else TraceConfig()
    LangChainInstrumentor().instrument(tracer_provider=provider, config=config)

    from langchain_core.messages import HumanMessage

    graph = build_graph(args.fixed)
    result = graph.invoke({"messages": [HumanMessage(scenario.USER_PROMPT)]})
    provider.shutdown()
    print(result["messages"][-1].content)


if __name__ == "__main__":
    main()
