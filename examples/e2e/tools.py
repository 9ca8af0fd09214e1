"""Production implementations of the e2e agent's tools: a deterministic fake search
engine and page fetcher backed by ``pages.json`` (one page of which is empty, as a
JavaScript-rendered page fetched without a browser is).

Both take the tool arguments dict (the client calls ``impl(arguments)``) and check the
``Authorization: Bearer <key>`` header the agent passes in ``arguments["headers"]``
against ``RESEARCH_API_KEY``, as a real API would: the secret therefore travels in the
recorded arguments, and ``agent-replay generate`` must redact it.

Under the harness these functions are never called: the gateway answers from the
fixture's cassette.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List

PAGES_FILE = Path(__file__).resolve().parent / "pages.json"
KEY_ENV = "RESEARCH_API_KEY"


def _pages() -> List[Dict[str, Any]]:
    return json.loads(PAGES_FILE.read_text(encoding="utf-8"))["pages"]


def _error(text: str) -> Dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _unauthorized(arguments: Dict[str, Any]) -> bool:
    key = os.environ.get(KEY_ENV, "")
    auth = (arguments.get("headers") or {}).get("Authorization", "")
    return not key or auth != f"Bearer {key}"


def search(arguments: Dict[str, Any]) -> Dict[str, Any]:
    """``{"query", "limit", "headers"}`` → ``{"hits": [{"title", "url", "snippet"}]}``,
    pages ranked by how many of the query's words are among their keywords."""
    if _unauthorized(arguments):
        return _error("401 Unauthorized: missing or wrong API key")
    words = set(re.findall(r"[a-z0-9]+", str(arguments.get("query", "")).lower()))
    limit = int(arguments.get("limit", 5))
    scored = [(len(words & set(p["keywords"])), i, p) for i, p in enumerate(_pages())]
    ranked = [p for score, _, p in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0][:limit]
    return {"hits": [{"title": p["title"], "url": p["url"], "snippet": p["text"][:80]} for p in ranked]}


def fetch_page(arguments: Dict[str, Any]) -> Dict[str, Any]:
    """``{"url", "headers"}`` → ``{"url", "title", "status", "content_type", "text"}``."""
    if _unauthorized(arguments):
        return _error("401 Unauthorized: missing or wrong API key")
    for page in _pages():
        if page["url"] == arguments.get("url"):
            return {"url": page["url"], "title": page["title"], "status": 200,
                    "content_type": "text/plain", "text": page["text"]}
    return _error(f"404 Not Found: {arguments.get('url')}")
