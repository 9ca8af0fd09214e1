#!/usr/bin/env python3
"""e2e research agent — the BUGGY build, as it ran in production.

Searches for the task's question, fetches every hit, writes ``out/report.md`` (one cited
sentence per source and a ``## Sources`` list), marks the task done in
``state/tasks.json`` and closes the run with the report in ``artifact_refs``.

BUG (a silent failure): when a fetched page comes back empty, ``first_sentence`` raises
``IndexError`` while the report is rendered; the ``except`` below swallows it, so the
report is never written — yet the run still closes ``succeeded`` and still claims
``out/report.md``. The ledger shows a success with ``failure_class: null``; only the
missing file tells. ``agent_fixed.py`` writes the report from the non-empty pages.

Production: tools run locally (``tools.py``) and the run is captured as a trace.
Under agent-replay: the same calls go to the gateway.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, List

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "clients" / "python"))
sys.path.insert(0, str(HERE))

import agent_replay as ar  # noqa: E402
import tools  # noqa: E402

REPORT = "out/report.md"
TASKS_FILE = "state/tasks.json"


def structured(result: Dict[str, Any]) -> Dict[str, Any]:
    data = result.get("structuredContent")
    return data if isinstance(data, dict) else {}


def first_sentence(text: str) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    return sentences[0]  # IndexError when the page is empty


def render_report(question: str, pages: List[Dict[str, Any]]) -> str:
    cited = " ".join(f"{first_sentence(p['text'])} [{n}]" for n, p in enumerate(pages, 1))
    sources = "\n".join(f"[{n}] {p['title']}. {p['url']}" for n, p in enumerate(pages, 1))
    return f"# Research: {question}\n\n{cited}\n\n## Sources\n\n{sources}\n"


def mark_task_done(task_id: str) -> None:
    path = Path(TASKS_FILE)
    if path.is_file():
        tasks = json.loads(path.read_text(encoding="utf-8"))
        if task_id in tasks:
            tasks[task_id]["status"] = "done"
            tasks[task_id]["report"] = REPORT
            path.write_text(json.dumps(tasks, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    envelope = ar.read_input()
    task = envelope.get("task") or {}
    task_id = str(envelope["task_id"])
    question = str(task["question"])
    headers = {"Authorization": f"Bearer {os.environ.get(tools.KEY_ENV, '')}"}

    with ar.run(envelope, agent="e2e") as run:
        found = run.call_tool("search", {"query": question, "limit": int(task.get("max_results", 3)),
                                         "headers": headers}, impl=tools.search, effect="read")
        if found.get("isError"):
            run.close_run("failed", {"task_id": task_id}, "adapter_auth", found["content"][0]["text"])
            return 1
        pages = []
        for hit in structured(found).get("hits", []):
            result = run.call_tool("fetch_page", {"url": hit["url"], "headers": headers},
                                   impl=tools.fetch_page, effect="read")
            if not result.get("isError"):
                pages.append(structured(result))
        run.record_event("checkpoint", {"step": "write", "pages": len(pages)})

        try:
            report = render_report(question, pages)
            Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
            Path(REPORT).write_text(report, encoding="utf-8")
            run.record_artifact(REPORT)
        except IndexError:
            pass  # BUG: "a formatting hiccup" — the report is silently never written

        mark_task_done(task_id)
        run.close_run("succeeded", {
            "task_id": task_id,
            "sources": [p["url"] for p in pages],
            "artifact_refs": [REPORT],
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
