#!/usr/bin/env python3
"""e2e research agent — the FIXED build.

Searches for the task's question, fetches every hit, writes ``out/report.md`` (one cited
sentence per source and a ``## Sources`` list), marks the task done in
``state/tasks.json`` and closes the run with the report in ``artifact_refs``.

The fix for the silent failure of ``agent.py``: empty pages are skipped (and said so
with a ``source_skipped`` event) and the report is written from the pages that have
text; when none has, the run closes ``failed`` instead of claiming a report it never
wrote.

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
            if result.get("isError"):
                continue
            page = structured(result)
            if not str(page.get("text") or "").strip():
                run.record_event("source_skipped", {"url": hit["url"], "why": "empty page"})
                continue
            pages.append(page)
        run.record_event("checkpoint", {"step": "write", "pages": len(pages)})

        if not pages:
            run.close_run("failed", {"task_id": task_id, "sources": []}, "unknown",
                          "every fetched page was empty: nothing to report")
            return 1
        Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
        Path(REPORT).write_text(render_report(question, pages), encoding="utf-8")
        run.record_artifact(REPORT)

        mark_task_done(task_id)
        run.close_run("succeeded", {
            "task_id": task_id,
            "sources": [p["url"] for p in pages],
            "artifact_refs": [REPORT],
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
