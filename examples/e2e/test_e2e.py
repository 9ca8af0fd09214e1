"""Checks of the e2e example: the committed trace is what the walkthrough needs, capture
reproduces it, and — replayed from the trace's own tool calls by a small stand-in for the
gateway — the buggy agent claims a report it never wrote while the fixed one writes it
making exactly the recorded calls (so a fixture generated from the trace can prove the fix).

    python3 -m unittest discover -s examples/e2e -p 'test_*.py'
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path
from typing import Any, Dict, List, Tuple

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "clients" / "python"))

import agent_replay as ar  # noqa: E402

TRACE = HERE / "trace.jsonl"
SECRET = "sk-test-abcdefghijklmnop1234"
EMPTY_PAGE = "https://blog.example.dev/retry-storms"


def read_trace(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def calls_of(trace: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
    return [(l["tool"], json.dumps(l["arguments"], sort_keys=True)) for l in trace if l["type"] == "tool_call"]


def capture(agent: str) -> Tuple[subprocess.CompletedProcess, List[Dict[str, Any]]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace.jsonl"
        proc = subprocess.run([sys.executable, str(HERE / "capture.py"), "--agent", str(HERE / agent), "--out", str(out)],
                              capture_output=True, text=True, timeout=120)
        return proc, read_trace(out) if out.exists() else []


class CommittedTraceTest(unittest.TestCase):
    def setUp(self) -> None:
        self.trace = read_trace(TRACE)

    def test_start_line(self) -> None:
        start = self.trace[0]
        self.assertEqual(list(start), ["type", "run", "input", "workspace"])
        self.assertEqual(list(start["run"]), list(ar.RECORD_FIELDS))
        self.assertEqual(start["input"], json.loads((HERE / "task.json").read_text(encoding="utf-8")))
        self.assertEqual(start["run"]["input_sha256"], hashlib.sha256(ar.envelope_bytes(start["input"])).hexdigest())
        first_line = TRACE.read_bytes().split(b"\n", 1)[0]
        self.assertIn(b',"input":' + ar.envelope_bytes(start["input"]) + b',"workspace":', first_line)
        snap = start["workspace"]["state/tasks.json"]
        self.assertEqual(base64.b64decode(snap["content_b64"]), (HERE / "workspace/state/tasks.json").read_bytes())
        self.assertEqual(start["run"]["agent_name"], "e2e")

    def test_a_silent_failure(self) -> None:
        close = self.trace[-1]
        self.assertEqual(close["type"], "close")
        self.assertEqual(close["status"], "succeeded")
        self.assertIsNone(close["failure_class"])
        self.assertIsNone(self.trace[0]["run"]["failure_class"])
        self.assertEqual(close["output"]["artifact_refs"], ["out/report.md"])
        self.assertFalse([l for l in self.trace if l["type"] == "artifact"], "the report was never written")

    def test_calls_carry_the_secret_and_the_empty_page(self) -> None:
        calls = [l for l in self.trace if l["type"] == "tool_call"]
        self.assertEqual([c["tool"] for c in calls], ["search", "fetch_page", "fetch_page", "fetch_page"])
        self.assertEqual([c["seq"] for c in calls], [1, 2, 3, 4])
        for c in calls:
            self.assertEqual(c["arguments"]["headers"], {"Authorization": f"Bearer {SECRET}"})
            self.assertEqual(c["effect"], "read")
        empty = [c for c in calls if c["arguments"].get("url") == EMPTY_PAGE]
        self.assertEqual(empty[0]["result"]["structuredContent"]["text"], "")


class CaptureTest(unittest.TestCase):
    def test_capture_reproduces_the_committed_trace(self) -> None:
        proc, trace = capture("agent.py")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("out/report.md MISSING", proc.stdout)
        self.assertEqual(calls_of(trace), calls_of(read_trace(TRACE)))
        self.assertEqual(trace[-1]["status"], "succeeded")

    def test_fixed_agent_makes_the_same_calls_and_writes_the_report(self) -> None:
        proc, trace = capture("agent_fixed.py")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("out/report.md exists", proc.stdout)
        self.assertEqual(calls_of(trace), calls_of(read_trace(TRACE)))
        artifacts = [l for l in trace if l["type"] == "artifact"]
        self.assertEqual(artifacts[0]["path"], "out/report.md")
        self.assertGreater(artifacts[0]["bytes"], 0)


class CassetteGateway:
    """Answers tools/call from the trace's recorded calls (exact arguments, each once)."""

    def __init__(self, path: str, trace: List[Dict[str, Any]]) -> None:
        self.recorded = [[l["tool"], l["arguments"], l["result"], False] for l in trace if l["type"] == "tool_call"]
        self.unrecorded: List[Any] = []
        self.artifacts: List[str] = []
        self.close: Any = None
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen()
        threading.Thread(target=self.serve, daemon=True).start()

    def answer(self, method: str, params: Dict[str, Any]) -> Dict[str, Any]:
        if method == "tools/call":
            for rec in self.recorded:
                if not rec[3] and rec[0] == params["name"] and rec[1] == params["arguments"]:
                    rec[3] = True
                    return {"result": rec[2]}
            self.unrecorded.append(params)
            return {"error": {"code": -32001, "message": "unrecorded", "data": {"tool": params["name"], "reason": "unrecorded"}}}
        if method == "run/artifact":
            self.artifacts.append(params["path"])
            return {"result": {"sha256": None, "bytes": 0}}
        if method == "run/close":
            self.close = params
        return {"result": {}}

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                for raw in reader:
                    req = json.loads(raw)
                    reply = {"jsonrpc": "2.0", "id": req["id"], **self.answer(req["method"], req.get("params") or {})}
                    conn.sendall(json.dumps(reply).encode() + b"\n")


class ReplayTest(unittest.TestCase):
    """What `prove` will show, without the Rust harness: same cassette, two builds."""

    def replay(self, agent: str) -> Tuple[CassetteGateway, Path, subprocess.CompletedProcess]:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        root = Path(tmp.name)
        trace = read_trace(TRACE)
        workspace = root / "ws"
        for rel, snap in trace[0]["workspace"].items():
            (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
            (workspace / rel).write_bytes(base64.b64decode(snap["content_b64"]))
        gateway = CassetteGateway(str(root / "gw.sock"), trace)
        self.addCleanup(gateway.server.close)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_REPLAY_")}
        env.update(AGENT_REPLAY_SOCKET=str(root / "gw.sock"), AGENT_REPLAY_RUN_ID="replay-1",
                   RESEARCH_API_KEY=SECRET, PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.run([sys.executable, str(HERE / agent)], cwd=workspace, env=env, capture_output=True,
                              input=ar.envelope_bytes(trace[0]["input"]), timeout=120)
        return gateway, workspace, proc

    def test_buggy_agent_claims_a_report_it_never_wrote(self) -> None:
        gateway, workspace, proc = self.replay("agent.py")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(gateway.unrecorded, [])
        self.assertEqual(gateway.close["status"], "succeeded")
        self.assertEqual(gateway.close["output"]["artifact_refs"], ["out/report.md"])
        self.assertFalse((workspace / "out/report.md").exists())
        self.assertFalse((workspace / ".agent-replay").exists(), "nothing recorded locally under the harness")

    def test_fixed_agent_writes_the_report_from_the_recorded_calls(self) -> None:
        gateway, workspace, proc = self.replay("agent_fixed.py")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(gateway.unrecorded, [])
        self.assertTrue(all(rec[3] for rec in gateway.recorded), "every recorded call used")
        self.assertEqual(gateway.close["status"], "succeeded")
        self.assertEqual(gateway.artifacts, ["out/report.md"])
        report = (workspace / "out/report.md").read_text(encoding="utf-8")
        self.assertIn("## Sources", report)
        self.assertNotIn(EMPTY_PAGE, report)
        tasks = json.loads((workspace / "state/tasks.json").read_text(encoding="utf-8"))
        self.assertEqual(tasks["T-7001"]["status"], "done")


if __name__ == "__main__":
    unittest.main()
