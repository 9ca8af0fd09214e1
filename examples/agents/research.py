#!/usr/bin/env python3
"""research — a small research agent, the example that agent-replay's fixtures judge.

It reads a task envelope on stdin (``task.question`` plus optional knobs), searches,
fetches the pages it found, writes ``out/report.md`` with numbered citations and a
``## Sources`` section, keeps a copy of every page it used under ``out/sources/`` (its
evidence), marks the task ``done`` in ``state/tasks.json`` and closes the run.

Optional behaviour, steered by the task payload so that fixtures can exercise it:

* ``urls``: pages to read in addition to what the search finds (the search still runs).
* ``max_sources`` (default 3), ``max_results`` (search ``limit``, default 5).
* ``style``: ``"full"`` (default) or ``"brief"`` (summary and sources only).
* ``notify``: an e-mail address or a ``#channel``; a message is sent with the
  ``send_message`` tool once the report exists.
* ``open_pr`` with ``repo``: propose the report as a pull request (``github.create_pr``);
  ``pr_url`` is put in the output only when the tool confirmed the PR.

Its working directory is the run's workspace; it writes nothing outside ``out/`` and
``state/tasks.json``. All tool calls go through the agent_replay client, so the same
code runs in production and under the harness.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.dont_write_bytecode = True  # keep the client folder free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

import agent_replay as ar  # noqa: E402

REPORT = "out/report.md"
SOURCES_DIR = "out/sources"
TASKS_FILE = "state/tasks.json"
SUMMARY_MAX_CHARS = 280
MAX_SEARCH_PAGES = 5
FETCH_ATTEMPTS = 3
MAX_BACKOFF_S = 0.5  # a research run has a tight budget: never sleep long on a retry


class SearchFailed(Exception):
    """The search tool answered with isError: nothing to research from."""


# --------------------------------------------------------------------------- tools


def result_text(result: Dict[str, Any]) -> str:
    """The text blocks of a CallToolResult, joined."""
    return "\n".join(
        block.get("text", "") for block in result.get("content", []) if block.get("type") == "text"
    )


def structured(result: Dict[str, Any]) -> Dict[str, Any]:
    """structuredContent, or the text content parsed as JSON (older MCP servers)."""
    data = result.get("structuredContent")
    if isinstance(data, dict):
        return data
    try:
        parsed = json.loads(result_text(result))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def search(question: str, limit: int) -> Tuple[List[Dict[str, Any]], List[str]]:
    """All hits for the question, following the result cursor for a few pages."""
    hits: List[Dict[str, Any]] = []
    warnings: List[str] = []
    cursor: Optional[str] = None
    for _ in range(MAX_SEARCH_PAGES):
        args: Dict[str, Any] = {"query": question, "limit": limit, "request_id": str(uuid.uuid4())}
        if cursor:
            args["cursor"] = cursor
        result = ar.call_tool("search", args)
        if result.get("isError"):
            raise SearchFailed(result_text(result) or "search failed")
        page = structured(result)
        hits.extend(h for h in page.get("hits", []) if isinstance(h, dict) and h.get("url"))
        warnings.extend(str(w) for w in page.get("warnings", []))
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return hits, warnings


def fetch(url: str) -> Tuple[Optional[Dict[str, Any]], str]:
    """The page at url, or (None, why) when it cannot be had within the budget."""
    why = ""
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        try:
            result = ar.call_tool("fetch_page", {"url": url})
        except ar.ToolError as exc:
            return None, str(exc)
        if not result.get("isError"):
            return structured(result), ""
        why = result_text(result) or "fetch failed"
        retry_after = structured(result).get("retry_after")
        if retry_after is None or attempt == FETCH_ATTEMPTS:
            break
        time.sleep(min(float(retry_after), MAX_BACKOFF_S))
    return None, why


# ------------------------------------------------------------------------ text work


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page, without scripts, styles and navigation."""

    # h1 repeats the page title, which the report already shows as the source's name.
    SKIP = {"script", "style", "nav", "header", "footer", "noscript", "head", "h1"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: List[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def page_text(page: Dict[str, Any]) -> str:
    """Plain text of a fetched page, whitespace normalised."""
    text = str(page.get("text") or "")
    if "html" in str(page.get("content_type", "")).lower():
        extractor = _TextExtractor()
        extractor.feed(text)
        extractor.close()
        text = " ".join(extractor.parts)
    return " ".join(text.split())


def sentences(text: str, count: int) -> List[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s][:count]


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------- the report


def render_report(question: str, task_id: str, sources: List[Dict[str, Any]], style: str) -> str:
    title = f"# Research: {question}\n\n"
    if not sources:
        return (
            title
            + "No usable sources were found for this question, so there is nothing to summarise yet.\n\n"
            + "## Sources\n\nNone: the search returned no usable pages.\n"
        )
    cited = " ".join(f"{sentences(s['text'], 1)[0]} [{s['n']}]" for s in sources)
    source_list = "\n".join(f"[{s['n']}] {s['title']}. {s['url']}" for s in sources)
    if style == "brief":
        return f"{title}{cited}\n\n## Sources\n\n{source_list}\n"
    findings = "\n\n".join(
        f"### {s['title']} [{s['n']}]\n\n" + " ".join(sentences(s["text"], 3)) for s in sources
    )
    return (
        f"{title}Task {task_id}: {len(sources)} sources consulted.\n\n"
        f"## Summary\n\n{cited}\n\n## Findings\n\n{findings}\n\n## Sources\n\n{source_list}\n"
    )


def save_source(source: Dict[str, Any]) -> str:
    path = f"{SOURCES_DIR}/{source['n']}.md"
    Path(SOURCES_DIR).mkdir(parents=True, exist_ok=True)
    Path(path).write_text(f"# {source['title']}\n\n{source['url']}\n\n{source['text']}\n", encoding="utf-8")
    return path


def mark_task_done(task_id: str) -> None:
    """Move the task to done; a workspace without the task file has no state to keep."""
    path = Path(TASKS_FILE)
    if not path.is_file():
        return
    tasks = json.loads(path.read_text(encoding="utf-8"))
    if task_id not in tasks:
        return
    tasks[task_id]["status"] = "done"
    tasks[task_id]["report"] = REPORT
    path.write_text(json.dumps(tasks, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------- side effects


def notify(to: str, task_id: str, question: str, summary: str) -> Optional[str]:
    """Tell a person or channel the report exists; returns the recipient when sent."""
    args: Dict[str, Any] = {"to": to, "text": f"Research for {task_id} is ready: {summary}"}
    if to.startswith("#"):
        args["channel"] = "slack"
    else:
        args.update(channel="email", subject=f"Research ready: {question}")
    try:
        result = ar.call_tool("send_message", args)
    except ar.ToolError as exc:
        ar.record_event("notify_failed", {"to": to, "error": str(exc)})
        return None
    if result.get("isError") or structured(result).get("status") != "sent":
        ar.record_event("notify_failed", {"to": to, "error": result_text(result)})
        return None
    return to


def open_pr(repo: str, task_id: str, summary: str) -> Tuple[Optional[str], Optional[str]]:
    """Propose the report as a PR; (url, None) when confirmed, (None, error) otherwise."""
    args = {
        "repo": repo,
        "base": "main",
        "head": f"research/{task_id.lower()}",
        "title": f"Research report for {task_id}",
        "body": summary,
    }
    try:
        result = ar.call_tool("github.create_pr", args)
    except ar.ToolError as exc:
        return None, str(exc)
    if result.get("isError"):
        return None, result_text(result) or "create_pr failed"
    url = structured(result).get("html_url")
    return (str(url), None) if url else (None, "create_pr returned no URL")


def failure_class_of(message: str) -> str:
    if "429" in message or "rate limit" in message.lower():
        return "rate_limited"
    if "401" in message or "403" in message:
        return "adapter_auth"
    return "host_network"


# ----------------------------------------------------------------------------- run


def run() -> int:
    envelope = ar.read_input()
    task_id = str(envelope["task_id"])
    task = envelope.get("task") or {}
    question = str(task["question"])
    max_sources = int(task.get("max_sources", 3))
    style = str(task.get("style", "full"))
    ar.start_run(task_id=task_id, agent=envelope.get("agent"))

    ar.record_event("checkpoint", {"step": "search"})
    try:
        hits, warnings = search(question, int(task.get("max_results", 5)))
    except SearchFailed as exc:
        reason = str(exc)
        ar.close_run("failed", {"task_id": task_id}, failure_class_of(reason), reason)
        return 1
    for warning in warnings:
        ar.record_event("upstream_warning", {"tool": "search", "warning": warning})

    candidates = [{"url": u, "title": u} for u in task.get("urls", [])] + hits
    seen = set()
    sources: List[Dict[str, Any]] = []
    ar.record_event("checkpoint", {"step": "fetch", "candidates": len(candidates)})
    for hit in candidates:
        if len(sources) >= max_sources:
            break
        url = hit["url"]
        if url in seen:
            continue
        seen.add(url)
        if hit.get("paywalled"):
            ar.record_event("source_skipped", {"url": url, "why": "paywalled"})
            continue
        page, why = fetch(url)
        if page is None:
            ar.record_event("source_skipped", {"url": url, "why": why})
            continue
        text = page_text(page)
        if not text:
            ar.record_event("source_skipped", {"url": url, "why": "empty page"})
            continue
        source = {"n": len(sources) + 1, "url": url, "title": page.get("title") or hit.get("title") or url, "text": text}
        source["path"] = save_source(source)
        sources.append(source)

    summary = " ".join(sentences(s["text"], 1)[0] for s in sources) or "No usable sources were found."
    summary = truncate(summary, SUMMARY_MAX_CHARS)
    Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
    Path(REPORT).write_text(render_report(question, task_id, sources, style), encoding="utf-8")
    ar.record_artifact(REPORT)

    output: Dict[str, Any] = {
        "task_id": task_id,
        "summary": summary,
        "sources": [{"n": s["n"], "title": s["title"], "url": s["url"]} for s in sources],
        "evidence_paths": [s["path"] for s in sources],
        "artifact_refs": [REPORT],
    }
    if warnings:
        output["warnings"] = warnings
    if task.get("notify"):
        sent_to = notify(str(task["notify"]), task_id, question, summary)
        if sent_to:
            output["notified"] = sent_to
    if task.get("open_pr"):
        pr_url, pr_error = open_pr(str(task["repo"]), task_id, summary)
        if pr_url:
            output["pr_url"] = pr_url
        else:
            output["pr_error"] = pr_error

    mark_task_done(task_id)
    ar.close_run("succeeded", output)
    return 0


def main() -> int:
    try:
        return run()
    except Exception as exc:  # close the run honestly rather than leave it open
        try:
            ar.close_run("failed", None, "unknown", f"{type(exc).__name__}: {exc}")
        except Exception:
            pass
        raise


if __name__ == "__main__":
    sys.exit(main())
