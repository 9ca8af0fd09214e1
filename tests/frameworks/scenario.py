"""The one scenario every framework agent in this folder runs, and its scripted model.

The user asks for research and a saved report. The scripted model calls ``search_web``, then
``read_file("notes.txt")``, which fails. Broken (the default): it then claims "Saved the report to
out/report.md" without ever calling ``write_file`` -- a false claim, no file. Fixed: it calls
``write_file("out/report.md", ...)`` first. ``search_web``'s result carries a bearer token so that
redaction can be tested.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

USER_PROMPT = "Research the price of widget A and save a report to out/report.md"
INSTRUCTIONS = "You are a research agent."
MODEL_NAME = "gpt-4.1"
AGENT_NAME = "research_agent"

SEARCH_QUERY = "price of widget A"
SEARCH_RESULT = "widget A costs $42 (fetched with Authorization: Bearer sk-test-abcdef123456)"
NOTES_PATH = "notes.txt"
REPORT_PATH = "out/report.md"
REPORT_CONTENT = "# Widget A\n$42\n"
FINAL_ANSWER = "Saved the report to out/report.md"

# Placed in every agent's process so that no library finds a real key, or none at all.
os.environ.setdefault("OPENAI_API_KEY", "sk-dummy-offline")


def search_web(query: str) -> str:
    """Search the web and return the most relevant snippet.

    Args:
        query: What to search for.
    """
    return SEARCH_RESULT


def read_file(path: str) -> str:
    """Read a text file from the workspace.

    Args:
        path: Path of the file, relative to the workspace.
    """
    raise FileNotFoundError(2, "No such file or directory", path)


def write_file(path: str, content: str) -> str:
    """Write a text file into the workspace, creating parent directories.

    Args:
        path: Path of the file, relative to the workspace.
        content: The full text to write.
    """
    data = content.encode("utf-8")
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return f"wrote {len(data)} bytes"


TOOLS = (search_web, read_file, write_file)


def finish_replay(answer: str, guard: bool) -> None:
    """The end of a ``--replay`` run: print the model's final answer. ``guard`` is the fixed
    build, which does not take the model's word for the saved report and writes the report
    itself when the file the answer names is missing."""
    if guard and REPORT_PATH in answer and not os.path.exists(REPORT_PATH):
        write_file(REPORT_PATH, REPORT_CONTENT)
    print(answer)


@dataclass
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, str]


@dataclass
class Step:
    """What the scripted model answers: tool calls, or (when ``tool_calls`` is empty) ``text``."""

    tool_calls: list[ToolCall] = field(default_factory=list)
    text: str | None = None


def next_step(model_turn: int, fixed: bool) -> Step:
    """The scripted model's answer on its ``model_turn``-th call (0-based) in the run."""
    script = [
        Step([ToolCall("call_1", "search_web", {"query": SEARCH_QUERY})]),
        Step([ToolCall("call_2", "read_file", {"path": NOTES_PATH})]),
    ]
    if fixed:
        script.append(Step([ToolCall("call_3", "write_file", {"path": REPORT_PATH, "content": REPORT_CONTENT})]))
    script.append(Step(text=FINAL_ANSWER))
    if model_turn >= len(script):
        raise RuntimeError(f"scripted model called {model_turn + 1} times; the script has {len(script)} steps")
    return script[model_turn]


def usage(prompt_chars: int, step: Step) -> tuple[int, int]:
    """A deterministic stand-in for token usage: (input tokens, output tokens), ~4 characters a token."""
    out = len(step.text or "") + sum(len(c.name) + len(str(c.arguments)) for c in step.tool_calls)
    return max(1, prompt_chars // 4), max(1, out // 4)
