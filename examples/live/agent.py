#!/usr/bin/env python3
"""shop — asks the `price` tool for each SKU of its task and closes with the quote."""

import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

import agent_replay as ar  # noqa: E402


def main() -> None:
    envelope = ar.read_input()
    task = envelope.get("task", {})
    ar.start_run(task_id=envelope.get("task_id"), agent=envelope.get("agent"))
    lines = []
    for sku in task.get("skus", []):
        result = ar.call_tool("price", {"sku": sku}, effect="read")
        price = (result.get("structuredContent") or {}).get("price")
        lines.append({"sku": sku, "price": price})
    ar.close_run("succeeded", {"quote": lines})


if __name__ == "__main__":
    main()
