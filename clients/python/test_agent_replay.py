"""Tests of the Python client: the production backend (ledger + trace), its close path on
crashes, and the gateway backend against a fake Unix-socket gateway.

Standard library only:  python3 -m unittest discover -s clients/python -p 'test_*.py'
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import unittest
import uuid
from pathlib import Path
from typing import Any, Dict, List
from unittest import mock

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import agent_replay as ar  # noqa: E402

RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

ENVELOPE: Dict[str, Any] = {
    "format": "agent-replay/input@1",
    "task_id": "T-1042",
    "attempt": 2,
    "agent": "research",
    "model": "provider/model-name",
    "prompt_version": "research-v12",
    "tool_allowlist": ["search", "fetch_page"],
    "timeout_seconds": 30,
    "state_refs": ["state/tasks.json"],
    "task": {"question": "Qu'est-ce que WAL ? ✓", "n": 1.5},
}
TASKS = {"T-1042": {"status": "in_progress"}}


def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def child_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_REPLAY_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


class WorkspaceTest(unittest.TestCase):
    """A temp workspace with state/tasks.json; the cwd while a test runs."""

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self._tmp.name).resolve()
        (self.dir / "state").mkdir()
        (self.dir / "state" / "tasks.json").write_text(json.dumps(TASKS), encoding="utf-8")
        self._cwd = os.getcwd()
        os.chdir(self.dir)
        patcher = mock.patch.dict(os.environ)
        patcher.start()
        self.addCleanup(patcher.stop)
        for key in list(os.environ):
            if key.startswith("AGENT_REPLAY_"):
                del os.environ[key]
        self.ledger = self.dir / "led" / "ledger.jsonl"
        self.traces = self.dir / "tr"

    def tearDown(self) -> None:
        os.chdir(self._cwd)
        # Runs a failed test left open must not be closed into a deleted dir at exit.
        for backend in list(ar._live_backends):
            ar._live_backends.discard(backend)
        self._tmp.cleanup()

    def client(self) -> ar.Client:
        return ar.Client(ar.ProductionBackend(ledger=str(self.ledger), traces=str(self.traces), handle_signals=False))

    def trace_of(self, run_id: str) -> List[Dict[str, Any]]:
        return read_jsonl(self.traces / f"{run_id}.jsonl")

    def assert_record(self, record: Dict[str, Any]) -> None:
        self.assertEqual(list(record), list(ar.RECORD_FIELDS), "every §7 field, in order, nothing else")
        self.assertEqual(uuid.UUID(record["run_id"]).version, 4)
        self.assertEqual(record["run_type"], "production")
        self.assertIsNone(record["fixture_id"])
        self.assertRegex(record["started_at"], RFC3339_Z)
        self.assertRegex(record["input_sha256"], SHA256)
        for key in ("verdict", "reasons", "mode"):
            self.assertIsNone(record[key])


class ProductionBackendTest(WorkspaceTest):
    def run_happy_path(self) -> str:
        client = self.client()
        record = client.start_run(ENVELOPE)
        result = client.call_tool("search", {"query": "wal", "headers": {"Authorization": "Bearer sk-x"}},
                                  impl=lambda args: {"hits": [args["query"]]}, effect="read")
        self.assertEqual(result["structuredContent"], {"hits": ["wal"]})
        self.assertFalse(result["isError"])
        client.record_event("checkpoint", {"step": "fetch"})
        Path("out").mkdir()
        Path("out/report.md").write_text("# Report\n", encoding="utf-8")
        self.assertEqual(client.record_artifact("out/report.md"),
                         {"sha256": hashlib.sha256(b"# Report\n").hexdigest(), "bytes": 9})
        client.close_run("succeeded", {"summary": "ok", "artifact_refs": ["out/report.md", "out/extra.md"]})
        return record["run_id"]

    def test_ledger_running_then_terminal_with_every_field(self) -> None:
        run_id = self.run_happy_path()
        lines = read_jsonl(self.ledger)
        self.assertEqual([r["status"] for r in lines], ["RUNNING", "SUCCEEDED"])
        for record in lines:
            self.assert_record(record)
            self.assertEqual(record["run_id"], run_id)
        running, done = lines
        self.assertEqual(running["task_id"], "T-1042")
        self.assertEqual(running["attempt"], 2)
        self.assertEqual(running["agent_name"], "research")
        self.assertEqual(running["model"], "provider/model-name")
        self.assertEqual(running["prompt_version"], "research-v12")
        self.assertEqual(running["tool_allowlist"], ["search", "fetch_page"])
        self.assertEqual(running["timeout_seconds"], 30)
        self.assertEqual(running["state_refs"], ["state/tasks.json"])
        self.assertEqual(running["artifact_refs"], [])
        self.assertIsNone(running["closed_at"])
        self.assertIsNone(running["duration_ms"])
        self.assertEqual(running["tool_calls"], 0)
        self.assertEqual(running["input_sha256"], hashlib.sha256(ar.envelope_bytes(ENVELOPE)).hexdigest())
        self.assertRegex(done["closed_at"], RFC3339_Z)
        self.assertIsInstance(done["duration_ms"], int)
        self.assertEqual(done["tool_calls"], 1)
        self.assertEqual(done["artifact_refs"], ["out/report.md", "out/extra.md"])
        self.assertIsNone(done["failure_class"])
        self.assertIsNone(done["failure_reason"])
        self.assertEqual(done["started_at"], running["started_at"])

    def test_trace_lines(self) -> None:
        run_id = self.run_happy_path()
        raw = (self.traces / f"{run_id}.jsonl").read_text(encoding="utf-8")
        start, call, event, artifact, close = [json.loads(l) for l in raw.splitlines()]
        # The start line holds the exact bytes input_sha256 covers.
        first_line = raw.splitlines()[0].encode("utf-8")
        self.assertIn(b',"input":' + ar.envelope_bytes(ENVELOPE) + b',"workspace":', first_line)
        self.assertEqual(list(start), ["type", "run", "input", "workspace"])
        self.assertEqual(start["type"], "start")
        self.assertEqual(start["input"], ENVELOPE)
        self.assertEqual(start["run"]["status"], "RUNNING")
        self.assert_record(start["run"])
        self.assertEqual(hashlib.sha256(json.dumps(start["input"], ensure_ascii=False, separators=(",", ":"))
                                        .encode()).hexdigest(), start["run"]["input_sha256"])
        snap = start["workspace"]["state/tasks.json"]
        content = base64.b64decode(snap["content_b64"])
        self.assertEqual(json.loads(content), TASKS)
        self.assertEqual(snap["sha256"], hashlib.sha256(content).hexdigest())

        self.assertEqual(set(call), {"type", "seq", "tool", "arguments", "result", "effect", "at", "duration_ms"})
        self.assertEqual((call["type"], call["seq"], call["tool"], call["effect"]), ("tool_call", 1, "search", "read"))
        self.assertEqual(call["arguments"]["headers"], {"Authorization": "Bearer sk-x"}, "unredacted in the trace")
        self.assertEqual(call["result"]["structuredContent"], {"hits": ["wal"]})
        self.assertRegex(call["at"], RFC3339_Z)
        self.assertIsInstance(call["duration_ms"], int)

        self.assertEqual(event, {"type": "event", "name": "checkpoint", "data": {"step": "fetch"}, "at": event["at"]})
        self.assertEqual(artifact, {"type": "artifact", "path": "out/report.md",
                                    "sha256": hashlib.sha256(b"# Report\n").hexdigest(), "bytes": 9})
        self.assertEqual(set(close), {"type", "status", "output", "failure_class", "failure_reason", "at"})
        self.assertEqual((close["type"], close["status"]), ("close", "succeeded"))
        self.assertEqual(close["output"]["summary"], "ok")
        self.assertEqual(os.stat(self.traces / f"{run_id}.jsonl").st_mode & 0o777, 0o600)

    def test_status_vocabulary(self) -> None:
        for claimed, stored in [("succeeded", "SUCCEEDED"), ("failed", "FAILED"), ("timed_out", "TIMED_OUT"),
                                ("aborted", "ABORTED"), ("FAILED", "FAILED")]:
            client = self.client()
            run_id = client.start_run(ENVELOPE)["run_id"]
            client.close_run(claimed, None, "rate_limited" if stored != "SUCCEEDED" else None, "why")
            record = [r for r in read_jsonl(self.ledger) if r["run_id"] == run_id][-1]
            self.assertEqual(record["status"], stored)
            self.assertEqual(self.trace_of(run_id)[-1]["status"], claimed.lower())

    def test_unknown_status_is_refused_and_run_stays_open(self) -> None:
        client = self.client()
        client.start_run(ENVELOPE)
        with self.assertRaises(ValueError):
            client.close_run("done")
        self.assertTrue(client.backend.is_open())  # type: ignore[attr-defined]
        client.close_run("succeeded")

    def test_second_close_is_refused_like_the_gateway(self) -> None:
        client = self.client()
        run_id = client.start_run(ENVELOPE)["run_id"]
        client.close_run("succeeded")
        with self.assertRaises(ar.GatewayError) as caught:
            client.close_run("failed")
        self.assertEqual(caught.exception.reason, "already_closed")
        self.assertEqual([r["status"] for r in read_jsonl(self.ledger)], ["RUNNING", "SUCCEEDED"])
        self.assertEqual(self.trace_of(run_id)[-1]["name"], "duplicate_close")

    def test_tool_exception_recorded_as_is_error_and_reraised(self) -> None:
        client = self.client()
        run_id = client.start_run(ENVELOPE)["run_id"]

        def broken(args: Dict[str, Any]) -> Any:
            raise ConnectionError("upstream 503")

        with self.assertRaises(ConnectionError):
            client.call_tool("fetch_page", {"url": "https://x"}, impl=broken, effect="read")
        client.close_run("failed", None, "host_network", "upstream 503")
        call = self.trace_of(run_id)[1]
        self.assertEqual(call["type"], "tool_call")
        self.assertTrue(call["result"]["isError"])
        self.assertIn("ConnectionError: upstream 503", call["result"]["content"][0]["text"])
        self.assertEqual(read_jsonl(self.ledger)[-1]["tool_calls"], 1)

    def test_results_are_normalised_and_call_tool_results_kept(self) -> None:
        client = self.client()
        client.start_run(ENVELOPE)
        verbatim = {"content": [{"type": "text", "text": "hi"}], "isError": False, "_meta": {"x": 1}}
        self.assertIs(client.call_tool("search", {}, impl=lambda a: verbatim), verbatim)
        self.assertEqual(client.call_tool("search", {}, impl=lambda a: "plain"),
                         {"content": [{"type": "text", "text": "plain"}], "isError": False})
        self.assertEqual(client.call_tool("search", {}, impl=lambda a: None), {"content": [], "isError": False})
        client.close_run("succeeded")

    def test_registered_tool_default_effect_is_write(self) -> None:
        client = self.client()
        client.register_tool("fetch_page", lambda args: {"url": args["url"]})
        run_id = client.start_run(ENVELOPE)["run_id"]
        client.call_tool("fetch_page", {"url": "u"})
        client.close_run("succeeded")
        self.assertEqual(self.trace_of(run_id)[1]["effect"], "write")

    def test_allowlist_refusal_mirrors_the_gateway(self) -> None:
        client = self.client()
        run_id = client.start_run(ENVELOPE)["run_id"]
        called = []
        with self.assertRaises(ar.ToolError) as caught:
            client.call_tool("send_email", {"to": "a@b"}, impl=called.append)
        self.assertEqual(caught.exception.code, ar.NOT_ALLOWED)
        self.assertEqual(caught.exception.reason, "not_allowed")
        self.assertEqual(called, [], "a refused call is never executed")
        client.close_run("succeeded")
        self.assertEqual(read_jsonl(self.ledger)[-1]["tool_calls"], 1)
        self.assertEqual(self.trace_of(run_id)[1]["name"], "tool_refused")

    def test_artifact_outside_workspace_refused_missing_one_recorded(self) -> None:
        client = self.client()
        run_id = client.start_run(ENVELOPE)["run_id"]
        for bad in ("/etc/passwd", "../x", "out/../../x"):
            with self.assertRaises(ar.GatewayError):
                client.record_artifact(bad)
        os.symlink("/etc", "escape")
        with self.assertRaises(ar.GatewayError):
            client.record_artifact("escape/passwd")
        self.assertEqual(client.record_artifact("./out/missing.md"), {"sha256": None, "bytes": 0})
        client.close_run("succeeded")
        self.assertEqual(self.trace_of(run_id)[-2], {"type": "artifact", "path": "out/missing.md",
                                                     "sha256": None, "bytes": 0})
        self.assertEqual(read_jsonl(self.ledger)[-1]["artifact_refs"], ["out/missing.md"])

    def test_snapshot_extra_paths_and_missing_refs(self) -> None:
        Path("notes").mkdir()
        Path("notes/a.txt").write_bytes(b"\x00\xffbinary")
        client = self.client()
        env = dict(ENVELOPE, state_refs=["state/tasks.json", "state/missing.json"])
        run_id = client.start_run(env, snapshot=["notes"])["run_id"]
        client.close_run("succeeded")
        start, skipped = self.trace_of(run_id)[:2]
        self.assertEqual(sorted(start["workspace"]), ["notes/a.txt", "state/tasks.json"])
        self.assertEqual(base64.b64decode(start["workspace"]["notes/a.txt"]["content_b64"]), b"\x00\xffbinary")
        self.assertEqual(skipped["data"], {"path": "state/missing.json", "why": "missing"})

    def test_unknown_start_option_is_a_type_error(self) -> None:
        with self.assertRaises(TypeError):
            self.client().start_run(ENVELOPE, agnet="typo")

    def test_defaults_envelope_nulls(self) -> None:
        client = self.client()
        run_id = client.start_run({"task_id": 7})["run_id"]
        client.close_run("succeeded")
        record = read_jsonl(self.ledger)[0]
        self.assertEqual(record["run_id"], run_id)
        self.assertEqual(record["task_id"], "7")
        self.assertEqual(record["attempt"], 1)
        self.assertEqual(record["timeout_seconds"], 60)
        self.assertEqual(record["state_refs"], [])
        for key in ("agent_name", "model", "prompt_version", "tool_allowlist", "code_version"):
            self.assertIsNone(record[key], key)

    def test_code_version_from_env(self) -> None:
        os.environ[ar.CODE_VERSION_ENV] = "abc123"
        client = self.client()
        client.start_run(ENVELOPE)
        client.close_run("succeeded")
        self.assertEqual(read_jsonl(self.ledger)[-1]["code_version"], "abc123")

    def test_torn_last_line_is_cut_off_first(self) -> None:
        self.ledger.parent.mkdir(parents=True)
        whole = b'{"run_id": "whole", "status": "SUCCEEDED"}\n'
        self.ledger.write_bytes(whole + b'{"run_id": "torn", "sta')
        client = self.client()
        client.start_run(ENVELOPE)
        client.close_run("succeeded")
        lines = self.ledger.read_text(encoding="utf-8").splitlines()
        # The dead writer's torn record is gone; every line left is whole.
        self.assertEqual(lines[0], whole.decode().strip())
        self.assertEqual([json.loads(l)["status"] for l in lines[1:]], ["RUNNING", "SUCCEEDED"])


class CloseOnCrashTest(WorkspaceTest):
    def test_exception_in_context_manager_closes_failed(self) -> None:
        client = self.client()
        with self.assertRaises(KeyError):
            with client.run(ENVELOPE, agent="research") as run:
                self.assertEqual(uuid.UUID(run.run_id).version, 4)
                run.call_tool("search", {"query": "q"}, impl=lambda a: {"hits": []}, effect="read")
                raise KeyError("hits")
        record = read_jsonl(self.ledger)[-1]
        self.assert_record(record)
        self.assertEqual(record["status"], "FAILED")
        self.assertEqual(record["failure_class"], "unknown")
        self.assertEqual(record["failure_reason"], "KeyError: 'hits'")
        self.assertEqual(record["tool_calls"], 1)
        close = self.trace_of(record["run_id"])[-1]
        self.assertEqual((close["type"], close["status"], close["failure_class"]), ("close", "failed", "unknown"))

    def test_block_that_closed_is_left_alone(self) -> None:
        client = self.client()
        with self.assertRaises(RuntimeError):
            with client.run(ENVELOPE) as run:
                run.close_run("succeeded", {"ok": True})
                raise RuntimeError("after close")
        self.assertEqual([r["status"] for r in read_jsonl(self.ledger)], ["RUNNING", "SUCCEEDED"])

    def test_block_ending_without_close_closes_failed(self) -> None:
        with self.client().run(ENVELOPE):
            pass
        record = read_jsonl(self.ledger)[-1]
        self.assertEqual((record["status"], record["failure_class"]), ("FAILED", "unknown"))
        self.assertIn("without close_run", record["failure_reason"])

    def run_child(self, body: str, **env: str) -> subprocess.CompletedProcess:
        script = self.dir / "agent.py"
        script.write_text(textwrap.dedent(f"""\
            import sys, os, signal
            sys.path.insert(0, {str(HERE)!r})
            import agent_replay as ar
            """) + textwrap.dedent(body), encoding="utf-8")
        return subprocess.run([sys.executable, str(script)], cwd=self.dir, input=json.dumps(ENVELOPE).encode(),
                              capture_output=True, env=child_env(**env), timeout=60)

    def test_uncaught_exception_outside_any_block_closes_at_exit(self) -> None:
        proc = self.run_child("""\
            ar.start_run(agent="research")
            ar.call_tool("search", {"q": 1}, impl=lambda a: {}, effect="read")
            raise RuntimeError("agent blew up")
            """)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        # Default paths: .agent-replay/ under the working directory (no agent-replay.toml).
        lines = read_jsonl(self.dir / ".agent-replay" / "ledger.jsonl")
        self.assertEqual([r["status"] for r in lines], ["RUNNING", "FAILED"])
        record = lines[-1]
        self.assert_record(record)
        self.assertEqual(record["failure_class"], "unknown")
        self.assertIn("RuntimeError: agent blew up", record["failure_reason"])
        self.assertEqual(record["input_sha256"], hashlib.sha256(ar.envelope_bytes(ENVELOPE)).hexdigest())
        trace = read_jsonl(self.dir / ".agent-replay" / "traces" / f"{record['run_id']}.jsonl")
        self.assertEqual([l["type"] for l in trace], ["start", "tool_call", "close"])

    def test_sys_exit_without_close_closes_at_exit(self) -> None:
        proc = self.run_child("""\
            ar.read_input()
            ar.record_event("checkpoint", {})   # starts the run implicitly
            sys.exit(3)
            """)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        record = read_jsonl(self.dir / ".agent-replay" / "ledger.jsonl")[-1]
        self.assertEqual((record["status"], record["failure_class"]), ("FAILED", "unknown"))

    def test_sigterm_closes_aborted_and_dies_of_the_signal(self) -> None:
        proc = self.run_child("""\
            ar.start_run()
            os.kill(os.getpid(), signal.SIGTERM)
            import time; time.sleep(5)
            """)
        self.assertEqual(proc.returncode, -signal.SIGTERM, proc.stderr)
        record = read_jsonl(self.dir / ".agent-replay" / "ledger.jsonl")[-1]
        self.assertEqual((record["status"], record["failure_class"]), ("ABORTED", "unknown"))

    def test_env_paths_and_config_directory(self) -> None:
        (self.dir / "agent-replay.toml").write_text("[agents.x]\ncommand = [\"true\"]\n", encoding="utf-8")
        sub = self.dir / "deep" / "er"
        sub.mkdir(parents=True)
        script = self.dir / "agent.py"
        script.write_text(f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport agent_replay as ar\n"
                          "ar.start_run()\nar.close_run('succeeded')\n", encoding="utf-8")
        subprocess.run([sys.executable, str(script)], cwd=sub, input=json.dumps(ENVELOPE).encode(), check=True,
                       env=child_env(), timeout=60)
        self.assertEqual(len(read_jsonl(self.dir / ".agent-replay" / "ledger.jsonl")), 2)
        subprocess.run([sys.executable, str(script)], cwd=sub, input=json.dumps(ENVELOPE).encode(), check=True,
                       env=child_env(AGENT_REPLAY_LEDGER=str(self.dir / "l.jsonl"),
                                     AGENT_REPLAY_TRACES=str(self.dir / "t")), timeout=60)
        record = read_jsonl(self.dir / "l.jsonl")[-1]
        self.assertTrue((self.dir / "t" / f"{record['run_id']}.jsonl").is_file())
        # A database URL in the environment is the tools' ledger: the client writes the
        # local file `ledger push` ships.
        subprocess.run([sys.executable, str(script)], cwd=sub, input=json.dumps(ENVELOPE).encode(), check=True,
                       env=child_env(AGENT_REPLAY_LEDGER="postgres://ops:pw@db/fleet"), timeout=60)
        self.assertEqual(len(read_jsonl(self.dir / ".agent-replay" / "ledger.jsonl")), 4)
        with self.assertRaisesRegex(ValueError, "is a database URL: the client writes a local JSONL file"):
            ar.Client(ledger="postgres://ops:pw@db/fleet").start_run(ENVELOPE)

    def test_concurrent_writers_never_interleave(self) -> None:
        script = self.dir / "agent.py"
        script.write_text(textwrap.dedent(f"""\
            import sys
            sys.path.insert(0, {str(HERE)!r})
            import agent_replay as ar
            big = "x" * 200_000   # far over PIPE_BUF: only the lock keeps lines whole
            for i in range(15):
                c = ar.Client()
                c.start_run({{"task_id": "T", "task": {{"pad": big}}}})
                c.close_run("failed", None, "unknown", big)
            """), encoding="utf-8")
        procs = [subprocess.Popen([sys.executable, str(script)], cwd=self.dir, env=child_env(),
                                  stdin=subprocess.DEVNULL) for _ in range(6)]
        for p in procs:
            self.assertEqual(p.wait(timeout=120), 0)
        lines = read_jsonl(self.dir / ".agent-replay" / "ledger.jsonl")
        self.assertEqual(len(lines), 6 * 15 * 2)


class FakeGateway:
    """A Unix-socket JSON-RPC server that records requests and answers from a script."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.requests: List[Dict[str, Any]] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def answer(self, req: Dict[str, Any]) -> Dict[str, Any]:
        method, params = req["method"], req.get("params") or {}
        if method == "tools/list":
            return {"result": {"tools": [{"name": "search"}, {"name": "fetch_page"}]}}
        if method == "tools/call":
            if params["name"] == "send_email":
                return {"error": {"code": -32001, "message": "unrecorded call to `send_email`",
                                  "data": {"tool": "send_email", "reason": "unrecorded",
                                           "closest": {"id": "c1", "pointer": "/to"}}}}
            return {"result": {"content": [{"type": "text", "text": "recorded"}], "isError": False}}
        if method == "run/artifact":
            return {"result": {"sha256": "0" * 64, "bytes": 3}}
        if method in ("run/event", "run/close"):
            return {"result": {}}
        return {"error": {"code": -32601, "message": "method not found"}}

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                for raw in reader:
                    req = json.loads(raw)
                    self.requests.append(req)
                    response = {"jsonrpc": "2.0", "id": req["id"], **self.answer(req)}
                    conn.sendall(json.dumps(response).encode() + b"\n")

    def close(self) -> None:
        self.server.close()


class GatewayBackendTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.sock = os.path.join(self._tmp.name, "gw.sock")
        self.gateway = FakeGateway(self.sock)
        self.addCleanup(self.gateway.close)
        patcher = mock.patch.dict(os.environ, {ar.SOCKET_ENV: self.sock, ar.RUN_ID_ENV: "run-under-test"})
        patcher.start()
        self.addCleanup(patcher.stop)
        self._cwd = os.getcwd()
        os.chdir(self._tmp.name)
        self.addCleanup(os.chdir, self._cwd)

    def client(self) -> ar.Client:
        client = ar.Client()
        self.addCleanup(lambda: isinstance(client.backend, ar.GatewayBackend) and client.backend.close())
        return client

    def test_same_api_goes_to_the_gateway(self) -> None:
        client = self.client()
        self.assertIsInstance(client.backend, ar.GatewayBackend)
        self.assertFalse(client.production)
        self.assertEqual(client.start_run(ENVELOPE, agent="research"), {"run_id": "run-under-test"})
        impl_calls: List[Any] = []
        result = client.call_tool("search", {"query": "q"}, impl=impl_calls.append, effect="read")
        self.assertEqual(result["content"][0]["text"], "recorded")
        self.assertEqual(impl_calls, [], "impl is production-only")
        self.assertEqual(client.list_tools(), [{"name": "search"}, {"name": "fetch_page"}])
        client.record_event("checkpoint", {"step": 1})
        self.assertEqual(client.record_artifact("out/r.md"), {"sha256": "0" * 64, "bytes": 3})
        client.close_run("succeeded", {"ok": True})
        self.assertEqual(
            [(r["method"], r["params"]) for r in self.gateway.requests],
            [
                ("tools/call", {"name": "search", "arguments": {"query": "q"}}),
                ("tools/list", {}),
                ("run/event", {"name": "checkpoint", "data": {"step": 1}}),
                ("run/artifact", {"path": "out/r.md"}),
                ("run/close", {"status": "succeeded", "output": {"ok": True}, "failure_class": None,
                               "failure_reason": None}),
            ],
        )
        self.assertEqual([r["id"] for r in self.gateway.requests], [1, 2, 3, 4, 5])
        self.assertFalse(Path(".agent-replay").exists(), "nothing is written under the harness")

    def test_refused_call_raises_tool_error(self) -> None:
        with self.assertRaises(ar.ToolError) as caught:
            self.client().call_tool("send_email", {"to": "x"})
        err = caught.exception
        self.assertEqual((err.code, err.reason), (ar.UNRECORDED_CALL, "unrecorded"))
        self.assertEqual(err.closest, {"id": "c1", "pointer": "/to"})

    def test_context_manager_closes_failed_through_the_gateway(self) -> None:
        with self.assertRaises(ValueError):
            with self.client().run(ENVELOPE) as run:
                self.assertEqual(run.run_id, "run-under-test")
                raise ValueError("bad page")
        close = self.gateway.requests[-1]
        self.assertEqual(close["method"], "run/close")
        self.assertEqual(close["params"], {"status": "failed", "output": None, "failure_class": "unknown",
                                           "failure_reason": "ValueError: bad page"})

    def test_unknown_option_rejected_under_the_gateway_too(self) -> None:
        with self.assertRaises(TypeError):
            self.client().start_run(ENVELOPE, ledgr="x")


if __name__ == "__main__":
    unittest.main()
