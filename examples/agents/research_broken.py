#!/usr/bin/env python3
"""research_broken — the research agent with the bugs agent-replay's fixtures catch.

Same job and the same happy path as ``research.py``, but with the kind of bugs real
agents ship: each one sits on a path that only some inputs take, so the agent looks fine
on most tasks. Every bug is marked ``BUG(<fixture>)`` with the fixture of
``fixtures/examples/`` that catches it:

    agent-replay run fixtures/examples --agent research="python3 examples/agents/research_broken.py"

Do not copy code from here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

import agent_replay as ar  # noqa: E402

REPORT = "out/report.md"
SOURCES_DIR = "out/sources"
TASKS_FILE = "state/tasks.json"
LEDGER_DIR = "state/ledger"
SUMMARY_MAX_CHARS = 280
MAX_SEARCH_PAGES = 20
MAX_BACKOFF_S = 0.5


class SearchFailed(Exception):
    pass


def result_text(result: Dict[str, Any]) -> str:
    return "\n".join(
        block.get("text", "") for block in result.get("content", []) if block.get("type") == "text"
    )


def structured(result: Dict[str, Any]) -> Dict[str, Any]:
    data = result.get("structuredContent")
    if isinstance(data, dict):
        return data
    try:
        parsed = json.loads(result_text(result))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def search(question: str, limit: int) -> Tuple[List[Dict[str, Any]], List[str]]:
    args: Dict[str, Any] = {"query": question, "limit": limit, "request_id": str(uuid.uuid4())}
    result = ar.call_tool("search", args)
    if result.get("isError"):
        raise SearchFailed(result_text(result) or "search failed")
    first = structured(result)
    hits = [h for h in first.get("hits", []) if isinstance(h, dict) and h.get("url")]
    warnings = [str(w) for w in first.get("warnings", [])]
    pages = 1
    while first.get("next_cursor") and pages < MAX_SEARCH_PAGES:
        # BUG(search_pagination_bounded): the loop keeps asking for the cursor of the
        # *first* page instead of the one the last page returned, so it never ends
        # before the page cap; each lap is another search call.
        args = {"query": question, "limit": limit, "cursor": first["next_cursor"], "request_id": str(uuid.uuid4())}
        page = structured(ar.call_tool("search", args))
        for hit in page.get("hits", []):
            if hit not in hits:
                hits.append(hit)
        pages += 1
    return hits, warnings


def fetch(url: str) -> Tuple[Optional[Dict[str, Any]], str]:
    while True:
        try:
            result = ar.call_tool("fetch_page", {"url": url})
        except ar.ToolError as exc:
            return None, str(exc)
        if not result.get("isError"):
            return structured(result), ""
        retry_after = structured(result).get("retry_after")
        if retry_after is None:
            return None, result_text(result) or "fetch failed"
        # BUG(rate_limited_page_gives_up): retries a rate-limited page forever; no cap
        # on attempts, so an upstream that stays at 429 hangs the run.
        time.sleep(min(float(retry_after), MAX_BACKOFF_S))


def page_text(page: Dict[str, Any]) -> str:
    # BUG(html_page_text_extracted): ignores content_type, so an HTML page lands in
    # the report as markup, navigation and scripts included.
    return " ".join(str(page.get("text") or "").split())


def sentences(text: str, count: int) -> List[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s][:count]


def render_markdown(text: str) -> str:
    """Stands in for a native markdown escaper (a C extension in the real agent)."""
    if any(ord(ch) > 0xFFFF for ch in text):
        # BUG(emoji_page_no_crash): the native escaper reads past its buffer on
        # characters outside the Basic Multilingual Plane and segfaults the agent.
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file in the workspace
        except (ImportError, ValueError, OSError):
            pass
        os.kill(os.getpid(), signal.SIGSEGV)
    return text


def render_report(question: str, task_id: str, sources: List[Dict[str, Any]], style: str) -> str:
    title = f"# Research: {question}\n\n"
    if not sources:
        # BUG(report_not_empty_when_no_hits): the no-source case was never written;
        # the caller still creates the file, so it ends up empty.
        return ""
    cited = " ".join(f"{sentences(s['text'], 1)[0]} [{s['n']}]" for s in sources)
    source_list = "\n".join(f"[{s['n']}] {s['title']}. {s['url']}" for s in sources)
    if style == "brief":
        # BUG(brief_report_keeps_sources): the brief template drops the citation markers
        # and the Sources section.
        plain = " ".join(sentences(s["text"], 1)[0] for s in sources)
        return f"{title}{plain}\n"
    findings = "\n\n".join(
        f"### {s['title']} [{s['n']}]\n\n" + " ".join(sentences(s["text"], 3)) for s in sources
    )
    return render_markdown(
        f"{title}Task {task_id}: {len(sources)} sources consulted.\n\n"
        f"## Summary\n\n{cited}\n\n## Findings\n\n{findings}\n\n## Sources\n\n{source_list}\n"
    )


def save_source(path: str, source: Dict[str, Any]) -> None:
    Path(SOURCES_DIR).mkdir(parents=True, exist_ok=True)
    Path(path).write_text(f"# {source['title']}\n\n{source['url']}\n\n{source['text']}\n", encoding="utf-8")


def mark_task_done(task_id: str, attempt: int) -> None:
    path = Path(TASKS_FILE)
    if not path.is_file():
        return
    # BUG(retry_attempt_marks_task_done): assumes a retry's task was already moved by
    # the first attempt, so attempts after the first leave it in_progress.
    if attempt > 1:
        return
    tasks = json.loads(path.read_text(encoding="utf-8"))
    if task_id not in tasks:
        return
    tasks[task_id]["status"] = "done"
    tasks[task_id]["report"] = REPORT
    path.write_text(json.dumps(tasks, indent=2) + "\n", encoding="utf-8")


def append_ledger(task_id: str) -> None:
    # BUG(ledger_left_to_harness): when the workspace carries the production ledger,
    # the agent appends its own line to it; the ledger is the harness's to write.
    ledger = Path(LEDGER_DIR)
    if ledger.is_dir():
        with open(ledger / "runs.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"task_id": task_id, "status": "SUCCEEDED", "by": "research"}) + "\n")


def notify(to: str, task_id: str, question: str, summary: str) -> Optional[str]:
    text = f"Research for {task_id} is ready: {summary}"
    if "@" in to:
        # BUG(email_notify_uses_send_message): the e-mail path still calls the retired
        # send_email tool, which this agent is not allowed to use any more.
        try:
            ar.call_tool("send_email", {"to": to, "subject": f"Research ready: {question}", "body": text})
        except ar.ToolError as exc:
            ar.record_event("notify_failed", {"to": to, "error": str(exc)})
            return None
        return to
    for _ in range(3):
        try:
            result = ar.call_tool("send_message", {"channel": "slack", "to": to, "text": text})
        except ar.ToolError as exc:
            ar.record_event("notify_failed", {"to": to, "error": str(exc)})
            return None
        # BUG(slack_notify_sent_once): looks for an "ok" flag the tool never returns
        # (it says status: "sent"), takes the success for a failure and sends again.
        if structured(result).get("ok"):
            return to
    return None


def open_pr(repo: str, task_id: str, summary: str) -> Tuple[Optional[str], Optional[str]]:
    head = f"research/{task_id.lower()}"
    args = {"repo": repo, "base": "main", "head": head, "title": f"Research report for {task_id}", "body": summary}
    result = ar.call_tool("github.create_pr", args)
    # BUG(pr_url_only_when_pr_created): never looks at isError and falls back to a
    # guessed URL, so the output claims a PR that does not exist.
    url = structured(result).get("html_url") or f"https://github.com/{repo}/pull/new/{head}"
    return str(url), None


def run() -> int:
    envelope = ar.read_input()
    task_id = str(envelope["task_id"])
    attempt = int(envelope.get("attempt", 1))
    task = envelope.get("task") or {}
    question = str(task["question"])
    max_sources = int(task.get("max_sources", 3))
    style = str(task.get("style", "full"))
    ar.start_run(task_id=task_id, agent=envelope.get("agent"))

    ar.record_event("checkpoint", {"step": "search"})
    seeds = [{"url": u, "title": u} for u in task.get("urls", [])]
    if seeds:
        # BUG(seeded_urls_still_searched): with seed URLs the search is skipped as an
        # "optimisation", so the recorded search and the pages it found go unused.
        hits: List[Dict[str, Any]] = []
        warnings: List[str] = []
    else:
        try:
            hits, warnings = search(question, int(task.get("max_results", 5)))
        except SearchFailed as exc:
            # BUG(search_error_closes_failed): bails out without closing the run.
            print(f"search failed: {exc}", file=sys.stderr)
            return 0

    candidates = seeds + hits
    to_fetch = [h for h in candidates if not h.get("paywalled")][:max_sources]
    sources: List[Dict[str, Any]] = []
    evidence: List[str] = []
    for i, hit in enumerate(to_fetch, 1):
        path = f"{SOURCES_DIR}/{i}.md"
        # BUG(evidence_only_fetched_pages): the evidence path is claimed before the
        # fetch is known to have succeeded.
        evidence.append(path)
        page, why = fetch(hit["url"])
        if page is None:
            ar.record_event("source_skipped", {"url": hit["url"], "why": why})
            continue
        text = page_text(page)
        if not text:
            # BUG(report_written_when_page_empty): an empty page aborts the write step
            # but the run still closes succeeded, claiming the report.
            sources = []
            break
        source = {"n": len(sources) + 1, "url": hit["url"], "title": page.get("title") or hit["url"], "text": text}
        save_source(path, source)
        sources.append(source)
    else:
        Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
        # BUG(cited_sources_were_fetched): paywalled hits are not fetched but are still
        # cited, with the search snippet standing in for the page.
        for hit in candidates:
            if hit.get("paywalled") and hit.get("snippet"):
                sources.append({"n": len(sources) + 1, "url": hit["url"], "title": hit.get("title") or hit["url"], "text": hit["snippet"]})
        Path(REPORT).write_text(render_report(question, task_id, sources, style), encoding="utf-8")
        ar.record_artifact(REPORT)

    summary: Optional[str] = " ".join(sentences(s["text"], 1)[0] for s in sources) or "No usable sources were found."
    if summary is not None and len(summary) > SUMMARY_MAX_CHARS:
        # BUG(long_summary_kept_in_output): a summary over the limit is dropped instead
        # of truncated, and None values are filtered out of the output below.
        summary = None
    output: Dict[str, Any] = {
        "task_id": task_id,
        "summary": summary,
        "sources": [{"n": s["n"], "title": s["title"], "url": s["url"]} for s in sources],
        "evidence_paths": evidence,
        "artifact_refs": [REPORT],
    }
    if warnings:
        output["warnings"] = warnings
    if task.get("notify"):
        output["notified"] = notify(str(task["notify"]), task_id, question, summary or "")
    if task.get("open_pr"):
        output["pr_url"], output["pr_error"] = open_pr(str(task["repo"]), task_id, summary or "")

    mark_task_done(task_id, attempt)
    append_ledger(task_id)
    ar.close_run("succeeded", {k: v for k, v in output.items() if v is not None})
    # BUG(upstream_warnings_exit_zero): upstream warnings turn into exit status 3
    # ("completed with warnings"), which the scheduler reads as a crash.
    return 3 if warnings else 0


if __name__ == "__main__":
    sys.exit(run())
