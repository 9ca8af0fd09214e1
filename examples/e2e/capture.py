#!/usr/bin/env python3
"""Run an e2e agent once "in production" and keep the trace it wrote.

    python3 examples/e2e/capture.py                      # the buggy agent -> examples/e2e/trace.jsonl
    python3 examples/e2e/capture.py --agent examples/e2e/agent_fixed.py --out /tmp/fixed.jsonl

The agent runs in a fresh scratch directory seeded from ``examples/e2e/workspace/``, with
``examples/e2e/task.json`` on stdin, no ``AGENT_REPLAY_SOCKET`` (so the Python client's
production backend records the run) and ``RESEARCH_API_KEY`` set to a test key, which
its tools expect as an ``Authorization: Bearer`` header: the trace carries that secret,
unredacted, as a real one would. The ledger and trace go to ``<scratch>/.agent-replay/``;
the run's trace is copied to ``--out``, and its ledger records are summarised.
Exit status: the agent's (the buggy agent exits 0: its failure is silent).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEST_KEY = "sk-test-abcdefghijklmnop1234"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default=str(HERE / "agent.py"), help="agent script (default: the buggy agent.py)")
    parser.add_argument("--task", default=str(HERE / "task.json"), help="input envelope")
    parser.add_argument("--out", default=str(HERE / "trace.jsonl"), help="where to copy the trace")
    parser.add_argument("--keep", metavar="DIR", help="run in DIR (created, must be empty) and keep it")
    args = parser.parse_args()

    scratch = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="agent-replay-e2e-"))
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        if any(scratch.iterdir()):
            print(f"capture: {scratch} is not empty", file=sys.stderr)
            return 2
        shutil.copytree(HERE / "workspace", scratch, dirs_exist_ok=True)
        agent = Path(args.agent).resolve()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_REPLAY_")}
        env.update(
            RESEARCH_API_KEY=TEST_KEY,
            PYTHONDONTWRITEBYTECODE="1",
            AGENT_REPLAY_LEDGER=str(scratch / ".agent-replay" / "ledger.jsonl"),
            AGENT_REPLAY_TRACES=str(scratch / ".agent-replay" / "traces"),
            # What the ledger calls the code that ran: the agent file and its content hash.
            AGENT_REPLAY_CODE_VERSION=f"{agent.name}@{hashlib.sha256(agent.read_bytes()).hexdigest()[:12]}",
        )
        proc = subprocess.run([sys.executable, str(agent)], cwd=scratch, env=env,
                              input=Path(args.task).read_bytes(), capture_output=True, timeout=120)
        sys.stdout.write(proc.stdout.decode("utf-8", "replace"))
        sys.stderr.write(proc.stderr.decode("utf-8", "replace"))

        traces = sorted((scratch / ".agent-replay" / "traces").glob("*.jsonl"))
        if len(traces) != 1:
            print(f"capture: expected one trace, found {len(traces)}", file=sys.stderr)
            return 1
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(traces[0], out)

        ledger = scratch / ".agent-replay" / "ledger.jsonl"
        for line in ledger.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            print(f"ledger: run {r['run_id']} {r['status']:<9} failure_class={r['failure_class']} "
                  f"tool_calls={r['tool_calls']} artifact_refs={r['artifact_refs']}")
        report = scratch / "out" / "report.md"
        print(f"workspace: out/report.md {'exists' if report.is_file() else 'MISSING'}")
        print(f"trace: {out}")
        return proc.returncode
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
